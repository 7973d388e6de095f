"""RangeIndex: the numeric-range structure agrees with testing every range."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.filters import PatternIndex
from eventpatterns.filters._model import Numeric
from eventpatterns.filters._ranges import RangeIndex

numbers = st.one_of(
    st.integers(-100, 100),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0, 0.5, 1, 2, 10**400, -(10**400), 1e308, -1e308]),
)


@st.composite
def ranges(draw: st.DrawFn) -> Numeric:
    kind = draw(st.sampled_from(["lower", "upper", "both"]))
    a, b = draw(numbers), draw(numbers)
    if kind == "lower":
        return Numeric("numeric", None, a, draw(st.booleans()), None, False)
    if kind == "upper":
        return Numeric("numeric", None, None, False, a, draw(st.booleans()))
    low, high = min(a, b), max(a, b)
    return Numeric("numeric", None, low, draw(st.booleans()), high, draw(st.booleans()))


@settings(max_examples=300)
@given(st.lists(ranges(), max_size=12), st.lists(numbers, min_size=1, max_size=6), st.data())
def test_collect_equals_brute_force(
    rngs: list[Numeric], values: list[float], data: st.DataObject
) -> None:
    index = RangeIndex()
    for cid, rng in enumerate(rngs):
        index.add(cid, rng)
    removed = set(data.draw(st.sets(st.sampled_from(range(len(rngs)))) if rngs else st.just(set())))
    for cid in removed:
        index.remove(cid, rngs[cid])
    for value in values:
        out: list[object] = []
        index.collect(value, out)
        assert sorted(out) == sorted(
            {c for c, r in enumerate(rngs) if c not in removed and r.test(value)}
        )


def test_huge_bounds_through_patterns() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("huge", {"n": [{"numeric": [">", -(10**400), "<", 10**400]}]})
    index.add("wide", {"n": [{"numeric": [">", -1e308, "<", 1e308]}]})
    index.add("narrow", {"n": [{"numeric": [">=", 1, "<=", 2]}]})
    assert index.match({"n": 1.5}) == {"huge", "wide", "narrow"}
    assert index.match({"n": 10**309}) == {"huge"}
    assert index.match({"n": -(10**399)}) == {"huge"}
    assert filters.compile({"n": [{"numeric": [">", -(10**400), "<", 10**400]}]}).matches(
        {"n": 10**300}
    )
