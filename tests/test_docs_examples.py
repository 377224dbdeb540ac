"""Executes the code examples of README.md and docs/**/*.md, so the documentation stays true.

Rules (also described in ``docs/contributing-docs.md``):

* Every fenced ```` ```python ```` block runs. The blocks of one page share a namespace and run
  in page order, like a reader typing them into one interpreter session. They run in a fresh
  temporary directory that holds a link ``examples`` to the repository's ``examples/`` folder,
  so relative paths such as ``examples/production.yaml`` work as they do from a clone.
* A Python block that cannot run here (it needs a real Azure subscription or cluster) is
  preceded by ``<!-- no-run: <reason> -->``; the reason is mandatory and is shown as the skip
  reason.
* Shell blocks (```` ```bash ````, ```` ```console ````, ```` ```shell ````) run only when
  preceded by ``<!-- run -->`` (or ``<!-- run: exit=N -->`` when the command is expected to
  end with exit code ``N``). They run with ``bash -euo pipefail`` in the same kind of temporary
  directory, with the virtualenv's ``bin`` first on ``PATH``.
* A block of any language preceded by ``<!-- file: NAME -->`` is written to ``NAME`` in the
  page's directory when its turn comes, so a spec shown as YAML on a page is the very file
  that the page's later examples load.
* Any other ``<!-- run... -->``, ``<!-- no-run... -->`` or ``<!-- file... -->`` comment is an
  error, so a typo in a marker cannot silently turn a test off.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
PYTHON_LANGS = {"python", "py"}
SHELL_LANGS = {"bash", "console", "shell", "sh"}

_FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_MARKER_RE = re.compile(r"^\s*<!--\s*(?P<body>(?:(?:no-)?run|file)\b.*?)\s*-->\s*$")
_RUN_RE = re.compile(r"^run(?::\s*exit=(?P<exit>\d+))?$")
_NO_RUN_RE = re.compile(r"^no-run:\s*(?P<reason>\S.*)$")
_FILE_RE = re.compile(r"^file:\s*(?P<name>[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a Markdown file."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None  # the body of a run/no-run comment right before the fence

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _markdown_files() -> list[Path]:
    files = [ROOT / "README.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    return [f for f in files if f.is_file()]


def parse_blocks(path: Path) -> list[Block]:
    """Splits a Markdown file into its fenced code blocks, with the marker before each."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        match = _FENCE_RE.match(lines[i])
        if not match:
            i += 1
            continue
        fence, indent = match["fence"], match["indent"]
        lang = match["info"].strip().split(" ")[0].split("{")[0].lower() if match["info"] else ""
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines):
            stripped = lines[i].strip()
            if stripped.startswith(fence[0] * len(fence)) and set(stripped) == {fence[0]}:
                break
            body.append(lines[i])
            i += 1
        i += 1  # past the closing fence
        marker = None
        j = start - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        if j >= 0:
            found = _MARKER_RE.match(lines[j])
            if found:
                marker = found["body"]
        code = textwrap.dedent(
            "\n".join(b[len(indent) :] if b.startswith(indent) else b for b in body)
        )
        blocks.append(Block(path, start + 1, lang, code + "\n", marker))
    return blocks


def _all_blocks() -> list[Block]:
    return [b for f in _markdown_files() for b in parse_blocks(f)]


def _file_name(block: Block) -> str | None:
    if block.marker is None:
        return None
    found = _FILE_RE.match(block.marker)
    return found["name"] if found else None


def _runnable(block: Block) -> bool:
    if _file_name(block) is not None or block.lang in PYTHON_LANGS:
        return True
    return block.lang in SHELL_LANGS and block.marker is not None


def _no_run_reason(block: Block) -> str | None:
    if block.marker is None:
        return None
    found = _NO_RUN_RE.match(block.marker)
    return found["reason"] if found else None


def _expected_exit(block: Block) -> int:
    assert block.marker is not None
    found = _RUN_RE.match(block.marker)
    return int(found["exit"]) if found and found["exit"] else 0


# Per page: the shared namespace of its Python blocks, its working directory, and the first
# block that failed (later blocks of that page would only fail confusingly).
_NAMESPACES: dict[Path, dict[str, Any]] = {}
_WORKDIRS: dict[Path, Path] = {}
_FAILED_PAGES: dict[Path, str] = {}


def _workdir(block: Block, factory: pytest.TempPathFactory) -> Path:
    if block.path not in _WORKDIRS:
        workdir = factory.mktemp(block.path.stem)
        (workdir / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
        _WORKDIRS[block.path] = workdir
    return _WORKDIRS[block.path]


def test_markers_are_well_formed() -> None:
    """A marker that does not parse would silently skip or un-skip an example: refuse it."""
    problems = []
    for block in _all_blocks():
        if block.marker is None:
            continue
        if block.marker.startswith("file"):
            if _file_name(block) is None or ".." in block.marker:
                problems.append(f"{block.id}: bad file marker <!-- {block.marker} -->")
            continue
        if _NO_RUN_RE.match(block.marker):
            if block.lang not in PYTHON_LANGS | SHELL_LANGS:
                problems.append(f"{block.id}: no-run on a {block.lang or 'plain'} block")
            continue
        if not _RUN_RE.match(block.marker):
            problems.append(f"{block.id}: unknown marker <!-- {block.marker} -->")
        elif block.lang not in SHELL_LANGS:
            problems.append(f"{block.id}: <!-- run --> only applies to shell blocks")
    assert not problems, "\n".join(problems)


def test_docs_have_examples() -> None:
    """The runner finds the examples (guards against a parser regression running nothing)."""
    runnable = [
        b
        for b in _all_blocks()
        if _runnable(b) and _no_run_reason(b) is None and _file_name(b) is None
    ]
    assert len(runnable) >= 10, [b.id for b in runnable]


@pytest.mark.parametrize("block", [b for b in _all_blocks() if _runnable(b)], ids=lambda b: b.id)
def test_example(
    block: Block,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reason = _no_run_reason(block)
    if reason is not None:
        pytest.skip(reason)
    if block.path in _FAILED_PAGES:
        pytest.fail(f"an earlier example of this page failed: {_FAILED_PAGES[block.path]}")
    workdir = _workdir(block, tmp_path_factory)
    monkeypatch.chdir(workdir)
    try:
        name = _file_name(block)
        if name is not None:
            target = workdir / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.code, encoding="utf-8")
        elif block.lang in PYTHON_LANGS:
            _run_python(block)
        else:
            _run_shell(block, workdir)
    except BaseException:
        _FAILED_PAGES[block.path] = block.id
        raise


def _run_python(block: Block) -> None:
    namespace = _NAMESPACES.setdefault(block.path, {"__name__": "__docs_example__"})
    compiled = compile(block.code, block.id, "exec")
    exec(compiled, namespace)  # executing our own documentation is the point


def _run_shell(block: Block, workdir: Path) -> None:
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    expected = _expected_exit(block)
    assert proc.returncode == expected, (
        f"{block.id}: exit code {proc.returncode}, expected {expected}\n"
        f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    )


def test_parser_reads_fences_and_markers(tmp_path: Path) -> None:
    """The parser sees languages, markers, indented fences and longer fences correctly."""
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n"
        "```python\nx = 1\n```\n\n"
        "<!-- no-run: needs a real Azure subscription -->\n\n"
        "```python\nraise SystemExit\n```\n"
        "<!-- run: exit=1 -->\n"
        "```bash\nfalse\n```\n"
        "* item\n\n    ```yaml\n    a: 1\n    ```\n"
        "````markdown\n```python\nnot a block\n```\n````\n"
        "<!-- file: specs/gw.yaml -->\n```yaml\nnamespace: apim\n```\n",
        encoding="utf-8",
    )
    blocks = parse_blocks(page)
    assert [(b.lang, b.marker, b.line) for b in blocks] == [
        ("python", None, 3),
        ("python", "no-run: needs a real Azure subscription", 9),
        ("bash", "run: exit=1", 13),
        ("yaml", None, 18),
        ("markdown", None, 21),
        ("yaml", "file: specs/gw.yaml", 27),
    ]
    assert blocks[0].code == "x = 1\n"
    assert blocks[3].code == "a: 1\n"
    assert _no_run_reason(blocks[1]) == "needs a real Azure subscription"
    assert _expected_exit(blocks[2]) == 1
    assert _file_name(blocks[5]) == "specs/gw.yaml"
    assert _runnable(blocks[5])
    assert not _runnable(blocks[3])
