"""Corner cases of the compiled model: number keys, limits, reprs."""

from __future__ import annotations

import ipaddress

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
    assert len(filters.compile(ors, limits=Limits(max_combinations=4096)).branches) == 2048


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
