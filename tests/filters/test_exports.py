"""The public API of eventpatterns.filters is exactly its __all__."""

from __future__ import annotations

import eventpatterns.filters as filters


def test_all_is_public_surface() -> None:
    public = {name for name in dir(filters) if not name.startswith("_")}
    assert set(filters.__all__) == public
    for name in filters.__all__:
        assert getattr(filters, name).__module__.startswith("eventpatterns.filters")


def test_contract_names() -> None:
    for name in ("compile", "Matcher", "PatternIndex", "explain"):
        assert name in filters.__all__
