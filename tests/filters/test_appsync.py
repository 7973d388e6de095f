"""AppSync enhanced subscription filters compiled into the same engine."""

from __future__ import annotations

from typing import Any, cast

import pytest

from eventpatterns import filters
from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import PatternIndex, explain


def _f(field: str, op: str, value: Any) -> dict[str, Any]:
    return {"filterGroup": [{"filters": [{"fieldName": field, "operator": op, "value": value}]}]}


TICKET = {"severity": 7, "priority": "high", "category": "security", "group": "ops",
          "tags": ["urgent", "db"], "content": "disk almost full", "user": {"id": "u1"},
          "ok": True, "none": None, "seats": [10, 15], "createdAt": "2024-05-17T10:00:00Z",
          "labels": ["security", "network"]}  # fmt: skip

CASES = [
    ("eq", "priority", "high", True),
    ("eq", "priority", "low", False),
    ("eq", "severity", 7.0, True),
    ("eq", "ok", True, True),
    ("eq", "none", None, True),
    ("eq", "user.id", "u1", True),
    ("ne", "priority", "low", True),
    ("ne", "priority", "high", False),
    ("ne", "ok", True, False),
    ("in", "priority", ["high", "highest"], True),
    ("in", "priority", ["low", "medium"], False),
    ("notIn", "priority", ["low", "medium"], True),
    ("notIn", "priority", ["high"], False),
    ("gt", "severity", 6, True),
    ("gt", "severity", 7, False),
    ("ge", "severity", 7, True),
    ("lt", "severity", 7, False),
    ("lt", "severity", 8, True),
    ("le", "severity", 7, True),
    ("between", "severity", [7, 9], True),
    ("between", "severity", [1, 6.9], False),
    ("between", "severity", [7, 7], True),
    ("beginsWith", "category", "sec", True),
    ("beginsWith", "category", "cat", False),
    ("contains", "content", "almost", True),
    ("contains", "content", "empty", False),
    ("contains", "tags", "db", True),
    ("contains", "tags", "web", False),
    ("contains", "severity", 7, True),
    ("notContains", "content", "empty", True),
    ("notContains", "content", "disk", False),
    ("containsAny", "tags", ["web", "db"], True),
    ("containsAny", "tags", ["web", "mobile"], False),
    ("containsAny", "content", ["full", 3], True),
    ("eq", "missing", "x", False),
    # AWS: ordering operators take strings too, compared as strings (ISO dates).
    ("gt", "createdAt", "2024-01-01T00:00:00Z", True),
    ("lt", "createdAt", "2024-01-01T00:00:00Z", False),
    ("ge", "createdAt", "2024-05-17T10:00:00Z", True),
    ("le", "createdAt", "2024-05-17T09:59:59Z", False),
    ("between", "createdAt", ["2024-05-01", "2024-06-01"], True),
    ("between", "createdAt", ["2024-06-01", "2024-07-01"], False),
    ("gt", "priority", "a", True),
    ("gt", "severity", "1", False),  # a number is not in a range of strings
    ("gt", "priority", 1, False),  # nor a string in a range of numbers
    # AWS's example: seats notContains 10 with seats [10, 15] does not match.
    ("notContains", "seats", 10, False),
    ("notContains", "seats", 11, True),
    ("contains", "seats", 15, True),
    ("notContains", "tags", "db", False),
    ("notContains", "tags", "d", True),
    # containsAny is a set intersection of whole elements, not substrings.
    ("containsAny", "labels", ["sec"], False),
    ("containsAny", "labels", ["security", "x"], True),
    ("contains", "labels", "sec", False),
    ("contains", "tags", "d", False),
    # Negative operators match an event without the field (see docs/filters.md).
    ("ne", "missing", "x", True),
    ("notIn", "missing", ["x"], True),
    ("notContains", "missing", "x", True),
    ("ne", "none", None, False),
    ("ne", "none", "x", True),
]


@pytest.mark.parametrize(("op", "field", "value", "expected"), CASES)
def test_operators(op: str, field: str, value: Any, expected: bool) -> None:
    spec = _f(field, op, value)
    assert filters.compile(spec).matches(TICKET) is expected
    assert explain(spec, TICKET).matched is expected
    index: PatternIndex[str] = PatternIndex()
    index.add("s", spec)
    assert index.match(TICKET) == ({"s"} if expected else set())


def test_groups_or_filters_and() -> None:
    spec = {"filterGroup": [
        {"filters": [{"fieldName": "severity", "operator": "ge", "value": 8},
                     {"fieldName": "priority", "operator": "eq", "value": "high"}]},
        {"filters": [{"fieldName": "category", "operator": "eq", "value": "security"},
                     {"fieldName": "severity", "operator": "gt", "value": 5},
                     {"fieldName": "severity", "operator": "lt", "value": 10}]},
    ]}  # fmt: skip
    matcher = filters.compile(spec)
    assert matcher.matches(TICKET)
    assert not matcher.matches({**TICKET, "category": "billing"})
    assert matcher.matches({**TICKET, "category": "billing", "severity": 9})
    assert not matcher.matches({**TICKET, "severity": 12, "priority": "low"})
    assert len(matcher.branches) == 2


def test_json_text_and_auto_detection() -> None:
    text = (
        '{"filterGroup": [{"filters": [{"fieldName": "group", "operator": "eq", "value": "ops"}]}]}'
    )
    assert filters.compile(text).matches(TICKET)
    # A plain EventBridge pattern on a field named filterGroup is not AppSync.
    assert filters.compile({"filterGroup": ["x"]}).matches({"filterGroup": "x"})


def _group(n: int) -> dict[str, Any]:
    return {"filters": [{"fieldName": "a", "operator": "eq", "value": 1}] * n}


INVALID = [
    ({"filterGroup": []}, "$.filterGroup"),
    ({"filterGroup": [_group(1)] * 11}, "$.filterGroup"),
    ({"filterGroup": [{"filters": []}]}, "$.filterGroup[0].filters"),
    ({"filterGroup": [{"filters": "x"}]}, "$.filterGroup[0].filters"),
    ({"filterGroup": [{"filters": [], "x": 1}]}, "$.filterGroup[0]"),
    ({"filterGroup": [_group(6)]}, "$.filterGroup[0].filters"),
    ({"filterGroup": [{"filters": ["x"]}]}, "$.filterGroup[0].filters[0]"),
    ({"filterGroup": [{"filters": [{"fieldName": "a"}]}]}, "$.filterGroup[0].filters[0]"),
    (
        {"filterGroup": [{"filters": [{"fieldName": "a", "operator": "eq", "x": 1}]}]},
        "$.filterGroup[0].filters[0]",
    ),
    (_f("", "eq", 1), "$.filterGroup[0].filters[0].fieldName"),
    (_f(cast(Any, 5), "eq", 1), "$.filterGroup[0].filters[0].fieldName"),  # not a str
    (_f("a" * 257, "eq", 1), "$.filterGroup[0].filters[0].fieldName"),
    (_f("a.b.c.d.e.f", "eq", 1), "$.filterGroup[0].filters[0].fieldName"),
    (_f("a..b", "eq", 1), "$.filterGroup[0].filters[0].fieldName"),
    (_f("a", "like", 1), "$.filterGroup[0].filters[0].operator"),
    (
        {"filterGroup": [{"filters": [{"fieldName": "a", "operator": "eq"}]}]},
        "$.filterGroup[0].filters[0].value",
    ),
    (_f("a", "eq", [1]), "$.filterGroup[0].filters[0].value"),
    (_f("a", "eq", {"x": 1}), "$.filterGroup[0].filters[0].value"),
    (_f("a", "eq", float("nan")), "$.filterGroup[0].filters[0].value"),
    (_f("a", "in", []), "$.filterGroup[0].filters[0].value"),
    (_f("a", "in", [1, 2, 3, 4, 5, 6]), "$.filterGroup[0].filters[0].value"),
    (_f("a", "notIn", "x"), "$.filterGroup[0].filters[0].value"),
    (_f("a", "in", [1, [2]]), "$.filterGroup[0].filters[0].value[1]"),
    (_f("a", "in", ["x", True]), "$.filterGroup[0].filters[0].value[1]"),
    (_f("a", "in", [None]), "$.filterGroup[0].filters[0].value[0]"),
    (_f("a", "notIn", [False]), "$.filterGroup[0].filters[0].value[0]"),
    (_f("a", "gt", None), "$.filterGroup[0].filters[0].value"),
    (_f("a", "gt", [1]), "$.filterGroup[0].filters[0].value"),
    (_f("a", "gt", 2**53 + 1), "$.filterGroup[0].filters[0].value"),
    (_f("a", "between", ["b", "a"]), "$.filterGroup[0].filters[0].value"),
    (_f("a", "le", True), "$.filterGroup[0].filters[0].value"),
    (_f("a", "between", [1]), "$.filterGroup[0].filters[0].value"),
    (_f("a", "between", 1), "$.filterGroup[0].filters[0].value"),
    (_f("a", "between", [1, "2"]), "$.filterGroup[0].filters[0].value"),
    (_f("a", "between", [1, None]), "$.filterGroup[0].filters[0].value[1]"),
    (_f("a", "between", [5, 1]), "$.filterGroup[0].filters[0].value"),
    (_f("a", "beginsWith", 1), "$.filterGroup[0].filters[0].value"),
    (_f("a", "contains", None), "$.filterGroup[0].filters[0].value"),
    (_f("a", "notContains", True), "$.filterGroup[0].filters[0].value"),
    (_f("a", "containsAny", []), "$.filterGroup[0].filters[0].value"),
    (_f("a", "containsAny", ["x"] * 21), "$.filterGroup[0].filters[0].value"),
    (_f("a", "containsAny", ["x", None]), "$.filterGroup[0].filters[0].value[1]"),
]


@pytest.mark.parametrize(("spec", "path"), INVALID)
def test_invalid(spec: Any, path: str) -> None:
    with pytest.raises(InvalidPattern) as info:
        filters.compile(spec)
    assert info.value.path == path


def test_not_appsync_shapes_go_to_eventbridge_parser() -> None:
    with pytest.raises(InvalidPattern):
        filters.compile({"filterGroup": [{"nope": 1}]})


def test_direct_parse_rejects_non_list() -> None:
    from eventpatterns.filters._appsync import parse_appsync

    with pytest.raises(InvalidPattern) as info:
        parse_appsync({"filterGroup": "x"})
    assert info.value.path == "$.filterGroup"
