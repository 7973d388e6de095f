"""Every Python code block in README.md and docs/, and every example, runs as written.

The gallery's apps (``examples/<name>/app.py``) run in ``tests/test_examples.py``; here they
are type-checked with the rest.

``docs/backends.md`` needs Redis and runs in ``tests/backends/test_redis.py``. All of
them, backends.md included, also pass ``mypy --strict`` as written (one mypy run over
a directory of extracted blocks). A block that cannot be type-checked on its own is
marked with ``<!-- mypy: skip -->`` on the line before its opening fence.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Pages whose blocks other tests run: backends.md against Redis (tests/backends/redis),
#: writing-a-backend.md as a module plus its suite (tests/test_writing_a_backend.py).
RUN_ELSEWHERE = {"backends.md", "writing-a-backend.md"}
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
#: The marker for a block that mypy cannot check alone (use sparingly, say why).
MYPY_SKIP = re.compile(r"^<!-- mypy: skip[^>]*-->\n```python\n(.*?)^```", re.M | re.S)


def _blocks() -> list[tuple[Path, int, str]]:
    out = []
    for page in PAGES:
        if page.name in RUN_ELSEWHERE:
            continue
        for index, code in enumerate(BLOCK.findall(page.read_text(encoding="utf-8"))):
            out.append((page, index, code))
    return out


BLOCKS = _blocks()


def test_pages_with_guides_have_examples() -> None:
    pages = {page.name for page, _, _ in BLOCKS}
    for name in (
        "README.md",
        "index.md",
        "quickstart.md",
        "bus.md",
        "events.md",
        "filters.md",
        "jobs.md",
        "testing.md",
    ):
        assert name in pages, f"{name} has no runnable example"


@pytest.mark.parametrize(
    ("page", "index", "code"), BLOCKS, ids=[f"{p.name}-{i}" for p, i, _ in BLOCKS]
)
def test_code_block_runs(
    page: Path, index: int, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A block may configure logging (observability.md adds a handler on pytest's captured
    # stderr): what it adds must not outlive it and write to a closed stream later.
    loggers = [logging.getLogger(), logging.getLogger("eventpatterns")]
    handlers = [list(logger.handlers) for logger in loggers]
    try:
        exec(compile(code, f"{page}:block{index}", "exec"), {"__name__": "__docs__"})
    finally:
        for logger, kept in zip(loggers, handlers, strict=True):
            logger.handlers[:] = kept
    if "print(" in code:
        assert capsys.readouterr().out.strip(), "the example prints nothing"


@pytest.mark.parametrize("example", sorted((ROOT / "examples").glob("*.py")), ids=lambda p: p.name)
def test_example_runs(example: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "the example prints nothing"


def test_quickstart_example_output() -> None:
    namespace = runpy.run_path(str(ROOT / "examples" / "quickstart.py"))
    assert "main" in namespace
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "live: big order 1 (250)" in result.stdout
    assert "fulfilled orders: [0, 1, 3]" in result.stdout
    assert "dead letter: order 2 after 2 attempts: ValueError: unlucky order" in result.stdout


MODULE_NAME = re.compile(r"# (\w+\.py)\n")


def _typed_sources() -> dict[str, str]:
    """File name -> source of every block and example that mypy must accept."""
    sources: dict[str, str] = {}
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        skipped = set(MYPY_SKIP.findall(text))
        stem = re.sub(r"\W", "_", page.stem.lower())
        for index, code in enumerate(BLOCK.findall(text)):
            if code not in skipped:
                # A block that names its module (`# list_backend.py`) is saved under that
                # name, so that the page's next block can import it as the page says.
                named = MODULE_NAME.match(code)
                sources[named[1] if named else f"{stem}_block{index}.py"] = code
    for example in sorted((ROOT / "examples").glob("*.py")):
        sources[f"example_{example.stem}.py"] = example.read_text(encoding="utf-8")
    for app in sorted((ROOT / "examples").glob("*/app.py")):  # the gallery's apps
        sources[f"example_{app.parent.name}.py"] = app.read_text(encoding="utf-8")
    return sources


def test_docs_and_examples_pass_mypy_strict(tmp_path: Path) -> None:
    if importlib.util.find_spec("mypy") is None:  # pragma: no cover - the dev extra has it
        pytest.skip("mypy is not installed")
    sources = _typed_sources()
    assert len(sources) > 20, "the extraction found (almost) no blocks"
    for name, code in sources.items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(ROOT / ".mypy_cache"),
            *sorted(str(tmp_path / name) for name in sources),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        # This checkout's sources, whatever the environment's install points at.
        env={**os.environ, "MYPYPATH": str(ROOT / "src")},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_skips_are_few_and_listed() -> None:
    skips = {page.name: len(MYPY_SKIP.findall(page.read_text(encoding="utf-8"))) for page in PAGES}
    assert {name: n for name, n in skips.items() if n} == MYPY_SKIPPED


#: Pages with blocks mypy does not check alone, and how many (see each marker's reason).
MYPY_SKIPPED: dict[str, int] = {}
