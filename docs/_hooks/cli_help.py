"""MkDocs hook: fills pages with the live ``--help`` of the ``apim-selfhosted`` command.

The CLI reference is then generated from the command itself at every build, so it cannot
drift from the code:

* ``<!-- cli-help -->`` shows the top-level help, ``<!-- cli-help: lint -->`` the help of
  ``apim-selfhosted lint``;
* ``<!-- cli-reference -->`` shows one section per registered subcommand, in the order the
  command lists them, each with its help.

A command that fails to print its help fails the build.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

_REFERENCE = re.compile(r"^<!--\s*cli-reference\s*-->\s*$", re.MULTILINE)
_MARKER = re.compile(r"^<!--\s*cli-help(?::\s*(?P<args>[^>]*?))?\s*-->\s*$", re.MULTILINE)
_ROOT = Path(__file__).resolve().parents[2]


def _help(args: str) -> str:
    argv = [sys.executable, "-m", "apim_selfhosted", *shlex.split(args), "--help"]
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run(
        argv, cwd=_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"`apim-selfhosted {args} --help` exited with {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.stdout.rstrip()


def _reference() -> str:
    from apim_selfhosted.cli import commands

    sections = []
    for name, cmd in commands().items():
        sections.append(
            f"## `apim-selfhosted {name}`\n\n{cmd.help[:1].upper()}{cmd.help[1:]}.\n\n"
            f"```text\n{_help(name)}\n```"
        )
    return "\n\n".join(sections)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Expands the cli-help and cli-reference markers of a page into the command's help."""
    if _REFERENCE.search(markdown):
        markdown = _REFERENCE.sub(lambda _: _reference(), markdown)

    def expand(match: re.Match[str]) -> str:
        text = _help(match["args"] or "")
        return f"```text\n{text}\n```"

    return _MARKER.sub(expand, markdown)
