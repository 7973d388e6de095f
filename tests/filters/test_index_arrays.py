"""PatternIndex on arrays of objects: conditions below one array hold in one element.

The index tracks which array element each value came from as it walks the machine
(event-ruler's array memberships) instead of verifying each candidate pattern on its
own; these properties check it against each pattern's own ``Matcher.matches`` on
events with arrays of objects at one and two levels, nested arrays, scalars among
the objects and keys missing from some elements.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.filters import PatternIndex

from .concurrency import writing

KEYS = ["a", "b", "c"]
SCALARS = st.sampled_from(["x", "y", "", 0, 1, 2, 5, True, None])

condition = st.one_of(
    st.lists(st.sampled_from(["x", "y", 1, 2]), min_size=1, max_size=2, unique=True),
    st.builds(
        lambda op, n: [{"numeric": [op, n]}],
        st.sampled_from(["<", ">=", "="]),
        st.sampled_from([1, 2]),
    ),
    st.sampled_from(["x", 1]).map(lambda v: [{"anything-but": v}]),
    st.sampled_from(["x", "y"]).map(lambda v: [{"prefix": v}]),
    st.booleans().map(lambda v: [{"exists": v}]),
)


def _objects(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=3)


# Patterns two or three levels deep, so that several conditions sit below one key.
pattern_levels = st.recursive(
    _objects(condition), lambda inner: _objects(inner | condition), max_leaves=6
)
patterns = st.one_of(
    pattern_levels,
    st.builds(lambda p, q: {"$or": [p, q]}, pattern_levels, pattern_levels),
)

# Events: objects whose values are scalars, objects, or arrays mixing objects (and
# nested arrays of them) with scalars; now and then a key spelled with dots (which
# element tracking leaves to verification).
EVENT_KEYS = st.sampled_from([*KEYS, *KEYS, "a.b"])
event_values = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.dictionaries(EVENT_KEYS, inner, max_size=3),
        st.lists(inner | st.dictionaries(EVENT_KEYS, inner, max_size=3), max_size=4),
    ),
    max_leaves=16,
)
events = st.dictionaries(EVENT_KEYS, event_values, min_size=1, max_size=3)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(patterns, min_size=1, max_size=10), st.lists(events, min_size=1, max_size=6))
def test_arrays_of_objects_equal_individual_matchers(pats: list[Any], evs: list[Any]) -> None:
    index: PatternIndex[int] = PatternIndex()
    matchers = {}
    for i, p in enumerate(pats):
        index.add(i, p)
        matchers[i] = filters.compile(p)
    for event in evs:
        assert index.match(event) == {i for i, m in matchers.items() if m.matches(event)}
    for i in range(0, len(pats), 3):
        index.remove(i)
        del matchers[i]
    for event in evs:
        assert index.match(event) == {i for i, m in matchers.items() if m.matches(event)}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("xyz"), st.integers(0, 3)), max_size=6),
    st.lists(st.tuples(st.sampled_from("xyz"), st.integers(0, 3)), min_size=1, max_size=6),
)
def test_same_element_required(pairs: list[tuple[str, int]], items: list[tuple[str, int]]) -> None:
    index: PatternIndex[int] = PatternIndex()
    for i, (sku, qty) in enumerate(pairs):
        index.add(i, {"items": {"sku": [sku], "qty": [{"numeric": [">=", qty]}]}})
    event = {"items": [{"sku": s, "qty": q} for s, q in items]}
    want = {i for i, (sku, qty) in enumerate(pairs) if any(s == sku and q >= qty for s, q in items)}
    assert index.match(event) == want


def test_two_conditions_in_different_elements_do_not_match() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("same", {"items": {"sku": ["A"], "qty": [2]}})
    index.add("deep", {"o": {"items": {"sku": ["A"], "tag": {"k": ["v"]}}}})
    assert index.match({"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}) == set()
    assert index.match({"items": [{"sku": "B", "qty": 1}, {"sku": "A", "qty": 2}]}) == {"same"}
    split = {"o": [{"items": [{"sku": "A"}]}, {"items": [{"tag": {"k": "v"}}]}]}
    assert index.match(split) == set()
    together = {"o": [{"items": [{"sku": "A"}, {"tag": [{"k": "w"}, {"k": "v"}]}]}]}
    assert index.match(together) == set()
    one = {"o": [{}, {"items": [{"x": 1}, {"sku": "A", "tag": [{"k": "w"}, {"k": "v"}]}]}]}
    assert index.match(one) == {"deep"}


def test_many_nested_elements_stay_bounded() -> None:
    # Conditions in sibling arrays below one array of objects multiply the (state,
    # elements) pairs; past a budget the walk falls back to verifying, still exact.
    index: PatternIndex[int] = PatternIndex()
    anything = [{"exists": True}]
    for i in range(20):
        index.add(i, {"a": {"b": {"x": anything}, "c": {"y": anything}, "d": {"z": [i]}}})
    index.add(-1, {"a": {"b": {"x": anything}, "c": {"y": anything}, "d": {"z": [-1]}}})
    row = [{"b": [{"x": j} for j in range(30)], "c": [{"y": j} for j in range(30)],
            "d": [{"z": j} for j in range(30)]} for _ in range(30)]  # fmt: skip
    start = time.process_time()
    assert index.match({"a": row}) == set(range(20))
    assert time.process_time() - start < 5


def test_conditions_left_where_a_branch_ends_hold_in_one_element() -> None:
    # A unique pattern is one state plus conditions tested where it ends: those
    # must hold in the element the state came through, and together in one element.
    index: PatternIndex[str] = PatternIndex()
    index.add("three", {"items": {"sku": ["A"], "qty": [2], "colour": ["red"]}})
    index.add("nested", {"o": {"id": ["1"], "items": {"sku": ["A"], "qty": [2]}}})
    split: dict[str, list[dict[str, Any]]] = {
        "items": [{"sku": "A", "qty": 2}, {"sku": "A", "colour": "red"}]
    }
    assert index.match(split) == set()
    split["items"].append({"qty": 2, "colour": "red", "sku": ["B", "A"]})
    assert index.match(split) == {"three"}
    apart: dict[str, list[dict[str, Any]]] = {
        "o": [{"id": "1", "items": {"sku": "B"}}, {"id": "2", "items": {"sku": "A", "qty": 2}}]
    }
    assert index.match(apart) == set()
    apart["o"][0]["items"] = [{"sku": "A"}, {"qty": [1, 2]}, {"sku": "A", "qty": 2}]
    assert index.match(apart) == {"nested"}


def test_conditions_at_two_depths_below_one_array_hold_in_one_element() -> None:
    # The same pattern thrice: the first ends where its first condition leads (the
    # other left to test there), the others at a state of their own. Values of one
    # element read by paths of different depths (a.k, a.b.c) agree; of two do not.
    index: PatternIndex[int] = PatternIndex()
    for i in range(3):
        index.add(i, {"a": {"k": ["1"], "b": {"c": ["x"]}}})
    same = {"a": [{"k": "1", "b": {"c": "x"}}, {"k": "2", "b": {"c": "y"}}]}
    split = {"a": [{"k": "1", "b": {"c": "y"}}, {"k": "2", "b": {"c": "x"}}]}
    inner = {"a": {"k": "1", "b": [{"c": "y"}, {"c": "x"}]}}
    assert index.match(same) == {0, 1, 2}
    assert index.match(split) == set()
    assert index.match(inner) == {0, 1, 2}
    index.add(3, {"a": {"b": {"c": ["x"], "d": [1]}, "k": ["1"]}})
    nested = {"a": [{"k": "1", "b": [{"c": "x", "d": 2}, {"c": "y", "d": 1}]}, {"k": "2"}]}
    assert index.match(nested) == {0, 1, 2}
    nested["a"][0]["b"].append({"c": "x", "d": 1})  # type: ignore[index]
    assert index.match(nested) == {0, 1, 2, 3}


def _sku(sku: str, *conditions: Any) -> dict[str, Any]:
    return {"detail": {"items": {"sku": [sku], "qty": list(conditions)}}}


def test_a_branch_left_with_a_condition_below_the_array_moves_a_state_deeper() -> None:
    # The first pattern at a state keeps its other condition to test there (once per
    # element the state was reached through); the second one to grow from the state
    # moves it one state deeper, so both are found by lookups.
    index: PatternIndex[str] = PatternIndex()
    for k in range(40):  # skus tell patterns apart: they come first
        index.add(f"o{k}", _sku(f"o{k}", {"numeric": [">=", 1]}))
    index.add("a", _sku("x", {"numeric": [">=", 1]}))
    assert index._filed["a"] is not None
    assert index._filed["a"][5][0].path == ("detail", "items", "sku")
    assert index._filed["a"][4] is not None  # a condition left where it ends
    index.add("b", _sku("x", {"numeric": [">=", 3]}))
    entry = index._filed["a"]
    assert entry is not None
    assert entry[4] is None  # none left: a state for it
    assert entry[6] == 2
    # Same element or nothing: qty 5 is in another element than sku x.
    assert index.match({"detail": {"items": [{"sku": "x", "qty": 2}, {"sku": "y", "qty": 5}]}}) == {
        "a"
    }
    assert index.match({"detail": {"items": [{"sku": "x", "qty": 4}, {"sku": "y"}]}}) == {"a", "b"}
    assert index.match({"detail": {"items": [{"sku": "y", "qty": 4}, {"sku": "x"}]}}) == set()
    index.remove("b")
    assert index.match({"detail": {"items": [{"sku": "x", "qty": 4}, {"sku": "y"}]}}) == {"a"}
    index.remove("a")
    assert len(index._root.children) == 40


def test_a_pattern_of_several_branches_keeps_its_entries_in_place() -> None:
    index: PatternIndex[str] = PatternIndex()
    several = {"$or": [_sku("x", {"numeric": [">=", 1]}), _sku("z", {"numeric": [">=", 1]})]}
    index.add("both", several)
    before = index._filed["both"]
    index.add("b", _sku("x", {"numeric": [">=", 3]}))
    assert index._filed["both"] is before
    assert index.match({"detail": {"items": [{"sku": "x", "qty": 1}]}}) == {"both"}
    assert index.match({"detail": {"items": [{"sku": "z", "qty": 3}, {"sku": "x"}]}}) == {"both"}


def test_matches_while_branches_move_a_state_deeper_miss_none() -> None:
    # Fifty patterns, each alone at its sku (a condition left to test); a writer adds
    # and drops patterns sharing those skus, which moves each of the fifty one state
    # deeper while the matches run: each match still finds its pattern.
    index: PatternIndex[str] = PatternIndex()
    for k in range(50):
        index.add(f"p{k}", _sku(f"s{k}", {"numeric": [">=", 2]}))

    def write(n: int) -> None:
        index.add(f"w{n % 9}", _sku(f"s{n % 50}", {"numeric": [">=", 3 + n % 4]}))
        index.discard(f"w{(n + 4) % 9}")

    with writing(write):
        for step in range(4000):
            k = step % 50
            event = {"detail": {"items": [{"sku": f"s{k}", "qty": 2}, {"sku": "n", "qty": 9}]}}
            assert index.match(event) == {f"p{k}"}, k
    moved = [index._filed[f"p{k}"] for k in range(50)]
    assert all(entry is not None and entry[4] is None for entry in moved)


def test_a_state_is_looked_at_for_branches_to_move_once_not_at_every_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Many branches verified at the `type` state and many more growing from it: the
    # state's pile is looked through when it gets its first child only (else building
    # would cost the pile's size per child: quadratic).
    looked: list[object] = []
    promote = PatternIndex._promote

    def counting(self: PatternIndex[str], state: Any, key: str) -> None:
        looked.append(state)
        promote(self, state, key)

    monkeypatch.setattr(PatternIndex, "_promote", counting)
    index: PatternIndex[str] = PatternIndex()
    typed = {"fieldName": "type", "operator": "eq", "value": "t"}
    for i in range(200):  # ends at the `type` state, verified there (a whole-array test)
        tags = {"fieldName": "tags", "operator": "contains", "value": f"x{i}"}
        index.add(f"c{i}", {"filterGroup": [{"filters": [typed, tags]}]})
    for i in range(200):  # each grows a state from the `type` state
        name = {"fieldName": "name", "operator": "ne", "value": f"n{i}"}
        index.add(f"d{i}", {"filterGroup": [{"filters": [typed, name]}]})
    (state,) = index._root.children.values()
    assert len(state.children) == 200
    assert looked == [state]
    assert index.match({"type": "t", "tags": ["x3"], "name": "n1"}) == {"c3"} | {
        f"d{i}" for i in range(200) if i != 1
    }


def test_what_a_field_gives_a_value_below_an_array_is_kept_for_one_epoch() -> None:
    # Below an array of objects, what a field's lookup gives a value (the keys its
    # states settle, the states to walk on) is kept per value for the index's epoch:
    # a pattern joining a state already there changes no field, yet must be found.
    index: PatternIndex[str] = PatternIndex()
    for k in range(40):  # skus tell patterns apart: they come first
        index.add(f"o{k}", _sku(f"o{k}", {"numeric": [">=", 1]}))
    index.add("a", _sku("x", {"numeric": [">=", 1]}))
    index.add("b", _sku("x", {"numeric": [">=", 3]}))
    event = {"detail": {"items": [{"sku": "x", "qty": 4}, {"sku": "y", "qty": 4}]}}
    assert index.match(event) == {"a", "b"}
    sku = dict(index._root.moves)[("detail", "items", "sku")]
    x_state = sku.exact["x"]
    qty = dict(x_state.moves)[("detail", "items", "qty")]
    assert qty.cells is not None
    assert qty.cells[4][1] in {("a", "b"), ("b", "a")}  # kept: both keys settled there
    index.add("c", _sku("x", {"numeric": [">=", 3]}))  # b's state: no field changes
    assert qty.cells is not None
    assert index.match(event) == {"a", "b", "c"}
    index.remove("b")
    assert index.match(event) == {"a", "c"}
    index.add("d", _sku("x", {"numeric": [">=", 2]}))  # a new range: the field drops them
    assert qty.cells is None
    assert index.match(event) == {"a", "c", "d"}
    assert index.match({"detail": {"items": [{"sku": "x", "qty": 2}, {"sku": "x"}]}}) == {"a", "d"}
    # Values not kept (a float, a bool) are looked up each time.
    assert index.match({"detail": {"items": [{"sku": "x", "qty": 3.5}, {"sku": "y"}]}}) == {
        "a",
        "c",
        "d",
    }
    assert index.match({"detail": {"items": [{"sku": "x", "qty": True}, {"sku": "y"}]}}) == set()
    assert set(qty.cells or {}) == {4, 2}
