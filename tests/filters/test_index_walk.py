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
