"""MkDocs hook: replaces ``<!-- cli-help: ARGS -->`` with the live ``--help`` of the CLI.

The CLI reference is then generated from the command itself at every build, so it cannot
drift from the code. ``<!-- cli-help -->`` shows the top-level help, ``<!-- cli-help: lint -->``
the help of ``apim-selfhosted lint``. A command that fails to print its help fails the build.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    """Expands every cli-help marker of a page into a text block with the command's help."""

    def expand(match: re.Match[str]) -> str:
        text = _help(match["args"] or "")
        return f"```text\n{text}\n```"

    return _MARKER.sub(expand, markdown)
