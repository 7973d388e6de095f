"""Property tests: index == individual matchers, explain == matches, no crashes."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import PatternIndex, explain

KEYS = ["a", "b", "c"]
STRINGS = ["x", "xy", "yx", "X", "", "10.0.0.1", "10.9.8.7", "::1", "a*b"]
NUMBERS = [0, 1, 1.0, 1.5, -2, 5, 10**20]
SCALARS = st.sampled_from([*STRINGS, *NUMBERS, True, False, None])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)

events = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=12,
).map(lambda v: v if isinstance(v, dict) else {"a": v})

text = st.sampled_from(["x", "y", "X", "", "10"])
alternatives = st.one_of(
    SCALARS,
    st.builds(lambda t: {"prefix": t}, text),
    st.builds(lambda t: {"suffix": t}, text),
    st.builds(lambda t: {"prefix": {"equals-ignore-case": t}}, text),
    st.builds(lambda t: {"suffix": {"equals-ignore-case": t}}, text),
    st.builds(lambda t: {"equals-ignore-case": t}, text),
    st.builds(
        lambda w: {"wildcard": w}, st.sampled_from(["*", "x*", "*y", "x*y", "*x*", "a\\*b", "x"])
    ),
    st.builds(lambda v: {"anything-but": v}, st.sampled_from(["x", 1, ["x", "y"], [0, 5]])),
    st.builds(
        lambda o, t: {"anything-but": {o: t}},
        st.sampled_from(["prefix", "suffix"]),
        st.sampled_from(["x", "y"]),
    ),
    st.builds(
        lambda t: {"anything-but": {"equals-ignore-case": t}}, st.sampled_from(["x", ["X", "y"]])
    ),
    st.builds(lambda t: {"anything-but": {"wildcard": t}}, st.sampled_from(["x*", ["*y", "a*"]])),
    st.builds(
        lambda op, n: {"numeric": [op, n]},
        st.sampled_from(["<", "<=", "=", ">", ">="]),
        st.sampled_from(NUMBERS),
    ),
    st.builds(
        lambda lo, w: {"numeric": [">=", lo, "<", lo + w]},
        st.sampled_from([-2, 0, 1]),
        st.sampled_from([0.5, 1, 5]),
    ),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(lambda c: {"cidr": c}, st.sampled_from(["10.0.0.0/8", "10.0.0.0/24", "::/0"])),
)
leaves = st.lists(alternatives, min_size=1, max_size=3)
patterns = st.recursive(
    st.dictionaries(st.sampled_from(KEYS), leaves, min_size=1, max_size=2),
    lambda inner: st.one_of(
        st.dictionaries(st.sampled_from(KEYS), inner | leaves, min_size=1, max_size=3),
        st.builds(lambda a, b: {"$or": [a, b]}, inner, inner),
    ),
    max_leaves=5,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(patterns, min_size=1, max_size=8), st.lists(events, min_size=1, max_size=5))
def test_index_equals_individual_matchers(pats: list[Any], evs: list[Any]) -> None:
    index: PatternIndex[int] = PatternIndex()
    matchers = {}
    for i, p in enumerate(pats):
        index.add(i, p)
        matchers[i] = filters.compile(p)
    for event in evs:
        assert index.match(event) == {i for i, m in matchers.items() if m.matches(event)}
    for i in range(0, len(pats), 2):
        index.remove(i)
        del matchers[i]
    for event in evs:
        assert index.match(event) == {i for i, m in matchers.items() if m.matches(event)}


@settings(max_examples=300)
@given(patterns, events)
def test_explain_agrees_with_matches(pattern: Any, event: Any) -> None:
    explanation = explain(pattern, event)
    assert explanation.matched is filters.compile(pattern).matches(event)
    if explanation.matched:
        assert any(all(c.matched for c in b.checks) for b in explanation.branches)


@settings(max_examples=300)
@given(json_values)
def test_parser_never_crashes(pattern: Any) -> None:
    try:
        matcher = filters.compile(pattern)
    except InvalidPattern as exc:
        path = exc.path
    else:
        path = "$" if isinstance(matcher.matches({}), bool) else "?"
    assert path.startswith("$")


operator_soup = st.dictionaries(
    st.sampled_from([*KEYS, "$or"]),
    st.lists(
        st.dictionaries(
            st.sampled_from(
                [
                    "prefix",
                    "suffix",
                    "equals-ignore-case",
                    "wildcard",
                    "anything-but",
                    "numeric",
                    "exists",
                    "cidr",
                    "bogus",
                ]
            ),
            json_values
            | st.lists(st.sampled_from(["<", ">=", "=", 1, 2.5, "x", None]), max_size=5),
            min_size=1,
            max_size=2,
        )
        | json_values,
        max_size=3,
    )
    | json_values,
    max_size=3,
)


@settings(max_examples=500)
@given(operator_soup)
def test_parser_never_crashes_on_operator_soup(pattern: Any) -> None:
    try:
        path = "$" if filters.compile(pattern).branches else "?"
    except InvalidPattern as exc:
        path = exc.path
    assert path.startswith("$")


@settings(max_examples=300)
@given(patterns, json_values)
def test_matcher_never_crashes(pattern: Any, event: Any) -> None:
    matcher = filters.compile(pattern)
    result = matcher.matches(event if isinstance(event, dict) else {"a": event, "b": {"c": event}})
    assert isinstance(result, bool)
    index: PatternIndex[str] = PatternIndex()
    index.add("p", pattern)
    assert index.match(event if isinstance(event, dict) else {"a": event}) <= {"p"}


dotted_events = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from([*KEYS, "a.b", "b.c", "a.b.c"]), inner, max_size=3)
    ),
    max_leaves=12,
).map(lambda v: v if isinstance(v, dict) else {"a": v})
dotted_patterns = patterns.map(
    lambda p: {("a.b" if k == "a" else k): v for k, v in p.items()} if isinstance(p, dict) else p
)


@settings(max_examples=200)
@given(dotted_patterns | patterns, dotted_events)
def test_explain_agrees_with_matches_on_dotted_names(pattern: Any, event: Any) -> None:
    explanation = explain(pattern, event)
    matched = filters.compile(pattern).matches(event)
    assert explanation.matched is matched
    if explanation.matched:
        assert any(all(c.matched for c in b.checks) for b in explanation.branches)
    index: PatternIndex[str] = PatternIndex()  # the index reads dotted keys the same way
    index.add("p", pattern)
    assert index.match(event) == ({"p"} if matched else set())


appsync_filters = st.builds(
    lambda field, op, value: {"fieldName": field, "operator": op, "value": value},
    st.sampled_from(["a", "b", "a.b", "c"]),
    st.sampled_from(["eq", "ne", "in", "notIn", "gt", "ge", "lt", "le", "between",
                     "beginsWith", "contains", "notContains", "containsAny"]),
    st.one_of(SCALARS, st.lists(SCALARS, min_size=1, max_size=3)),
)  # fmt: skip
appsync_specs = st.lists(
    st.lists(appsync_filters, min_size=1, max_size=3).map(lambda fs: {"filters": fs}),
    min_size=1,
    max_size=3,
).map(lambda groups: {"filterGroup": groups})


@settings(max_examples=200)
@given(appsync_specs, dotted_events)
def test_appsync_explain_agrees_with_matches(spec: Any, event: Any) -> None:
    try:
        matcher = filters.compile(spec)
    except InvalidPattern as exc:
        where = exc.path
    else:
        where = "$.filterGroup"
        explanation = explain(matcher, event)
        matched = matcher.matches(event)
        assert explanation.matched is matched
        if explanation.matched:
            assert any(all(c.matched for c in b.checks) for b in explanation.branches)
        index: PatternIndex[str] = PatternIndex()  # StringRange, contains, dotted names
        index.add("p", matcher)
        assert index.match(event) == ({"p"} if matched else set())
    assert where.startswith("$.filterGroup")
