"""RangeIndex: the numeric-range structure agrees with testing every range."""

from __future__ import annotations

import bisect
import math
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import PatternIndex
from eventpatterns.filters._index import _tester
from eventpatterns.filters._model import AnythingBut, Exact, Leaf, Numeric, as_double
from eventpatterns.filters._predicates import canon as filters_canon
from eventpatterns.filters._ranges import _REPAY, RangeIndex

from .concurrency import writing

# Bounds are doubles (the language refuses numbers a double does not hold exactly).
numbers = st.one_of(
    st.integers(-100, 100).map(float),
    st.floats(-1e6, 1e6, allow_nan=False),
    st.sampled_from([0.0, 0.5, 1.0, 2.0, 2.0**53, 1e308, -1e308, 1.7976931348623157e308]),
)
# Event values: also numbers without a double (in no range) and ints a double holds.
values = (
    numbers
    | st.integers(-100, 100)
    | st.sampled_from(
        [0, 1, 2, 2**53, 2**53 + 1, 10**308, 10**400, -(10**400), 2**1023, float("inf")]
    )
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


def _collect_both(index: RangeIndex, value: float) -> tuple[list[int], list[int]]:
    """Collect ``value`` as the index stands, and with its families alone (not flat)."""
    out: list[object] = []
    index.collect(value, out)
    flat, index.flat = index.flat, None
    searched: list[object] = []
    try:
        index.collect(value, searched)
    finally:
        index.flat = flat
    return sorted(cast("list[int]", out)), sorted(cast("list[int]", searched))


@settings(max_examples=300)
@given(st.lists(ranges(), max_size=24), st.lists(values, min_size=1, max_size=6), st.data())
def test_collect_equals_brute_force(
    rngs: list[Numeric], values: list[float | int], data: st.DataObject
) -> None:
    index = RangeIndex()
    for cid, rng in enumerate(rngs):
        index.add(cid, rng)
    removed = set(data.draw(st.sets(st.sampled_from(range(len(rngs)))) if rngs else st.just(set())))
    for cid in removed:
        index.remove(cid, rngs[cid])
    # Few ranges are tested one by one (flat), more are searched: both answer alike.
    assert (index.flat is not None) == (index.size <= 16)
    for value in values:
        double = as_double(value)
        got: tuple[list[int], list[int]] = ([], [])
        if double is not None:  # the caller's rule (FieldIndex): no double, no range
            got = _collect_both(index, double)
        want = sorted({c for c, r in enumerate(rngs) if c not in removed and r.test(value)})
        assert got == (want, want)


def test_huge_bounds_through_patterns() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("huge", {"n": [{"numeric": [">", -(10**308), "<", 10**308]}]})
    index.add("wide", {"n": [{"numeric": [">", -1e308, "<", 1.5e308]}]})
    index.add("narrow", {"n": [{"numeric": [">=", 1, "<=", 2]}]})
    assert index.match({"n": 1.5}) == {"huge", "wide", "narrow"}
    assert index.match({"n": 1.2e308}) == {"wide"}
    assert index.match({"n": -(10**307)}) == {"huge", "wide"}
    # Event numbers without a double are in no range, and never crash a lookup.
    for value in (10**309, -(10**399), 10**5000, 2**53 + 1):
        assert index.match({"n": value}) == set()
        assert not filters.compile({"n": [{"numeric": [">", -(10**308)]}]}).matches({"n": value})
    # Bounds without a double are refused.
    for bound in (10**400, -(10**400)):
        with pytest.raises(InvalidPattern):
            filters.compile({"n": [{"numeric": [">", bound]}]})
        with pytest.raises(InvalidPattern):
            index.add("refused", {"n": [{"numeric": [">", -1, "<", bound]}]})
    assert len(index) == 3


@st.composite
def narrow_near(draw: st.DrawFn) -> tuple[list[Numeric], list[float]]:
    """Narrow ranges far from zero and values at their edges (the window's rounding)."""
    centre = draw(st.sampled_from([0.0, 1.0, 1e6, 2.0**40, 3.0**33, 1e15, 2.0**52, 1e300]))
    rngs: list[Numeric] = []
    edges: list[float] = []
    for _ in range(draw(st.integers(1, 8))):
        low = centre + draw(st.sampled_from([0.0, 1.0, 1024.0, -4096.0])) * max(1.0, centre * 1e-12)
        width = draw(st.sampled_from([0.25, 1.0, 3.0, 1000.0, 2.0**20])) * max(1.0, centre * 2e-16)
        high = low + width
        rngs.append(Numeric("numeric", None, low, draw(st.booleans()), high, draw(st.booleans())))
        for edge in (low, high):
            edges.extend([edge, math.nextafter(edge, -math.inf), math.nextafter(edge, math.inf)])
    return rngs, edges


@settings(max_examples=300)
@given(narrow_near())
def test_windows_hold_every_range_at_its_edges(case: tuple[list[Numeric], list[float]]) -> None:
    rngs, edges = case
    index = RangeIndex()
    for cid, rng in enumerate(rngs):
        index.add(cid, rng)
    for value in edges:
        want = sorted(c for c, r in enumerate(rngs) if r.test(value))
        assert _collect_both(index, value) == (want, want)


@settings(max_examples=300)
@given(st.lists(ranges(), min_size=1, max_size=4), st.lists(values, min_size=1, max_size=8))
def test_index_tester_equals_test_value(rngs: list[Numeric], values: list[object]) -> None:
    """The index's specialised test of a numeric leaf answers as the leaf does."""
    leaf = Leaf(("n",), tuple(rngs))
    test = _tester(leaf)
    assert test is not leaf.test_value  # specialised
    for value in [*values, True, False, None, "5", float("nan"), -float("inf")]:
        assert test(value) is leaf.test_value(value), value
    # Other leaves keep their own test.
    exact = Leaf(("n",), (Exact("exact", None, 5),))
    assert _tester(exact) == exact.test_value


scalars = st.one_of(
    st.sampled_from(["a", "b", "c", "", "5"]),
    st.integers(-3, 6),
    st.sampled_from([5.0, 0.5, True, False, None, 2**53 + 1, float("nan")]),
)


@settings(max_examples=300)
@given(
    st.lists(st.lists(scalars, min_size=1, max_size=3), min_size=1, max_size=3),
    st.lists(scalars, min_size=1, max_size=8),
)
def test_index_tester_anything_but_lists(lists: list[list[object]], values: list[object]) -> None:
    """``anything-but`` lists of values: the specialised test answers as the leaf does."""
    alts = tuple(
        AnythingBut("anything-but", None, tuple(Exact("exact", None, filters_canon(v)) for v in vs))
        for vs in lists
    )
    leaf = Leaf(("s",), alts)
    test = _tester(leaf)
    assert test is not leaf.test_value
    for value in values:
        assert test(value) is leaf.test_value(value), value


def test_narrow_ranges_join_a_sparse_wider_band_not_a_dense_one() -> None:
    # Ranges of width ~1,500 (class 11) spread over a million: a range of width 100
    # (class 7, four classes narrower) joins their band; packed into a few thousand,
    # the band is dense, and the narrow range gets a band of its own.
    def build(spread: float) -> RangeIndex:
        index = RangeIndex()
        for i in range(40):
            low = i * spread / 40
            index.add(("wide", i), Numeric("numeric", None, low, True, low + 1500, False))
        index.add("narrow", Numeric("numeric", None, 5000.5, True, 5100.5, False))
        return index

    sparse, dense = build(1_000_000), build(4_000)
    assert [k for k, *_ in sparse.bands] == [11]
    assert [k for k, *_ in dense.bands] == [7, 11]
    for index in (sparse, dense):
        for value in (5000.0, 5000.5, 5050, 5100.5, 5101):
            out: list[object] = []
            index.collect(value, out)
            want = {("wide", i) for i in range(40) if i * 25_000 <= value < i * 25_000 + 1500}
            if index is dense:
                want = {("wide", i) for i in range(40) if i * 100 <= value < i * 100 + 1500}
            assert set(out) == want | ({"narrow"} if 5000.5 <= value < 5100.5 else set())
        index.remove("narrow", Numeric("numeric", None, 5000.5, True, 5100.5, False))
        assert index.size == 40


grid = st.integers(0, 40).map(float)


@st.composite
def grid_ranges(draw: st.DrawFn) -> Numeric:
    """Bounded ranges on a small grid: many overlap, many share a bound."""
    a, b = draw(grid), draw(grid)
    low, high = min(a, b), max(a, b)
    return Numeric("numeric", None, low, draw(st.booleans()), high, draw(st.booleans()))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(grid_ranges(), min_size=70, max_size=260),
    st.data(),
)
def test_stabbing_table_equals_brute_force(rngs: list[Numeric], data: st.DataObject) -> None:
    # Enough ranges for the stabbing table (see _ranges._stab), two per target (a
    # target's ranges leave the table together or move to the bands), adds and
    # removals interleaved: every answer is the brute force's, at every step.
    index = RangeIndex()
    live: dict[int, Numeric] = {}
    order = data.draw(st.permutations(range(len(rngs))))
    drops = data.draw(st.lists(st.integers(0, len(rngs) - 1), max_size=len(rngs)))
    probes = [v / 2 for v in range(-1, 83)]
    tabulated = solo = False
    for step, cid in enumerate(order):
        index.add(cid // 2, rngs[cid])
        live[cid] = rngs[cid]
        if step < len(drops) and drops[step] in live and drops[step] != cid:
            gone = drops[step]
            index.remove(gone // 2, live.pop(gone))
        tabulated = tabulated or index.snap is not None
        solo = solo or index.solo is not None
        if step % 23 == 0 or step == len(order) - 1:
            for value in probes:
                out: list[object] = []
                index.collect(value, out)
                want = {c // 2 for c, r in live.items() if r.test(value)}
                assert set(cast("list[int]", out)) == want, value
                if index.solo is not None:  # the table alone: one slot is the answer
                    assert set(_slot(index, value)) == want, value
    for cid in list(live):  # and taken apart to the last
        index.remove(cid // 2, live.pop(cid))
        if len(live) % 17 == 0:
            for value in probes:
                out = []
                index.collect(value, out)
                assert set(cast("list[int]", out)) == {
                    c // 2 for c, r in live.items() if r.test(value)
                }
    # (Two equal ranges to one target keep every range in the bands.)
    if len({(c // 2, r) for c, r in enumerate(rngs)}) == len(rngs):
        assert tabulated
        assert solo
    assert index.size == 0
    assert index.snap is None


def _slot(index: RangeIndex, value: float) -> list[int]:
    """The targets of the slot holding ``value``, as PatternIndex reads ``solo``."""
    assert index.solo is not None
    bounds, slots, dead, cells = index.solo
    assert len(cells) == len(slots)
    at = bisect.bisect_left(bounds, value)
    at = 2 * at + 1 if at < len(bounds) and bounds[at] == value else 2 * at
    return [t for t in slots[at] if t not in dead]


def _solo(ranges: Any) -> Any:
    """``RangeIndex.solo`` as it is now (a call: mypy does not narrow it across changes)."""
    return ranges.solo


def test_solo_is_the_table_while_it_holds_every_range() -> None:
    index, live = _tail_index(100)
    assert _solo(index) is None  # ranges wait in the bands
    for _ in range(_REPAY * 100 + 1):
        index.collect(50.0, [])
    assert not index.bands
    assert _solo(index) is not None  # the lookup's build published it
    assert _slot(index, 50.0) == [48, 49, 50]
    threshold = Numeric("numeric", None, 10.0, False, None, False)
    index.add("gt", threshold)  # another family: the slot is not the whole answer
    assert _solo(index) is None
    index.remove("gt", threshold)
    assert _solo(index) is not None
    index.remove(49, live.pop(49))  # a dead target: left out of the slot
    assert _solo(index) is not None
    assert _slot(index, 50.0) == [48, 50]
    for i in list(live)[:90]:  # few left: tested one by one
        index.remove(i, live.pop(i))
    assert _solo(index) is None
    _answers(index, live, [v / 2 for v in range(-4, 210)])


def _tail_index(count: int) -> tuple[RangeIndex, dict[int, Numeric]]:
    """``count`` bounded ranges, filed so that some are left in the bands after the table."""
    index = RangeIndex()
    live = {}
    for i in range(count):
        rng = Numeric("numeric", None, float(i), True, float(i) + 2.5, False)
        index.add(i, rng)
        live[i] = rng
    return index, live


def _answers(index: RangeIndex, live: dict[int, Numeric], probes: list[float]) -> None:
    for value in probes:
        out: list[object] = []
        index.collect(value, out)
        assert sorted(cast("list[int]", out)) == [i for i, r in live.items() if r.test(value)]


def test_lookups_that_search_the_bands_rebuild_the_table_once_they_cost_as_much() -> None:
    # 100 ranges: writers built the table at 64 (the next build waits for 64 more), so
    # the last 36 wait in the bands for a build that no writer makes; lookups make it
    # once they have searched the bands _REPAY times per range.
    index, live = _tail_index(100)
    assert index.snap is not None
    assert index.bands
    probes = [v / 2 for v in range(-4, 210)]
    _answers(index, live, probes)  # fewer lookups than _REPAY * 100: no build yet
    assert index.bands
    lookups = _REPAY * 100 + 1 - len(probes)
    for _ in range(lookups):
        index.collect(50.0, [])
    assert not index.bands  # built: every range in the table
    assert index.snap is not None
    assert len(index.snap[0]) == 200
    _answers(index, live, probes)


def test_a_lookup_leaves_the_build_to_a_writer_holding_the_lock() -> None:
    index, live = _tail_index(100)
    assert index.bands
    with index._lock:  # a writer at work: the lookups only count
        for _ in range(_REPAY * 100 + 5):
            out: list[object] = []
            index.collect(50.0, out)
            assert sorted(cast("list[int]", out)) == [48, 49, 50]
        assert index.bands
    index.collect(50.0, [])  # the next lookup after the writer let go builds it
    assert not index.bands
    _answers(index, live, [v / 2 for v in range(-4, 210)])


def test_lookups_racing_writers_find_every_range_in_place() -> None:
    # Readers re-build the table while a writer files and unfiles ranges: the answers
    # always hold the ranges that stay, whatever was published in between.
    index, stable = _tail_index(300)

    def write(n: int) -> None:
        key = 1000 + n % 50
        rng = Numeric("numeric", None, float(n % 300), True, float(n % 300) + 1.5, True)
        index.add(key, rng)
        index.remove(key, rng)

    rebuilt = 0
    with writing(write):
        for round_ in range(40):
            before = index.snap
            for value in (v / 2 for v in range(0, 600, 7)):
                out: list[object] = []
                index.collect(value, out)
                want = {i for i, r in stable.items() if r.test(value)}
                assert want <= set(out) <= want | set(range(1000, 1050))
            rebuilt += index.snap is not before
            if round_ > 20 and rebuilt:
                break
    assert rebuilt  # the lookups did re-build the table while the writer ran
