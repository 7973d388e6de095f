"""Corner cases of the compiled model: number keys, limits, reprs."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventpatterns import filters
from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import Limits, PatternIndex
from eventpatterns.filters._model import MISSING, canon, ipv4_int


class _Float(float):
    __slots__ = ()


class _Int(int):
    __slots__ = ()


def test_number_subclasses_compare_as_numbers() -> None:
    assert canon(_Float(1.5)) == 1.5
    assert canon(_Int(3)) == 3
    assert canon(object()) != canon(object()) or canon(object()) is canon(object())
    matcher = filters.compile({"n": [1.5], "m": [{"numeric": [">", 2]}]})
    assert matcher.matches({"n": _Float(1.5), "m": _Int(3)})
    index: PatternIndex[str] = PatternIndex()
    index.add("k", {"n": [1.5]})
    assert index.match({"n": _Float(1.5)}) == {"k"}


def test_reprs() -> None:
    assert repr(MISSING) == "MISSING"
    assert repr(filters.compile({"a": ["x"]})) == 'Matcher({"a": ["x"]})'
    assert len(repr(filters.compile({"a": ["x" * 1000]}))) < 220


def test_depth_limit() -> None:
    pattern: dict[str, object] = {"a": ["x"]}
    for _ in range(70):
        pattern = {"n": pattern}
    with pytest.raises(InvalidPattern, match="deeper than 64"):
        filters.compile(pattern)
    assert filters.compile(pattern, limits=Limits(max_depth=100, max_pattern_chars=10**6))


def test_combination_limit() -> None:
    ors = {f"k{i}": {"$or": [{"a": ["1"]}, {"b": ["2"]}]} for i in range(11)}
    with pytest.raises(InvalidPattern, match="more than 1000 combinations") as info:
        filters.compile(ors)
    assert info.value.path == "$"
    assert (
        len(
            filters.compile(
                ors, limits=Limits(max_combinations=4096, max_conditions=10**5)
            ).branches
        )
        == 2048
    )


def test_size_and_wildcard_limits_are_configurable() -> None:
    big = {"a": ["x" * 5000]}
    assert filters.compile(big, limits=Limits(max_pattern_chars=10_000)).matches({"a": "x" * 5000})
    with pytest.raises(InvalidPattern, match="too complex"):
        filters.compile({"a": [{"wildcard": "*a*"}]}, limits=Limits(max_wildcards=1))
    index: PatternIndex[str] = PatternIndex(limits=Limits(max_pattern_chars=10))
    with pytest.raises(InvalidPattern, match="limit is 10"):
        index.add("k", {"source": ["long-enough"]})


@pytest.mark.parametrize(
    "text",
    ["10.1.2.3", "0.0.0.0", "255.255.255.255", "01.2.3.4", "1.2.3.00", "256.0.0.1",
     "1.2.3", "1.2.3.4.5", "1..2.3", "", "1234.1.1.1", "\u0661.2.3.4", " 1.2.3.4", "a.b.c.d",
     "1.2.3.4/32", "::1", "1.2.3.-4", "+1.2.3.4"],
)  # fmt: skip
def test_ipv4_int_parses_as_ipaddress_does(text: str) -> None:
    try:
        expected: int | None = int(ipaddress.IPv4Address(text))
    except ValueError:
        expected = None
    assert ipv4_int(text) == expected


@given(st.text(alphabet="0123456789.\u0661x", max_size=16))
def test_ipv4_int_agrees_with_ipaddress(text: str) -> None:
    try:
        expected: int | None = int(ipaddress.IPv4Address(text))
    except ValueError:
        expected = None
    assert ipv4_int(text) == expected
    network = filters.compile({"ip": [{"cidr": "10.0.0.0/8"}]})
    assert network.matches({"ip": text}) == (expected is not None and expected >> 24 == 10)


def test_top_level_keys() -> None:
    matcher = filters.compile(
        {"source": ["a"], "detail": {"x": [1]}, "$or": [{"y": [1]}, {"z": [1]}]}
    )
    assert matcher.top_level_keys == frozenset({"source", "detail", "y", "z"})


def test_conditions_limit_counts_the_expanded_form() -> None:
    base = {f"k{i}": [i] for i in range(280)}
    ors = {f"o{j}": {"$or": [{f"b{i}": [i]} for i in range(10)]} for j in range(3)}
    with pytest.raises(InvalidPattern, match="more than 10000 field conditions") as info:
        filters.compile({**base, **ors})  # 3,796 characters, 1,000 branches of 283
    assert info.value.path == "$"
    few = {f"k{i}": [i] for i in range(7)}
    assert len(filters.compile({**few, **ors}).branches) == 1000
    roomy = Limits(max_conditions=300_000)
    assert len(filters.compile({**base, **ors}, limits=roomy).branches) == 1000


def test_or_product_is_refused_before_it_is_built() -> None:
    import tracemalloc

    half = {"p": {"$or": [{f"v{i}": [i]} for i in range(31)]},
            "q": {"$or": [{f"w{i}": [i]} for i in range(32)]}}  # fmt: skip
    tracemalloc.start()
    try:
        with pytest.raises(InvalidPattern, match="more than 1000 combinations"):
            filters.compile({"A": half, "B": half})  # 992 x 992 branches
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20_000_000  # the old code built the 984,064 branches: ~95 MB


def test_size_is_checked_before_parsing() -> None:
    many = {"a": list(range(300_000))}
    with pytest.raises(InvalidPattern, match="over 4096 characters"):
        filters.compile(many)
    text = json.dumps(many)
    with pytest.raises(InvalidPattern, match="characters of JSON text; the limit is 4096"):
        filters.compile(text)
    # Whitespace does not count: indented text a little over the limit is measured.
    spaced = json.dumps({"a": ["x" * 3000]}, indent=40)
    assert len(spaced) < 16 * 4096
    assert filters.compile(spaced).matches({"a": "x" * 3000})


@pytest.mark.parametrize(
    "value", [10**5000, -(10**5000), 2**20000], ids=["1e5000", "-1e5000", "2**20000"]
)
def test_huge_integers_never_crash(value: int) -> None:
    assert not filters.compile({"n": [1]}).matches({"n": value})
    assert not filters.compile({"n": [{"numeric": [">", 0]}]}).matches({"n": value})
    assert filters.compile({"n": [{"anything-but": 1}]}).matches({"n": value})
    assert filters.compile({"n": [{"exists": True}]}).matches({"n": value})
    with pytest.raises(InvalidPattern, match="over 4096 characters") as info:
        filters.compile({"n": [value]})
    assert len(str(info.value)) < 200
    roomy = Limits(max_pattern_chars=10**6)
    assert filters.compile({"n": [value]}, limits=roomy).matches({"n": value})
    with pytest.raises(InvalidPattern, match="cannot be compared") as info:
        filters.compile({"n": [{"numeric": ["<", value]}]}, limits=roomy)
    assert len(str(info.value)) < 200
    assert "digits" in repr(filters.compile({"n": [value]}, limits=roomy))


def test_messages_are_short() -> None:
    bad = [
        {"a": [{"x" * 5000: 1}]},
        {"a": [{"numeric": [">", 3.5, "<", -1.0]}]},
        {"x" * 3000: "y"},
        {"a": [{"cidr": "1" * 3000}]},
        {"a": [{"anything-but": {"z" * 3000: 1}}]},
        {"filterGroup": [{"filters": [{"fieldName": "a", "operator": "o" * 3000, "value": 1}]}]},
    ]
    for pattern in bad:
        with pytest.raises(InvalidPattern) as info:
            filters.compile(pattern)
        assert len(str(info.value)) < 300, str(info.value)[:100]


def test_exists_false_below_an_array_is_linear() -> None:
    import time

    pattern = {"a": {"x": [{"exists": False}]}}
    matcher = filters.compile(pattern)
    event: dict[str, list[dict[str, int]]] = {"a": [{}] * 10_000 + [{"x": 1}]}
    start = time.process_time()  # CPU time: other load on the machine does not count
    assert not matcher.matches(event)
    assert not filters.explain(pattern, event).matched
    assert matcher.matches({"a": [{}] * 10_000})
    # Generous (coverage tracing included): was ~15 s (quadratic), now well under a
    # second; catches a return of it.
    assert time.process_time() - start < 5.0
