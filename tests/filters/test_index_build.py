"""PatternIndex bookkeeping that keeps building cheap: piles, shared notes, memos, sizes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from eventpatterns import filters
from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import PatternIndex, _fields, _index
from eventpatterns.filters._model import Conjunction, Exact, Leaf, Predicate


def test_many_branches_ending_at_one_state_come_and_go_in_any_order() -> None:
    # 200 patterns with the same condition end at one state: its pile of entries grows
    # past one run (a large run and a small one, merged now and then) and shrinks again.
    index: PatternIndex[int] = PatternIndex()
    for i in range(200):
        index.add(i, {"source": ["shop"]})
    ((_, fields),) = index._root.moves
    state = fields.exact["shop"]
    assert len(state.more) > len(state.accept or ())  # a large run and a small one (settled)
    assert len(state.more) + len(state.accept or ()) == 200
    assert index.match({"source": "shop"}) == set(range(200))
    for i in [*range(0, 200, 2), *range(199, 0, -2)]:
        index.remove(i)
        assert i not in index.match({"source": "shop"})
    assert index.match({"source": "shop"}) == set()
    assert index._root.moves == ()


def test_a_pile_refuses_to_drop_what_it_does_not_hold() -> None:
    entry: Any = ("k", 1, None, None, (), (), 0, ())
    other: Any = ("k", 2, None, None, (), (), 0, ())
    state = _index._State()
    _index._pile_add(state, entry)
    with pytest.raises(ValueError):
        _index._pile_drop(state, other)
    assert state.check == (entry,)  # not settled: conditions left (an empty rest)
    table: dict[object, Any] = {"a": "target"}
    with pytest.raises(ValueError):
        _fields._drop_one(table, "a", "another")
    assert table == {"a": "target"}


@dataclass(frozen=True, slots=True)
class _In(Predicate):
    """A kind the index does not know, with an unhashable field."""

    allowed: list[str] | None = None

    def test(self, value: object) -> bool:
        return value in (self.allowed or [])


def test_predicates_with_unhashable_fields_are_never_shared() -> None:
    index: PatternIndex[str] = PatternIndex()
    for key, allowed in (("ab", ["a", "b"]), ("bc", ["b", "c"])):
        leaf = Leaf(("s",), (_In("in", None, allowed),))
        index.add(key, filters.Matcher((Conjunction((leaf,)),), key))
    assert index.match({"s": "b"}) == {"ab", "bc"}
    assert index.match({"s": "c"}) == {"bc"}
    assert len(index._root.children) == 2


def test_a_pattern_without_branches_matches_nothing_and_goes() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("none", filters.Matcher((), "no branches"))
    for i in range(10):  # a re-ordering passes over it
        index.add(f"p{i}", {"a": [str(i)], "b": ["x"]})
    assert "none" in index
    assert index.match({"a": "1", "b": "x"}) == {"p1"}
    index.remove("none")
    index.discard("none")
    index.add("none", filters.Matcher((), "again"))
    index.discard("none")
    assert "none" not in index


class _Pair(Leaf):
    """A condition on an array as a whole: two elements (verified by the tree)."""

    def check(self, value: object, root: object) -> bool:
        return isinstance(value, list) and len(value) == 2


def test_branches_of_the_same_leaves_share_one_verdict() -> None:
    index: PatternIndex[str] = PatternIndex()
    pair = _Pair(("tags",), (Exact("equals", None, "x"),))
    s = Leaf(("s",), (Exact("equals", None, "q"),))
    for key in ("a", "b", "c"):
        index.add(key, filters.Matcher((Conjunction((pair, s)),), key))
    calls: list[object] = []
    tree = index.get("a").branches[0].tree  # type: ignore[union-attr]
    real = type(tree).match

    def counting(self: Any, obj: Any, root: Any) -> bool:
        calls.append(obj)
        return real(self, obj, root)

    try:
        type(tree).match = counting  # type: ignore[method-assign]
        assert index.match({"s": "q", "tags": [1, 2]}) == {"a", "b", "c"}
        assert index.match({"s": "q", "tags": [1]}) == set()
    finally:
        type(tree).match = real  # type: ignore[method-assign]
    # One top-level tree match per event for the three (nested nodes add their own).
    assert len([c for c in calls if isinstance(c, dict) and "s" in c]) == 2


def test_notes_and_estimates_stay_bounded_as_patterns_come_and_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_index, "_NOTES_MAX", 2)
    index: PatternIndex[int] = PatternIndex()
    for i in range(1100):  # one pattern held at a time, each of a shape of its own
        index.add(i, {f"f{i % 5}": {"x": [str(i)], "y": [str(i)]}})
        if i:
            index.remove(i - 1)
        assert len(index._memo) <= 1040  # else 2,200 (two leaves per pattern)
        assert len(_index._NOTES) <= 2
    assert index.match({"f4": {"x": "1099", "y": "1099"}}) == {1099}
    assert index.match({"f3": {"x": "1098", "y": "1098"}}) == set()


def test_the_size_limit_counts_escapes_and_string_subclasses() -> None:
    class Text(str):
        __slots__ = ()

    # 1,000 newlines are 1,000 characters, and 2,000 as JSON ("\n" each).
    with pytest.raises(InvalidPattern, match="over 1500 characters"):
        filters.compile({"a": ["\n" * 1000]}, limits=filters.Limits(max_pattern_chars=1500))
    filters.compile({"a": ["x" * 1000]}, limits=filters.Limits(max_pattern_chars=1500))
    with pytest.raises(InvalidPattern, match="over 100 characters"):
        filters.compile({"a": [Text("y" * 120)]}, limits=filters.Limits(max_pattern_chars=100))
    matcher = filters.compile({"a": [Text("yes")]})
    assert matcher.matches({"a": "yes"})


def test_leaves_are_shared_by_their_json_text_and_kept_apart_by_it() -> None:
    a = filters.compile({"n": [{"numeric": [">", 1]}], "s": [1]})
    b = filters.compile({"n": [{"numeric": [">", 1]}], "s": [1.0]})
    c = filters.compile({"n": [{"numeric": [">", 1]}], "s": [True]})
    leaves = [{leaf.path: leaf for leaf in m.branches[0].leaves} for m in (a, b, c)]
    assert leaves[0][("n",)] is leaves[1][("n",)] is leaves[2][("n",)]
    # 1 and 1.0 match alike but are written differently (explain shows them as written).
    assert leaves[0][("s",)] is not leaves[1][("s",)]
    assert [p.spec for p in leaves[1][("s",)].alternatives] == [1.0]
    assert not c.matches({"n": 2, "s": 1})
    assert c.matches({"n": 2, "s": True})
    # A wildcard leaf depends on the limit on stars: it is not shared across limits.
    glob = {"p": [{"wildcard": "a*b*c"}]}
    filters.compile(glob)
    with pytest.raises(InvalidPattern, match="too complex"):
        filters.compile(glob, limits=filters.Limits(max_wildcards=1))


def test_many_anything_but_alternatives_on_one_field_come_and_go() -> None:
    # Thirty complements on one field: their entries outgrow one run and shrink again.
    index: PatternIndex[int] = PatternIndex()
    for i in range(30):
        index.add(i, {"s": [{"anything-but": [f"v{i}"]}]})
    assert index.match({"s": "v3"}) == set(range(30)) - {3}
    for i in range(30):
        index.remove(i)
        assert index.match({"s": "v29"}) == set(range(i + 1, 29))
    assert index._root.moves == ()
