"""Run every ``python`` code block of docs/filters.md, each in a fresh namespace."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "filters.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_block_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, object] = {"__name__": "__docs__"}
    exec(compile(code, str(DOC), "exec"), namespace)
    capsys.readouterr()


def test_explain_output_in_the_page_is_current() -> None:
    from eventpatterns import filters

    e = filters.explain(
        {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}], "state": ["paid"]}},
        {"source": "shop", "detail": {"total": 50}},
    )
    assert "```text\n" + str(e) + "\n```" in DOC.read_text(encoding="utf-8")
