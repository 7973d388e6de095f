"""PatternIndex: bookkeeping, every anchor kind, Events, and concurrent writers."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, cast

import pytest

from eventpatterns import filters
from eventpatterns.core import Event
from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import PatternIndex
from eventpatterns.filters._model import AnythingBut, Conjunction, Exact, Leaf, Predicate, Prefix

from .concurrency import writing

ANCHORS: dict[str, Any] = {
    "exact": {"detail": {"id": ["o-1"]}},
    "exact-number": {"detail": {"n": [5]}},
    "exact-bool": {"detail": {"flag": [True]}},
    "exact-null": {"detail": {"none": [None]}},
    "numeric-eq": {"detail": {"n": [{"numeric": ["=", 5.0]}]}},
    "range": {"detail": {"n": [{"numeric": [">", 1, "<=", 5]}]}},
    "range-low": {"detail": {"n": [{"numeric": [">=", 5]}]}},
    "range-high": {"detail": {"n": [{"numeric": ["<", 6]}]}},
    "prefix": {"detail": {"id": [{"prefix": "o-"}]}},
    "prefix-ic": {"detail": {"region": [{"prefix": {"equals-ignore-case": "EU-"}}]}},
    "suffix": {"detail": {"file": [{"suffix": ".png"}]}},
    "suffix-ic": {"detail": {"file": [{"suffix": {"equals-ignore-case": ".PNG"}}]}},
    "eic": {"detail": {"region": [{"equals-ignore-case": "EU-WEST-1"}]}},
    "wildcard-head": {"detail": {"file": [{"wildcard": "img*.png"}]}},
    "wildcard-tail": {"detail": {"file": [{"wildcard": "*.png"}]}},
    "wildcard-any": {"detail": {"file": [{"wildcard": "*g*"}]}},
    "wildcard-literal": {"detail": {"file": [{"wildcard": "img1.png"}]}},
    "cidr4": {"detail": {"ip": [{"cidr": "10.0.0.0/8"}]}},
    "cidr6": {"detail": {"ip6": [{"cidr": "2001:db8::/32"}]}},
    "exists": {"detail": {"ip": [{"exists": True}]}},
    "anything-but": {"detail": {"id": [{"anything-but": "o-2"}]}},
    "exists-false": {"detail": {"gone": [{"exists": False}]}},
    "empty": {},
    "or": {"$or": [{"detail": {"id": ["o-1"]}}, {"detail": {"n": [7]}}]},
    "array-consistency": {"detail": {"items": {"sku": ["A"], "qty": [2]}}},
}
EVENT: dict[str, Any] = {
    "source": "shop",
    "detail": {
        "id": "o-1",
        "n": 5,
        "flag": True,
        "none": None,
        "region": "eu-west-1",
        "file": "img1.png",
        "ip": "10.1.2.3",
        "ip6": "2001:db8::7",
        "items": [{"sku": "A", "qty": 2}, {"sku": "B", "qty": 1}],
    },
}


def _index(patterns: dict[str, Any]) -> PatternIndex[str]:
    index: PatternIndex[str] = PatternIndex()
    for key, pattern in patterns.items():
        index.add(key, pattern)
    return index


def test_every_anchor_kind_matches() -> None:
    assert _index(ANCHORS).match(EVENT) == set(ANCHORS)


def test_every_anchor_kind_can_miss() -> None:
    index = _index(ANCHORS)
    other = {"source": "shop", "detail": {"gone": 1, "id": "o-2", "n": "5", "ip": "11.0.0.1",
             "file": "doc.txt", "region": "us-east-1", "ip6": "::1", "flag": False,
             "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]}}  # fmt: skip
    assert index.match(other) == {"exists", "empty", "prefix"}


def test_remove_every_anchor_kind() -> None:
    index = _index(ANCHORS)
    for key in ANCHORS:
        index.remove(key)
    assert len(index) == 0
    assert index.match(EVENT) == set()


def test_add_replaces() -> None:
    index = _index({"k": {"source": ["shop"]}})
    index.add("k", {"source": ["other"]})
    assert index.match(EVENT) == set()
    assert index.match({"source": "other"}) == {"k"}
    assert len(index) == 1
    matcher = index.get("k")
    assert matcher is not None
    assert matcher.pattern == {"source": ["other"]}


def test_bookkeeping() -> None:
    index = _index({"a": {"source": ["shop"]}, "b": {"source": ["shop"]}})
    assert "a" in index
    assert "z" not in index
    assert sorted(index) == ["a", "b"]
    assert index.get("z") is None
    with pytest.raises(KeyError):
        index.remove("z")
    index.discard("z")
    index.discard("a")
    assert index.match(EVENT) == {"b"}


def test_add_compiled_matcher() -> None:
    index: PatternIndex[int] = PatternIndex()
    matcher = filters.compile({"source": ["shop"]})
    index.add(1, matcher)
    assert index.get(1) is matcher
    assert index.match(EVENT) == {1}


def test_shared_buckets_and_adaptive_anchor() -> None:
    index: PatternIndex[int] = PatternIndex()
    for i in range(50):
        index.add(i, {"source": ["shop"], "detail": {"id": [f"o-{i}"]}})
    assert index.match({"source": "shop", "detail": {"id": "o-7"}}) == {7}
    assert index.match({"source": "shop", "detail": {"id": ["o-7", "o-9"]}}) == {7, 9}
    for i in range(0, 50, 2):
        index.remove(i)
    assert index.match({"source": "shop", "detail": {"id": ["o-7", "o-8"]}}) == {7}


def test_event_object_and_mappings() -> None:
    index = _index({"t": {"type": ["order.created"], "data": {"total": [{"numeric": [">", 1]}]}}})
    event = Event(type="order.created", source="/shop", data={"total": 5})
    assert index.match(event) == {"t"}
    assert index.match(MappingProxyType(event.to_dict())) == {"t"}
    assert index.match([1, 2]) == set()
    assert filters.compile({"type": ["order.created"]}).matches(event)


def test_odd_event_shapes() -> None:
    index = _index({"a": {"x": {"y": ["1"]}}, "b": {"x": ["1"]}})
    assert index.match({"x": ({"y": "1"}, "1")}) == {"a", "b"}
    assert index.match({"x": MappingProxyType({"y": "1"})}) == {"a"}
    assert index.match({1: "x", "x": [[["1"]]]}) == {"b"}
    assert index.match({"x": {"z": "1"}}) == set()
    assert index.match({"x": [{"z": "1"}]}) == set()
    assert index.match({"other": [{"y": "1"}]}) == set()


class _Str(str):
    __slots__ = ()


def test_str_subclass_values() -> None:
    index = _index({"p": {"s": [{"prefix": "ab"}]}, "e": {"s": ["abc"]}})
    assert index.match({"s": _Str("abc")}) == {"p", "e"}


def test_concurrent_add_remove_while_matching() -> None:
    index: PatternIndex[str] = PatternIndex()
    index.add("stable", {"source": ["shop"]})
    many_branches = {
        "$or": [{"detail": {"id": [f"o-{i}"]}} for i in range(20)] + [{"source": ["shop"]}]
    }

    def write(n: int) -> None:
        index.add(f"w{n % 5}", many_branches)
        index.add(f"w{n % 5}", {"source": ["nothing"]})
        index.discard(f"w{(n + 2) % 5}")

    with writing(write):
        for _ in range(3000):
            found = index.match(EVENT)
            assert "stable" in found
            assert found <= {"stable", "w0", "w1", "w2", "w3", "w4"}


def test_matches_that_build_a_range_table_while_a_writer_works_miss_no_pattern() -> None:
    # 300 ranges leave a tail in the bands (see RangeIndex.collect): the matches below
    # build the table themselves, while a writer files and unfiles other ranges on the
    # same field; every match still finds exactly the stable patterns holding the value.
    index: PatternIndex[str] = PatternIndex()
    for i in range(300):
        index.add(f"r{i}", {"detail": {"amount": [{"numeric": [">=", i, "<", i + 2.5]}]}})
    field = index._root.moves[0][1]
    numeric = field.ranges or field.numeric
    assert numeric is not None
    assert numeric.bands
    built = numeric.snap  # by the writers: 7 more ranges at most never make them build it

    def write(n: int) -> None:
        at = n % 300
        between = [{"numeric": [">", at, "<=", at + 1]}]
        index.add(f"w{n % 7}", {"detail": {"amount": between}})
        index.discard(f"w{(n + 3) % 7}")

    with writing(write):
        for step in range(3000):
            value = (step * 37 % 1200) / 4
            found = {k for k in index.match({"detail": {"amount": value}}) if k[0] == "r"}
            assert found == {f"r{i}" for i in range(300) if i <= value < i + 2.5}, value
    assert numeric.snap is not built  # the matches built it again


def test_ignore_case_prefix_longer_than_value() -> None:
    index = _index({"p": {"s": [{"prefix": {"equals-ignore-case": "ABCDEF"}}]},
                    "q": {"s": [{"suffix": {"equals-ignore-case": "XYZXYZ"}}]}})  # fmt: skip
    assert index.match({"s": "abc"}) == set()
    assert index.match({"s": "abcdefg"}) == {"p"}
    assert index.match({"s": "AXYZXYZ"}) == {"q"}


def test_branches_that_agree_share_states() -> None:
    index: PatternIndex[int] = PatternIndex()
    types = ["order", "refund", "login", "stock", "ship"]
    for i in range(100):
        index.add(i, {"type": [types[i % 5]], "detail": {"total": [{"numeric": [">", i]}]}})
    # White-box: ``type`` (one value in five) comes before a half-open range; one
    # state per type holds that type's thresholds in one range index.
    ((path, fields),) = index._root.moves
    assert path == ("type",)
    after_type = cast(Any, fields.exact["order"])  # one target: held as itself
    (move,) = after_type.moves
    assert move[0] == ("detail", "total")
    assert move[1].ranges is not None
    assert move[1].ranges.size == 19  # the first pattern of a type keeps its range as a rest
    assert index.match({"type": "order", "detail": {"total": 50.5}}) == set(range(0, 51, 5))
    assert index.match({"type": "other", "detail": {"total": 50.5}}) == set()


def test_selective_conditions_come_first() -> None:
    index: PatternIndex[int] = PatternIndex()
    for i in range(50):
        index.add(i, {"a": [{"anything-but": "x"}], "b": [{"prefix": "p"}], "z": [f"v{i}"]})
    # White-box: z (a value few patterns name) comes first.
    order = []
    state = index._root
    while state.moves:
        ((path, _),) = state.moves
        order.append(path)
        state = next(iter(state.children.values()))
    assert order[0] == ("z",)
    assert index.match({"a": "y", "b": "pq", "z": "v7"}) == {7}
    assert index.match({"a": "x", "b": "pq", "z": "v7"}) == set()
    assert index.match({"a": "y", "b": "q", "z": "v7"}) == set()


def test_removal_prunes_states() -> None:
    index: PatternIndex[int] = PatternIndex()
    for i in range(20):
        index.add(i, {"source": ["shop"], "detail": {"n": [{"numeric": [">=", i, "<", i + 2]}]}})
    for i in range(20):
        index.remove(i)
    assert index._root.moves == ()
    assert index._root.children == {}


class _List(list[Any]):
    __slots__ = ()


def test_walk_reads_only_indexed_fields_of_any_shape() -> None:
    index = _index({"leaf": {"x": ["1"]}, "deep": {"y": {"z": ["1"]}}})
    assert index.match({"x": _List(["1"]), "y": [{"z": ("0", ["1"])}]}) == {"leaf", "deep"}
    # A mapping where only a leaf is indexed, an object where only a parent is.
    assert index.match({"x": [MappingProxyType({"1": "1"})], "y": object()}) == set()
    assert index.match({"x": ["0", object()], "y": [[object()]]}) == set()
    # A dotted key and a nested object name the same field (event-ruler's dotted
    # names): either spelling, in the pattern or the event, is read as nested keys;
    # when the event has the key itself, that is what is read (no merging).
    index.add("dotted", {"y.z": ["2"]})
    for event, expected in (
        ({"y.z": "2"}, {"dotted"}),
        ({"y": {"z": "2"}}, {"dotted"}),
        ({"y.z": "1"}, {"deep"}),
        ({"y": {"z": "1"}, "y.z": "2"}, {"deep"}),
        ({"y": [{"z": "1"}, {"z": "2"}]}, {"deep", "dotted"}),
    ):
        assert index.match(event) == expected, event
        assert {k for k in index if index.get(k).matches(event)} == expected, event  # type: ignore[union-attr]


def test_networks_of_odd_text() -> None:
    index = _index({"v4": {"ip": [{"cidr": "10.0.0.0/8"}]}, "v6": {"ip": [{"cidr": "::/0"}]}})
    assert index.match({"ip": "10.0.0.1"}) == {"v4"}
    assert index.match({"ip": "::1"}) == {"v6"}
    for text in ("not:an:address", "10.0.0.x", "010.0.0.1", "10.0.0.256", "10.0.0", "10.0.0.1/8"):
        assert index.match({"ip": text}) == set(), text


# ---------------------------------------------------------------- hostile input


def _agrees(index: PatternIndex[str], event: Any) -> set[str]:
    """Return what the index matches, having checked it is what each Matcher says."""
    found = index.match(event)
    assert found == {k for k in index if index.get(k).matches(event)}  # type: ignore[union-attr]
    return found


def test_ranges_near_the_limits_of_json_numbers() -> None:
    top = 1.7976931348623157e308  # the largest double
    index: PatternIndex[str] = PatternIndex()
    index.add("huge", {"n": [{"numeric": [">", -(10**308), "<", 10**308]}]})
    index.add("narrow-huge", {"n": [{"numeric": [">=", 10**308, "<=", top]}]})
    index.add("mixed", {"n": [{"numeric": [">", 1.5, "<", 10**308]}]})
    index.add("above", {"n": [{"numeric": [">", 10**308]}]})
    index.add("below", {"n": [{"numeric": ["<", -(10**308)]}]})
    assert _agrees(index, {"n": 2}) == {"huge", "mixed"}
    assert _agrees(index, {"n": 1.5e308}) == {"narrow-huge", "above"}
    assert _agrees(index, {"n": 10**308}) == {"narrow-huge"}  # an int a double holds
    assert _agrees(index, {"n": 1e308}) == {"narrow-huge"}
    assert _agrees(index, {"n": -1.5e308}) == {"below"}
    assert _agrees(index, {"n": 1e300}) == {"huge", "mixed"}
    # Numbers a double does not hold as written are in no range: beyond the doubles,
    # or an integer whose shortest double is another decimal (2**1023 is 8.98...e307).
    for value in (10**400, -(10**401), 10**308 + 1, 2**1023, 2**53 + 1):
        assert _agrees(index, {"n": value}) == set(), value
    # ...and a pattern cannot use one as a bound.
    for bound in (10**400, -(10**400), 2**53 + 1):
        with pytest.raises(InvalidPattern):
            index.add("refused", {"n": [{"numeric": [">", bound]}]})
    assert "refused" not in index


def test_integers_beyond_the_str_limit_do_not_crash_matching() -> None:
    huge = 10**5000  # more digits than str() prints by default
    index: PatternIndex[str] = PatternIndex()
    index.add("more", {"n": [{"numeric": [">", 5]}]})
    index.add("less", {"n": [{"numeric": ["<", 5]}]})
    index.add("bounded", {"n": [{"numeric": [">", 5, "<", 1e308]}]})
    index.add("exact", {"n": [5]})
    index.add("not-five", {"n": [{"anything-but": 5}]})
    index.add("exists", {"n": [{"exists": True}]})
    index.add("rest", {"s": ["x"], "n": [5, 6]})
    # No double holds it: it is in no range, equals no pattern number, is not 5.
    assert _agrees(index, {"n": huge, "s": "x"}) == {"not-five", "exists"}
    assert _agrees(index, {"n": [-huge, 1], "s": "x"}) == {"less", "not-five", "exists"}
    assert _agrees(index, {"n": [{"deeper": huge}], "s": "x"}) == set()


def test_exists_false_under_a_long_array_of_objects_reads_each_path_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from eventpatterns.filters import _index, _paths

    calls: list[tuple[str, ...]] = []
    real = _paths.values_of  # what _index calls, by the name it imported

    def counting(doc: Any, path: tuple[str, ...], multi: set[tuple[str, ...]], chains: Any) -> Any:
        calls.append(path)
        return real(doc, path, multi, chains)

    monkeypatch.setattr(_index, "values_of", counting)
    index: PatternIndex[str] = PatternIndex()
    index.add("gone", {"a": {"x": [{"exists": False}]}})
    index.add("both", {"a": {"x": [{"exists": False}], "y": ["1"]}})
    event = {"a": [{"y": "1"}] * 3000 + [{"x": 1}]}
    assert index.match(event) == set()
    assert index.match({"a": [{"y": "1"}] * 3000}) == {"gone", "both"}
    # Each path is read once per event, whatever the array's length.
    assert sorted(set(calls)) == [("a", "x"), ("a", "y")]
    assert len(calls) <= 4


# ---------------------------------------------------------------- kinds it does not know


@dataclass(frozen=True, slots=True)
class _Even(Predicate):
    """A predicate kind the index has no table for."""

    def test(self, value: object) -> bool:
        return type(value) is int and value % 2 == 0


class _LoudPrefix(Prefix):
    """A subclass of a known kind: its own ``test`` must decide, not the prefix table."""

    __slots__ = ()

    def test(self, value: object) -> bool:
        return isinstance(value, str) and value.upper().startswith(self.text)


def _matcher(*leaves: Leaf) -> filters.Matcher:
    return filters.Matcher((Conjunction(leaves),), "hand-built")


def test_unknown_predicate_kinds_are_tested_where_the_state_is_reached() -> None:
    index: PatternIndex[str] = PatternIndex()
    even = _Even("even", None)
    index.add("even", _matcher(Leaf(("n",), (even,))))
    index.add("odd", _matcher(Leaf(("n",), (AnythingBut("anything-but", None, (even,)),))))
    index.add("loud", _matcher(Leaf(("s",), (_LoudPrefix("prefix", None, "AB"),))))
    index.add("both", _matcher(Leaf(("s",), (Exact("equals", None, "q"),)), Leaf(("n",), (even,))))
    assert index.match({"n": 4, "s": "abc"}) == {"even", "loud"}
    assert index.match({"n": 3, "s": "q"}) == {"odd"}
    assert index.match({"n": [3, 8], "s": "q"}) == {"even", "odd", "both"}


class _Pair(Leaf):
    """A condition on an array as a whole (the model's ``whole_array`` kinds): two elements."""

    whole_array = True

    def check(self, value: object, root: object) -> bool:
        return isinstance(value, list) and len(value) == 2


def test_whole_array_conditions_are_left_to_the_model() -> None:
    index: PatternIndex[str] = PatternIndex()
    pair = _Pair(("tags",), (Exact("equals", None, "x"),))
    index.add("pair", _matcher(pair, Leaf(("s",), (Exact("equals", None, "q"),))))
    index.add("only", _matcher(pair))
    for event in ({"s": "q", "tags": ["a", "b"]}, {"s": "q", "tags": ["x"]}, {"tags": [1, 2]}):
        expected = {k for k in ("pair", "only") if index.get(k).matches(event)}  # type: ignore[union-attr]
        assert index.match(event) == expected
    assert index.match({"s": "q", "tags": ["a", "b"]}) == {"pair", "only"}


def test_leaves_naming_the_same_strings_are_shared() -> None:
    # Ten thousand subscriptions to one source hold one compiled leaf, prepared once.
    a = filters.compile({"source": ["shop", "auth"], "detail": {"n": [{"numeric": [">", 1]}]}})
    b = filters.compile({"source": ["shop", "auth"], "detail": {"n": [{"numeric": [">", 2]}]}})
    c = filters.compile({"source": ["auth", "shop"]})
    by_path = {leaf.path: leaf for leaf in a.branches[0].leaves}
    other = {leaf.path: leaf for leaf in b.branches[0].leaves}
    assert by_path[("source",)] is other[("source",)]
    assert by_path[("detail", "n")] is not other[("detail", "n")]
    assert c.branches[0].leaves[0] is not by_path[("source",)]  # order is kept (explain)
    assert [p.spec for p in c.branches[0].leaves[0].alternatives] == ["auth", "shop"]
    index: PatternIndex[str] = PatternIndex()
    index.add("a", a)
    index.add("b", b)
    index.add("c", c)
    assert index.match({"source": "auth", "detail": {"n": 1.5}}) == {"a", "c"}
    index.remove("a")
    assert index.match({"source": "shop", "detail": {"n": 3}}) == {"b", "c"}


def test_infix_wildcards_are_indexed_by_a_slice_of_their_literal() -> None:
    # ``*x*`` has no literal head or tail: it is filed under a six-character slice of
    # its pieces (or its longest piece, when shorter) and tested only when the value
    # holds that slice.
    globs = ["*a*", "*ab*", "*err*", "*errors*", "*timeout*", "*x*yz*", "*é*", "*terrors*"]
    index: PatternIndex[str] = PatternIndex()
    for glob in globs:
        index.add(glob, {"msg": [{"wildcard": glob}]})
    index.add("not", {"msg": [{"anything-but": {"wildcard": "*err*"}}]})
    fields = index._root.fields[("msg",)]
    # "*terrors*" goes under "terror": "errors" is taken (the slice fewest wildcards
    # share wins), so literals alike spread out.
    assert sorted(fields.infix) == ["a", "ab", "err", "errors", "terror", "timeou", "yz", "é"]
    assert list(fields.infix_lens) == [1, 2, 3, 6]
    assert not fields.wild  # none left to test one by one
    matchers = {key: index.get(key) for key in index}
    values = ["", "a", "b", "ab", "errors", "terrors!", "time out", "timeout", "xayz", "é"]
    for value in values:
        expected = {k for k, m in matchers.items() if m is not None and m.matches({"msg": value})}
        assert index.match({"msg": value}) == expected, value
    assert index.match({"msg": "terrors!"}) == {"*err*", "*errors*", "*terrors*"}
    assert index.match({"msg": ["b", "timeout"]}) == {"*timeout*", "not"}
    for glob in globs:
        index.remove(glob)
    assert not fields.infix
    assert not fields.infix_lens
    assert index.match({"msg": "ok"}) == {"not"}


def test_a_match_during_a_change_leaves_no_stale_answer_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A state keeps the keys a match found settled there, for the matches after it;
    # a match that runs while a pattern is being added (here: between filing its
    # branch and making it current, as another thread could) must not leave an
    # answer that later matches take for current.
    from eventpatterns.filters import _index

    index: PatternIndex[str] = PatternIndex()
    event = {"source": "shop", "detail": {"n": 5}}
    index.add("a", {"source": ["shop"]})
    assert index.match(event) == {"a"}
    during: list[set[str]] = []
    real = _index._pile_add

    def filing(state: Any, entry: Any) -> None:
        real(state, entry)
        during.append(index.match(event))  # the new key is filed, not yet current

    monkeypatch.setattr(_index, "_pile_add", filing)
    index.add("b", {"source": ["shop"]})
    monkeypatch.setattr(_index, "_pile_add", real)
    assert during == [{"a"}]
    assert index.match(event) == {"a", "b"}
    index.add("b", {"source": ["other"]})  # replaced: its old entry goes
    assert index.match(event) == {"a"}
    index.add("c", {"source": ["shop"], "detail": {"n": [{"numeric": [">", 1]}]}})
    index.add("d", {"source": ["shop"], "detail": {"n": [{"numeric": [">", 1]}]}})
    assert index.match(event) == {"a", "c", "d"}
    index.remove("a")
    index.discard("d")
    assert index.match(event) == {"c"}


def test_answers_where_ruler_2_0_1_errs_found_side_by_side() -> None:
    # A /0 block holds addresses of its own family only (Ruler's also took IPv6 and 10).
    index: PatternIndex[str] = PatternIndex()
    index.add("v4", {"ip": [{"cidr": "0.0.0.0/0"}]})
    index.add("v6", {"ip": [{"cidr": "::/0"}]})
    assert index.match({"ip": "192.0.2.1"}) == {"v4"}
    assert index.match({"ip": "2001:db8::1"}) == {"v6"}
    assert index.match({"ip": 10}) == set()
    # A pattern's answer does not depend on the others held (in Ruler, a "*" wildcard
    # beside it made this anything-but match nothing).
    index.add("any", {"s": [{"wildcard": "*"}]})
    index.add("but", {"s": [{"anything-but": {"equals-ignore-case": ["ABC", "X"]}}]})
    index.add("but1", {"s": [{"anything-but": {"equals-ignore-case": "ABC"}}]})
    assert index.match({"s": "abd"}) == {"any", "but", "but1"}
    assert index.match({"s": "y"}) == {"any", "but", "but1"}
    assert index.match({"s": "äbc"}) == {"any", "but", "but1"}
    assert index.match({"s": "aBc"}) == {"any"}
    assert index.match({"s": "x"}) == {"any", "but1"}
