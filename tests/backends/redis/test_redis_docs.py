"""The code blocks of docs/backends.md run as written (they need Redis)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from redis_helpers import delete_prefix

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_server")]


DOC = Path(__file__).resolve().parents[3] / "docs" / "backends.md"
DOC_BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


def test_backends_page_has_examples() -> None:
    assert len(DOC_BLOCKS) >= 3


@pytest.mark.parametrize("code", DOC_BLOCKS, ids=[f"block{i}" for i in range(len(DOC_BLOCKS))])
def test_backends_page_block_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    prefixes = set(re.findall(r"prefix=([\w-]+)", code))
    try:
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
    finally:
        for prefix in prefixes:
            delete_prefix(prefix)
    if "print(" in code:
        assert capsys.readouterr().out.strip()
