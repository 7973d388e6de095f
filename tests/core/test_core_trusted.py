"""``trusted_event``: the constructor for events a backend stored, and the attribute list."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given

from eventpatterns.core import ATTRIBUTES, Event, _rules, trusted_event
from eventpatterns.core._rules import extension_name_error
from eventpatterns.errors import InvalidEvent
from strategies import events

HEAD = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}


def test_the_attribute_list_is_the_model() -> None:
    assert tuple(Event.model_fields) == (*ATTRIBUTES, "data", "extensions")
    assert ATTRIBUTES[:4] == ("id", "source", "specversion", "type")


@given(events())
def test_a_stored_event_comes_back_as_validation_builds_it(event: Event) -> None:
    raw = event.to_json()
    trusted, validated = trusted_event(json.loads(raw)), Event.from_json(raw)
    assert trusted == validated == event
    assert repr(trusted) == repr(validated)
    assert trusted.to_json() == raw
    assert trusted.model_fields_set == validated.model_fields_set
    assert list(vars(trusted)) == list(vars(validated))


@given(events())
def test_to_dict_output_is_taken_as_is(event: Event) -> None:
    assert trusted_event(event.to_dict()) == event


def test_the_result_is_a_frozen_event() -> None:
    event = trusted_event({**HEAD, "data": [1]})
    assert type(event) is Event
    assert event.model_copy(update={"id": "2"}).id == "2"
    with pytest.raises(ValueError, match="frozen"):
        event.id = "3"  # type: ignore[misc]


def test_nulls_count_as_absent() -> None:
    event = trusted_event({**HEAD, "subject": None, "time": None, "data": None, "ext": None})
    assert event == Event.from_dict({**HEAD, "subject": None, "ext": None})
    assert event.time is None
    assert event.extensions == {}


def test_data_base64_wherever_it_stands() -> None:
    first = trusted_event({"data_base64": "AAE=", **HEAD, "datacontenttype": "image/png"})
    assert first.data == b"\x00\x01"
    assert trusted_event({**HEAD, "data_base64": "AAE=", "data": None}).data == b"\x00\x01"
    assert trusted_event({**HEAD, "data_base64": None, "ext": 1}).data is None


@pytest.mark.parametrize(
    ("obj", "attribute"),
    [
        ([HEAD], None),
        ({**HEAD, "specversion": "0.3"}, None),
        ({k: v for k, v in HEAD.items() if k != "id"}, None),
        ({**HEAD, "source": ""}, None),
        ({**HEAD, "type": 7}, None),
        ({**HEAD, "subject": 7}, None),
        ({**HEAD, "dataschema": ["x"], "ext": "v"}, None),
        ({**HEAD, "time": 1714564800}, "time"),
        ({**HEAD, "time": "2024-05-01T12:00:00"}, "time"),  # naive
        ({**HEAD, "time": "yesterday"}, "time"),
        ({**HEAD, "data": 1, "data_base64": "AA=="}, "data"),
        ({**HEAD, "data_base64": "not base64!"}, "data_base64"),
        ({**HEAD, "data_base64": 5}, "data_base64"),
        ({**HEAD, "UPPER": 1}, "UPPER"),
        ({**HEAD, "ext": 1.5}, "ext"),
    ],
)
def test_what_the_cheap_checks_refuse(obj: Any, attribute: str | None) -> None:
    with pytest.raises(InvalidEvent) as info:
        trusted_event(obj)
    assert info.value.attribute == attribute
    with pytest.raises(InvalidEvent):  # validation refuses them too, with its own words
        Event.from_dict(obj)


def test_what_it_does_not_check() -> None:
    # The contract: the caller vouches for what costs time to check. A control
    # character (refused by validation) passes here; that is the documented trade.
    event = trusted_event({**HEAD, "subject": "a\nb"})
    assert event.subject == "a\nb"
    with pytest.raises(InvalidEvent):
        Event.from_dict({**HEAD, "subject": "a\nb"})


@given(events())
def test_an_aware_datetime_is_taken_as_it_is(event: Event) -> None:
    obj = event.to_dict()
    if event.time is not None:
        obj["time"] = event.time  # a backend that built the time need not format it
    assert trusted_event(obj) == event
    assert trusted_event(obj).to_json() == event.to_json()


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(InvalidEvent) as info:
        trusted_event({**HEAD, "time": datetime(2024, 5, 1, 12)})
    assert info.value.attribute == "time"
    aware = datetime(2024, 5, 1, 12, tzinfo=timezone.utc)
    assert trusted_event({**HEAD, "time": aware}).time == aware


def test_extension_names_found_good_are_remembered_and_bounded() -> None:
    for _ in range(2):  # a bad name is refused every time, never remembered
        assert extension_name_error("UPPER") is not None
        assert extension_name_error("time") is not None
    assert "UPPER" not in _rules._GOOD_NAMES
    assert "time" not in _rules._GOOD_NAMES
    for n in range(1500):
        assert extension_name_error(f"x{n}") is None
    assert len(_rules._GOOD_NAMES) <= 1024
    assert extension_name_error("x1499") is None  # beyond the bound: checked, still good
