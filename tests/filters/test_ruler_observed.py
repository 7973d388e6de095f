"""eventpatterns against outcomes recorded from AWS event-ruler 2.0.1 itself."""

from __future__ import annotations

import json

import pytest

from eventpatterns import filters
from eventpatterns.errors import InvalidPattern

from .ruler_observed import BATCHES, KEPT_DIFFERENCES

_CASES = [
    pytest.param(events, pattern, accepted, matched, id=f"{b}-{i}")
    for b, (events, patterns) in enumerate(BATCHES)
    for i, (pattern, accepted, matched) in enumerate(patterns)
]


@pytest.mark.parametrize(("events", "pattern", "accepted", "matched"), _CASES)
def test_agrees_with_ruler(
    events: list[str], pattern: str, accepted: bool, matched: list[int]
) -> None:
    if pattern in KEPT_DIFFERENCES:
        accepted, matched, _ = KEPT_DIFFERENCES[pattern]
    try:
        matcher = filters.compile(pattern)
    except InvalidPattern:
        assert not accepted
        return
    assert accepted
    assert [j for j, e in enumerate(events) if matcher.matches(json.loads(e))] == matched


def test_every_kept_difference_is_a_recorded_case() -> None:
    recorded = {p for _, patterns in BATCHES for p, _, _ in patterns}
    assert set(KEPT_DIFFERENCES) <= recorded
    assert len(_CASES) >= 50
