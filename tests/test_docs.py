"""Every Python code block in README.md and docs/, and every example, runs as written.

``docs/backends.md`` needs Redis and runs in ``tests/backends/test_redis.py``.
"""

from __future__ import annotations

import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUN_ELSEWHERE = {"backends.md"}
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)


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
        "testing.md",
    ):
        assert name in pages, f"{name} has no runnable example"


@pytest.mark.parametrize(
    ("page", "index", "code"), BLOCKS, ids=[f"{p.name}-{i}" for p, i, _ in BLOCKS]
)
def test_code_block_runs(
    page: Path, index: int, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    exec(compile(code, f"{page}:block{index}", "exec"), {"__name__": "__docs__"})
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
