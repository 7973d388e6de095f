"""The explanation printed in docs/filters.md matches what ``explain`` prints today.

The page's code blocks run in ``tests/test_docs.py``.
"""

from __future__ import annotations

from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "filters.md"


def test_explain_output_in_the_page_is_current() -> None:
    from eventpatterns import filters

    e = filters.explain(
        {"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}], "state": ["paid"]}},
        {"source": "shop", "detail": {"total": 50}},
    )
    assert "```text\n" + str(e) + "\n```" in DOC.read_text(encoding="utf-8")
