"""Hostile input, fuzzed: compile + match stay within a time budget and fail only cleanly.

Issue 8 found patterns under the size limit that took seconds and gigabytes
(``$or`` products built before the limit was checked), a 2 MB pattern compiled
before it was refused, ``exists: false`` below arrays in quadratic time, and
integers Python cannot print crashing compile, match and messages. Each example
here builds such an input from a few drawn numbers and must compile (or raise
:class:`InvalidPattern`, nothing else) and match within ``BUDGET`` seconds of CPU.
The budget is generous — the old code took many seconds on these shapes, the new
code milliseconds — so load on the machine cannot make it flaky; performance
itself is measured in ``benchmarks/``.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import explain

# CPU seconds per input, compile + match + explain. The slowest inputs (20,000 array
# elements under ``exists: false``) take ~0.25 s alone and ~1.1 s under CI's branch-coverage
# tracing on a loaded machine; the old code took minutes on them (143 s at 10,000) and
# seconds to build a 1 KB ``$or`` product, so 5 s still fails it and never fails the new one.
BUDGET = 5.0
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(["a", "b", "a.b", "x", "$or", "prefix", "numeric", ""])
HUGE = st.sampled_from([10**5000, -(10**4400), 2**60, 2**53 + 1, 10**400, 1e308, -0.0])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), HUGE,
    st.text(max_size=8), st.sampled_from(["\ud800", "10.0.0.1", "2001:db8::1", "x" * 5000]),
)  # fmt: skip
OPERATORS = st.sampled_from(
    ["prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric",
     "exists", "cidr", "exactly", "bogus"]
)  # fmt: skip
OPERANDS = st.one_of(
    SCALARS,
    st.lists(SCALARS | st.sampled_from(["<", ">=", "="]), max_size=5),
    st.dictionaries(OPERATORS, SCALARS | st.lists(SCALARS, max_size=3), max_size=2),
    st.sampled_from(["*a*b*c*", "a**", "\\x", "10.0.0.0/33", "::/0", "1.2.3.4/+8"]),
)


def _or(width: int, depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    """A ``$or`` of ``width`` branches nested ``depth`` deep: width ** depth branches."""
    node: dict[str, Any] = leaf
    for level in range(depth):
        node = {"$or": [{f"k{level}_{i}": node} if i else dict(node) for i in range(width)]}
    return node


hostile_patterns = st.one_of(
    # $or products: several factors of up to ~1000 branches each.
    st.builds(
        lambda w, d, n: {f"f{j}": _or(w, d, {"v": [1]}) for j in range(n)},
        st.integers(2, 32), st.integers(1, 3), st.integers(1, 4),
    ),
    # Many conditions shared by many branches.
    st.builds(
        lambda n, w: {**{f"k{i}": [i] for i in range(n)},
                      **{f"o{j}": {"$or": [{f"b{i}": [i]} for i in range(w)]} for j in range(3)}},
        st.integers(0, 400), st.integers(2, 12),
    ),
    # Oversize: many values, long strings, huge integers.
    st.builds(lambda n: {"a": list(range(n))}, st.integers(0, 300_000)),
    st.builds(lambda n: {"a": ["x" * n]}, st.integers(0, 2_000_000)),
    st.builds(lambda v: {"n": [v]}, HUGE),
    st.builds(lambda v, op: {"n": [{"numeric": [op, v]}]}, HUGE, st.sampled_from([">", "<", "="])),
    # Deep nesting.
    st.builds(
        lambda d: _nest(d, {"a": [1]}), st.integers(0, 5000)
    ),
    # Operator soup.
    st.dictionaries(
        KEYS,
        st.lists(st.dictionaries(OPERATORS, OPERANDS, min_size=1, max_size=2) | SCALARS, max_size=4)
        | st.dictionaries(KEYS, st.lists(SCALARS, max_size=2), max_size=2),
        max_size=4,
    ),
    # AppSync filter groups.
    st.builds(
        lambda g, f, op, v: {"filterGroup": [
            {"filters": [{"fieldName": "a.b", "operator": op, "value": v}] * f}] * g},
        st.integers(0, 12), st.integers(0, 7),
        st.sampled_from(["eq", "ne", "in", "notIn", "gt", "between", "contains",
                         "notContains", "containsAny", "beginsWith", "like"]),
        OPERANDS,
    ),
)  # fmt: skip


def _nest(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    node = leaf
    for _ in range(depth):
        node = {"n": node}
    return node


hostile_events = st.one_of(
    st.builds(lambda n: {"a": [{}] * n + [{"x": 1}], "n": 1}, st.integers(0, 20_000)),
    st.builds(lambda n: {"a": [{"b": [{}] * 50}] * n}, st.integers(0, 200)),
    st.builds(lambda v: {"n": v, "a": {"b": v}, "a.b": v}, SCALARS),
    st.builds(lambda n: {"a": list(range(n)), "v": 1}, st.integers(0, 50_000)),
    st.builds(lambda d: _nest(d, {"a": 1}), st.integers(0, 900)),
    st.dictionaries(KEYS, SCALARS | st.lists(SCALARS, max_size=4), max_size=5),
)
exists_false_patterns = st.sampled_from(
    [
        {"a": {"x": [{"exists": False}]}},
        {"a": {"b": {"x": [{"exists": False}]}, "c": [{"exists": False}]}},
        {"a": {"x": [{"exists": False}], "y": [{"anything-but": 1}]}},
        {"$or": [{"a": {"x": [{"exists": False}]}}, {"n": [2]}]},
    ]
)


def _within_budget(pattern: object, event: object) -> None:
    start = time.process_time()
    refused: InvalidPattern | None = None
    try:
        matcher = filters.compile(pattern)
    except InvalidPattern as exc:
        refused = exc
    if refused is not None:
        assert refused.path.startswith("$")
        assert len(str(refused)) < 400  # messages never embed a whole value
    else:
        verdict = matcher.matches(event)
        assert explain(matcher, event).matched is verdict
        assert len(repr(matcher)) < 300
    spent = time.process_time() - start
    assert spent < BUDGET, f"{spent:.2f} s of CPU"


@FUZZ
@given(hostile_patterns, hostile_events)
def test_hostile_patterns_compile_and_match_within_budget(pattern: Any, event: Any) -> None:
    _within_budget(pattern, event)


@FUZZ
@given(exists_false_patterns, hostile_events)
def test_exists_false_below_arrays_within_budget(pattern: Any, event: Any) -> None:
    _within_budget(pattern, event)


@FUZZ
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_pattern_text_fails_cleanly(text: bytes | str) -> None:
    try:
        result: object = filters.compile(text)
    except InvalidPattern as exc:
        result = exc.path
    assert isinstance(result, filters.Matcher) or str(result).startswith("$")
