"""explain: the structured answer to "why did my subscription not fire?"."""

from __future__ import annotations

import json

from eventpatterns.core import Event
from eventpatterns.filters import BranchExplanation, Check, Explanation, compile, explain  # noqa: A004


def test_failed_check_names_path_operator_and_value() -> None:
    e = explain({"source": ["shop"], "detail": {"total": [{"numeric": [">", 100]}]}},
                {"source": "shop", "detail": {"total": 50}})  # fmt: skip
    assert isinstance(e, Explanation)
    assert e.matched is False
    (failure,) = e.failures
    assert isinstance(failure, Check)
    assert failure.path == "$.detail.total"
    assert failure.operators == ("numeric",)
    assert failure.expected == ({"numeric": [">", 100]},)
    assert failure.seen == (50,)
    assert "no alternative accepts 50" in failure.reason
    branch = e.branches[0]
    assert isinstance(branch, BranchExplanation)
    assert branch.checks[0] is failure  # failures first
    assert "1 of 2" in branch.reason


def test_match_reasons() -> None:
    e = explain({"a": [{"prefix": "x"}], "b": [{"exists": True}], "c": [{"exists": False}],
                 "d": [{"exists": False}, "q"]}, {"a": "xyz", "b": None})  # fmt: skip
    assert e.matched
    reasons = {c.path: c.reason for c in e.branches[0].checks}
    assert reasons["$.a"] == '"xyz" matches {"prefix": "x"}'
    assert reasons["$.b"] == "the field is present (null)"
    assert reasons["$.c"] == "the field is absent, as exists: false asks"
    assert "matched" in e.branches[0].reason
    assert str(e).startswith("match\n")


def test_exists_alternatives_skipped_when_value_matches() -> None:
    e = explain({"d": [{"exists": False}, "q"]}, {"d": "q"})
    assert e.branches[0].checks[0].reason == '"q" matches "q"'


def test_missing_and_present_reasons() -> None:
    e = explain({"a": [{"anything-but": "x"}], "b": [{"exists": False}]}, {"b": [1, 2, 3, 4, 5, 6]})
    reasons = {c.path: c.reason for c in e.failures}
    assert "anything-but never matches a missing field" in reasons["$.a"]
    assert (
        reasons["$.b"]
        == "the field is present (1, 2, 3, 4, 5, ...) but exists: false asks it absent"
    )
    e = explain({"a": ["x"]}, {})
    assert e.failures[0].reason == "the field is missing (objects, {} and [] are not values)"


def test_array_consistency_is_explained() -> None:
    e = explain({"items": {"sku": ["A"], "qty": [2]}},
                {"items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]})  # fmt: skip
    assert not e.matched
    assert not e.failures
    assert "same element" in e.branches[0].reason
    assert "same element" in str(e)


def test_or_branches_and_text() -> None:
    pattern = {"$or": [{"a": ["1"]}, {"b": ["2"]}]}
    e = explain(pattern, {"a": "0", "b": "2"})
    assert e.matched
    assert [b.matched for b in e.branches] == [False, True]
    text = str(e)
    assert "branch 1/2" in text
    assert "FAIL $.a" in text
    assert "ok   $.b" in text


def test_empty_pattern() -> None:
    e = explain({}, {"a": 1})
    assert e.matched
    assert "empty" in str(e)


def test_to_dict_is_json_and_agrees() -> None:
    pattern = {"source": ["x"], "detail": {"n": [{"numeric": ["<", 1]}]}}
    event = Event(type="t", source="x", data={"n": 0})
    e = explain(compile(pattern), event)
    data = json.loads(json.dumps(e.to_dict()))
    assert data["matched"] is False  # detail is not data: an Event has no "detail"
    assert data["branches"][0]["checks"][0]["path"] == "$.detail.n"
    odd = explain({"a": ["x"]}, {"a": {1, 2}})
    assert "<set>" in str(odd)  # not JSON: named by its type


def test_huge_values_are_described_not_printed() -> None:
    e = explain({"n": [1]}, {"n": 10**5000, "s": "x"})
    (failure,) = e.failures
    assert "an integer of about 5001 digits" in failure.reason
    assert len(str(e)) < 300
    long = explain({"s": ["y"]}, {"s": "x" * 10_000})
    assert len(str(long)) < 400


def test_appsync_contains_is_explained_as_matched() -> None:
    spec = {"filterGroup": [{"filters": [
        {"fieldName": "content", "operator": "contains", "value": "almost"},
        {"fieldName": "tags", "operator": "contains", "value": "db"},
    ]}]}  # fmt: skip
    e = explain(spec, {"content": "disk almost full", "tags": ["urgent", "db"]})
    assert e.matched
    assert all(c.matched for c in e.branches[0].checks)
    e = explain(spec, {"content": "disk almost full", "tags": ["dbx"]})
    assert not e.matched
    assert [c.path for c in e.failures] == ["$.tags"]
