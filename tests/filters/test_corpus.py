"""The conformance corpus: every case through compile, PatternIndex and explain."""

from __future__ import annotations

from typing import Any

import pytest

from eventpatterns import filters
from eventpatterns.errors import EventPatternsError, InvalidPattern
from eventpatterns.filters import PatternIndex, explain

from .corpus import INVALID_CASES, MATCH_CASES

_MATCH = [pytest.param(p, e, x, id=name) for name, p, e, x in MATCH_CASES]
_INVALID = [pytest.param(p, path, id=name) for name, p, path in INVALID_CASES]


def test_corpus_is_large() -> None:
    assert len(MATCH_CASES) >= 250
    assert len(INVALID_CASES) >= 80
    assert {x for *_, x in MATCH_CASES} == {True, False}


@pytest.mark.parametrize(("pattern", "event", "expected"), _MATCH)
def test_matches(pattern: Any, event: Any, expected: bool) -> None:
    assert filters.compile(pattern).matches(event) is expected


@pytest.mark.parametrize(("pattern", "event", "expected"), _MATCH)
def test_index_agrees(pattern: Any, event: Any, expected: bool) -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("k", pattern)
    assert index.match(event) == ({"k"} if expected else set())


@pytest.mark.parametrize(("pattern", "event", "expected"), _MATCH)
def test_explain_agrees(pattern: Any, event: Any, expected: bool) -> None:
    explanation = explain(pattern, event)
    assert explanation.matched is expected
    if not expected:
        assert explanation.branches
        assert all(not b.matched for b in explanation.branches)


def test_whole_corpus_in_one_index() -> None:
    index: PatternIndex[str] = PatternIndex()
    for name, pattern, _, _ in MATCH_CASES:
        index.add(name, pattern)
    events = {id(e): e for _, _, e, _ in MATCH_CASES}.values()
    matchers = {name: filters.compile(p) for name, p, _, _ in MATCH_CASES}
    for event in events:
        expected = {name for name, m in matchers.items() if m.matches(event)}
        assert index.match(event) == expected


@pytest.mark.parametrize(("pattern", "path"), _INVALID)
def test_invalid(pattern: Any, path: str) -> None:
    with pytest.raises(InvalidPattern) as info:
        filters.compile(pattern)
    assert info.value.path == path
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, EventPatternsError)
    assert str(info.value).startswith(f"invalid pattern at {path}: ")


@pytest.mark.parametrize(("pattern", "path"), _INVALID)
def test_invalid_leaves_index_unchanged(pattern: Any, path: str) -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("ok", {"source": ["a"]})
    with pytest.raises(InvalidPattern):
        index.add("bad", pattern)
    assert list(index) == ["ok"]
    assert index.match({"source": "a"}) == {"ok"}
