"""SNS filter policies: EventBridge syntax, a different scope and limits."""

from __future__ import annotations

import pytest

from eventpatterns.errors import InvalidPattern
from eventpatterns.filters import compile_sns, sns_message_attributes

ATTRIBUTES = {
    "store": {"Type": "String", "Value": "example_corp"},
    "price_usd": {"Type": "Number", "Value": "210.75"},
    "quantity": {"DataType": "Number", "StringValue": "3"},
    "odd_number": {"Type": "Number", "Value": "lots"},
    "colors": {"Type": "String.Array", "Value": '["red", "blue"]'},
    "broken": {"Type": "String.Array", "Value": "[not json"},
    "raw_array": {"Type": "String.Array", "Value": ["x"]},
    "raw_number": {"Type": "Number", "Value": 5},
    "blob": {"Type": "Binary", "Value": "AAEC"},
    "nothing": {"Type": "String"},
    "plain": "value",
}


def test_message_attributes_conversion() -> None:
    assert sns_message_attributes(ATTRIBUTES) == {
        "store": "example_corp",
        "price_usd": 210.75,
        "quantity": 3,
        "odd_number": "lots",
        "colors": ["red", "blue"],
        "broken": "[not json",
        "raw_array": ["x"],
        "raw_number": 5,
        "plain": "value",
    }


def test_attribute_policy() -> None:
    policy = {"store": ["example_corp"], "price_usd": [{"numeric": [">=", 100]}],
              "colors": ["blue"], "blob": [{"exists": False}]}  # fmt: skip
    matcher = compile_sns(policy)
    message = sns_message_attributes(ATTRIBUTES)
    assert matcher.matches(message)
    assert not matcher.matches({**message, "store": "other"})


def test_body_policy_allows_nesting_and_text() -> None:
    matcher = compile_sns('{"order": {"total": [{"numeric": [">", 1]}]}}', scope="MessageBody")
    assert matcher.matches({"order": {"total": 2}})
    with pytest.raises(InvalidPattern) as info:
        compile_sns({"order": {"total": [1]}})
    assert info.value.path == "$.order"
    with pytest.raises(InvalidPattern) as info:
        compile_sns({"$or": [{"a": ["x"]}, {"b": {"c": ["y"]}}]})
    assert info.value.path == "$.$or[1].b"
    # Attribute names may hold dots: a flat policy key with a dot is not nesting.
    dotted = compile_sns({"store.name": ["x"]})
    assert dotted.matches(sns_message_attributes({"store.name": {"Type": "String", "Value": "x"}}))


def test_limits() -> None:
    with pytest.raises(InvalidPattern, match="at most 5 keys"):
        compile_sns({k: ["x"] for k in "abcdef"})
    with pytest.raises(InvalidPattern, match="151 combinations"):
        compile_sns({"a": list(range(151))})
    compile_sns({"a": list(range(150))})
    with pytest.raises(InvalidPattern, match="not valid JSON"):
        compile_sns("{")
