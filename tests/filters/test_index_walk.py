"""PatternIndex's fast paths answer as the matchers do (a differential test).

The walk reads paths of plain dicts inline, tests a branch's one remaining condition
in place, looks numbers up directly in fields that hold only ranges, tests a field's
few ranges one by one, and uses specialised tests for numeric and ``anything-but``
conditions: each is checked here against ``Matcher.matches`` on events of every shape
those paths hand on to the general reader (arrays, missing objects, keys spelled with
dots, other mappings, odd numbers).
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.filters import PatternIndex

TYPES = ["a", "b", "c"]
numbers = st.one_of(
    st.integers(-5, 25),
    st.floats(-5, 25, allow_nan=False),
    st.sampled_from([float("nan"), float("inf"), 2**53 + 1, 10.0, 10]),
)


@st.composite
def condition(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["gt", "range", "but", "exact", "absent", "either"]))
    if kind == "gt":
        return [{"numeric": [">", draw(st.integers(-2, 20))]}]
    if kind == "range":
        low = draw(st.integers(-2, 20))
        return [{"numeric": [">=", low, "<", low + draw(st.integers(1, 8))]}]
    if kind == "but":
        return [{"anything-but": draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=2))}]
    if kind == "exact":
        return [draw(st.sampled_from([*TYPES, 10]))]
    if kind == "absent":
        return [{"exists": False}]
    return [{"numeric": ["<", 3]}, {"numeric": [">", 15]}]


@st.composite
def pattern(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["type"] = [draw(st.sampled_from(TYPES))]
    detail: dict[str, Any] = {}
    for field in draw(st.lists(st.sampled_from(["n", "s", "m"]), min_size=1, max_size=2)):
        detail[field] = draw(condition())
    if draw(st.booleans()):
        out["detail"] = detail
    else:
        out["detail"] = {"deep": {"er": detail}}
    return out


scalar = st.one_of(numbers, st.sampled_from([*TYPES, "", True, None]))


@st.composite
def event(draw: st.DrawFn) -> Any:
    detail: dict[str, Any] = {f: draw(scalar) for f in draw(st.sets(st.sampled_from("nsm")))}
    shape = draw(st.sampled_from(["flat", "deep", "array", "dotted", "proxy", "none"]))
    body: Any = detail
    if shape == "deep":
        body = {"deep": {"er": detail}}
    elif shape == "array":
        body = {"deep": {"er": [detail, {"n": draw(scalar)}]}, **detail}
    elif shape == "dotted":
        body = {"deep.er": detail}
    elif shape == "proxy":
        body = MappingProxyType(detail)
    elif shape == "none":
        body = draw(st.sampled_from([None, 5, [1, 2], {}]))
    out: dict[str, Any] = {"detail": body}
    if draw(st.booleans()):
        out["type"] = draw(st.sampled_from([*TYPES, 1]))
    return out


# Enough ranges on one field that it is searched, not tested one by one.
MANY = [{"detail": {"n": [{"numeric": [">", i / 2]}]}} for i in range(-4, 30)]


@settings(max_examples=400)
@given(
    st.lists(pattern(), min_size=1, max_size=24),
    st.lists(event(), min_size=1, max_size=6),
    st.booleans(),
)
def test_walk_answers_as_the_matchers(
    patterns: list[dict[str, Any]], events: list[Any], many: bool
) -> None:
    if many:
        patterns = [*MANY, *patterns]
    index: PatternIndex[int] = PatternIndex()
    matchers = [filters.compile(p) for p in patterns]
    for key, matcher in enumerate(matchers):
        index.add(key, matcher)
    for ev in events:
        assert index.match(ev) == {k for k, m in enumerate(matchers) if m.matches(ev)}, ev
    # Removing half crosses the few-ranges threshold the other way.
    for key in range(0, len(matchers), 2):
        index.remove(key)
    for ev in events:
        want = {k for k, m in enumerate(matchers) if k % 2 and m.matches(ev)}
        assert index.match(ev) == want, ev


class _Text(str):
    """A ``str`` subclass: equal to a plain string, not one to the walk's fast test."""


top_condition = st.sampled_from([["x"], ["y"], ["x", "y"], [1], [{"prefix": "x"}]])
top_value = st.sampled_from(["x", "y", "", ["x"], ["y", "x"], _Text("x"), 1, None, {"x": 1}])


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from("abc"), top_condition, min_size=1),
            st.sampled_from(["u1", "u2"]),
        ),
        min_size=1,
        max_size=12,
    ),
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from("abc"), top_value),
            st.sampled_from(["u1", "u2", None]),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_leftover_top_level_strings_answer_as_the_matchers(
    patterns: list[tuple[dict[str, Any], str]], events: list[tuple[dict[str, Any], str | None]]
) -> None:
    # Branches sharing all but one condition leave the others (here top-level strings,
    # compared in one step when the event holds plain strings) to where they end.
    index: PatternIndex[int] = PatternIndex()
    matchers = []
    for key, (top, user) in enumerate(patterns):
        matcher = filters.compile({**top, "detail": {"user": [user]}})
        matchers.append(matcher)
        index.add(key, matcher)
    for top_values, who in events:
        ev: dict[str, Any] = {**top_values, "detail": {} if who is None else {"user": who}}
        assert index.match(ev) == {k for k, m in enumerate(matchers) if m.matches(ev)}, ev


def test_a_leftover_top_level_string_is_found_in_an_array_and_not_in_another_string() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("p", {"source": ["shop"], "type": ["Placed"], "detail": {"user": ["u-1"]}})
    base = {"source": "shop", "type": "Placed", "detail": {"user": "u-1"}}
    assert index.match(base) == {"p"}
    assert index.match({**base, "source": ["web", "shop"]}) == {"p"}
    assert index.match({**base, "source": _Text("shop")}) == {"p"}
    assert index.match({**base, "source": "shops"}) == set()
    assert index.match({**base, "type": None}) == set()
    assert index.match({k: v for k, v in base.items() if k != "type"}) == set()
    # Another mapping than a dict: its misses go to the general test.
    assert index.match(MappingProxyType(base)) == {"p"}
    assert index.match(MappingProxyType({**base, "source": ["shops", "shop"]})) == {"p"}
    assert index.match(MappingProxyType({**base, "source": "shops"})) == set()


def _table_only(index: PatternIndex[Any], path: tuple[str, ...]) -> Any:
    """The range index of the root's field ``path`` (typed loosely: ``solo`` changes)."""
    fi = dict(index._root.moves)[path]
    assert fi.numeric is not None
    return fi.numeric


# Overlapping ranges on one field, enough for the stabbing table (64 or more) and more
# than are tested one by one: one slot holds several states.
OVERLAPPING = [{"n": [{"numeric": [">=", i, "<", i + 5]}]} for i in range(80)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.integers(0, 79).map(lambda i: ("same", i)),  # a copy of a held range
            st.integers(0, 79).map(lambda i: ("drop", i)),
            st.integers(0, 84).map(lambda i: ("below", i)),  # a range, then another field
            st.just(("threshold", 0)),  # another family: no longer table-only
        ),
        max_size=12,
    ),
    st.lists(st.one_of(st.integers(-2, 90), st.floats(-2, 90, allow_nan=False)), max_size=8),
)
def test_a_table_only_field_answers_from_its_slots_as_the_matchers(
    changes: list[tuple[str, int]], values: list[float]
) -> None:
    # A field whose ranges are all in the stabbing table is answered from the value's
    # slot, and what the slot gives (keys settled, states walked on) is kept for the
    # epoch: every change (a key on a state already there, a key gone, a state with a
    # field of its own) must show in the next match.
    index: PatternIndex[Any] = PatternIndex()
    patterns: dict[Any, dict[str, Any]] = {}
    for key, p in enumerate(OVERLAPPING):
        index.add(key, p)
        patterns[key] = p
    for _ in range(_REPAY_ROUNDS):  # lookups build the table of any tail (see collect)
        for v in range(90):
            index.match({"n": v})
    assert _table_only(index, ("n",)).solo is not None
    probes = [*values, 0, 4.5, 5, 40, 79.99, 84, 85]

    def check() -> None:
        matchers = {k: filters.compile(p) for k, p in patterns.items()}
        for v in probes:
            for ev in ({"n": v}, {"n": v, "m": "x"}, {"n": [v, v + 1], "m": "x"}):
                want = {k for k, m in matchers.items() if m.matches(ev)}
                # Twice: the second answer comes from the kept slot.
                assert index.match(ev) == want, (ev, changes)
                assert index.match(ev) == want, (ev, changes)

    check()
    for step, (kind, i) in enumerate(changes):
        added = ("c", step)
        if kind == "same":
            patterns[added] = OVERLAPPING[i]
        elif kind == "drop":
            if i in patterns:
                index.remove(i)
                del patterns[i]
            continue
        elif kind == "below":
            patterns[added] = {"n": [{"numeric": [">=", i, "<", i + 5]}], "m": ["x"]}
        else:
            patterns[added] = {"n": [{"numeric": [">", 50]}]}
        index.add(added, patterns[added])
        check()


_REPAY_ROUNDS = 5


def _solo(ranges: Any) -> Any:
    """``RangeIndex.solo`` as it is now (a call: mypy does not narrow it across changes)."""
    return ranges.solo


def test_a_table_only_field_is_answered_from_its_slot_and_sees_every_change() -> None:
    index: PatternIndex[Any] = PatternIndex()
    for key, p in enumerate(OVERLAPPING):
        index.add(key, p)
    for _ in range(_REPAY_ROUNDS):
        for v in range(90):
            index.match({"n": v})
    ranges = _table_only(index, ("n",))
    assert _solo(ranges) is not None
    assert index.match({"n": 10}) == {6, 7, 8, 9, 10}
    assert any(cell is not None for cell in ranges.solo[3])  # kept for the epoch
    index.add("twin", OVERLAPPING[8])  # the same range: the state already in the slot
    assert index.match({"n": 10}) == {6, 7, 8, 9, 10, "twin"}
    index.remove(7)
    assert index.match({"n": 10}) == {6, 8, 9, 10, "twin"}
    # A state in the slot that leads on: walked, not settled.
    index.add("deeper", {"n": [{"numeric": [">=", 9, "<", 14]}], "m": ["x"]})
    assert index.match({"n": 10, "m": "x"}) == {6, 8, 9, 10, "twin", "deeper"}
    assert index.match({"n": 10, "m": "y"}) == {6, 8, 9, 10, "twin"}
    index.add("gt", {"n": [{"numeric": [">", 9.5]}]})  # another family: searched again
    assert _solo(ranges) is None
    assert index.match({"n": 10}) == {6, 8, 9, 10, "twin", "gt"}
    index.remove("gt")
    assert _solo(ranges) is not None
    assert index.match({"n": 10}) == {6, 8, 9, 10, "twin"}
