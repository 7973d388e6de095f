"""PatternIndex against per-pattern matchers on compound patterns that share states.

Many patterns drawn from small vocabularies agree on their leading conditions, so
they share states, ranges, complements and rests in the machine; the index must
still answer exactly what each pattern's own ``Matcher.matches`` answers, while
patterns come, go and come back (which moves branches between states).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.filters import PatternIndex
from eventpatterns.filters._model import as_double

ROUTES = ["shop", "auth", "crm"]
VALUES = ["x", "xy", "y", "X", "", "10.0.0.7"]
NUMBERS = [0, 1, 1.5, 2, 5, -3, 10**20, 2**53 + 1]
# Numeric bounds must be numbers a double holds exactly (the language refuses 2**53 + 1
# there); as exact values and in events, the others stay.
BOUNDS = [n for n in NUMBERS if as_double(n) is not None]

condition = st.one_of(
    st.sampled_from(VALUES).map(lambda v: [v]),
    st.sampled_from(NUMBERS).map(lambda v: [v]),
    st.builds(
        lambda op, n: [{"numeric": [op, n]}],
        st.sampled_from(["<", "<=", "=", ">", ">="]),
        st.sampled_from(BOUNDS),
    ),
    st.builds(
        lambda span, a, b: [
            {"numeric": [">=" if a else ">", span[0], "<=" if b else "<", span[0] + span[1]]}
        ],
        st.sampled_from([(-3, 0.5), (0, 1), (1, 4), (1.5, 0.5), (2**53, 2), (0, 3000)]),
        st.booleans(),
        st.booleans(),
    ),
    st.sampled_from(["x", "y", ["x", "y"], [1, 5], 1]).map(lambda v: [{"anything-but": v}]),
    st.sampled_from(["x", "X"]).map(lambda v: [{"anything-but": {"prefix": v}}]),
    st.sampled_from(["x*", "*y", "x*y", "*"]).map(lambda v: [{"wildcard": v}]),
    st.sampled_from(["x", "X"]).map(lambda v: [{"prefix": {"equals-ignore-case": v}}]),
    st.sampled_from(["x", "y"]).map(lambda v: [{"suffix": v}]),
    st.sampled_from(["X", "xy"]).map(lambda v: [{"equals-ignore-case": v}]),
    st.sampled_from(["10.0.0.0/8", "10.0.0.0/30"]).map(lambda v: [{"cidr": v}]),
    st.booleans().map(lambda v: [{"exists": v}]),
    st.lists(st.sampled_from([*VALUES, 1, {"prefix": "x"}, {"numeric": [">", 1]}]), min_size=2,
             max_size=3),
)  # fmt: skip

compound = st.builds(
    lambda route, fields, deep, alt: {
        "source": [route],
        **fields,
        **({"detail": deep} if deep else {}),
        **({"$or": [{"a": alt}, {"b": alt}]} if alt else {}),
    },
    st.sampled_from(ROUTES),
    st.dictionaries(st.sampled_from(["a", "b"]), condition, max_size=2),
    st.dictionaries(st.sampled_from(["c", "d"]), condition, max_size=2),
    st.none() | condition,
)

scalar = st.sampled_from([*VALUES, *NUMBERS, True, None, "xx", "yxy", "10.1.2.3"])
field = scalar | st.lists(scalar, max_size=3)
events = st.builds(
    lambda route, top, detail: {"source": route, **top, "detail": detail},
    st.sampled_from([*ROUTES, "other"]),
    st.dictionaries(st.sampled_from(["a", "b"]), field, max_size=2),
    st.dictionaries(st.sampled_from(["c", "d"]), field, max_size=2)
    | st.lists(st.dictionaries(st.sampled_from(["c", "d"]), field, max_size=2), max_size=3),
)


def _expected(matchers: dict[int, filters.Matcher], event: Any) -> set[int]:
    return {i for i, m in matchers.items() if m.matches(event)}


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(compound, min_size=5, max_size=40), st.lists(events, min_size=1, max_size=6))
def test_compound_patterns_equal_individual_matchers(pats: list[Any], evs: list[Any]) -> None:
    index: PatternIndex[int] = PatternIndex()
    matchers = {}
    for i, p in enumerate(pats):
        index.add(i, p)
        matchers[i] = filters.compile(p)
    for event in evs:
        assert index.match(event) == _expected(matchers, event)
    for i in range(0, len(pats), 3):  # remove a third, replace a third
        index.remove(i)
        del matchers[i]
    for i in range(1, len(pats), 3):
        index.add(i, pats[-i])
        matchers[i] = filters.compile(pats[-i])
    for event in evs:
        assert index.match(event) == _expected(matchers, event)
    for i in list(matchers):
        index.remove(i)
    assert index._root.moves == ()


def test_many_equal_patterns_and_one_rest() -> None:
    index: PatternIndex[int] = PatternIndex()
    for i in range(30):
        index.add(i, {"source": ["shop"], "a": [{"numeric": [">", i]}], "b": ["x"]})
    assert index.match({"source": "shop", "a": 10.5, "b": "x"}) == set(range(11))
    assert index.match({"source": "shop", "a": 10.5, "b": "y"}) == set()
    index.remove(0)  # the branch that kept its conditions as a rest
    assert index.match({"source": "shop", "a": 100, "b": "x"}) == set(range(1, 30))
