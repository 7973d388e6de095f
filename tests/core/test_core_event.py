"""Event construction, validation rules and the structured JSON form."""

from __future__ import annotations

import json
from collections import OrderedDict
from datetime import datetime, timedelta, timezone
from enum import Enum, IntEnum
from typing import Any

import pytest
from hypothesis import given
from pydantic import ValidationError

from eventpatterns.core import Event, format_time, is_json_content_type, parse_time
from eventpatterns.errors import InvalidEvent
from strategies import events

UTC = timezone.utc
T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def make(**overrides: Any) -> Event:
    fields: dict[str, Any] = {"type": "order.created", "source": "/shop"}
    fields.update(overrides)
    return Event(**fields)


def invalid(attribute: str | None, fragment: str, **overrides: Any) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        make(**overrides)
    assert info.value.attribute == attribute
    assert fragment in str(info.value)
    return info.value


# -- defaults -----------------------------------------------------------------------


def test_defaults_fill_id_time_and_specversion() -> None:
    before = datetime.now(UTC)
    event = make()
    assert event.specversion == "1.0"
    assert len(event.id) == 36
    assert event.id[14] == "7"
    assert event.time is not None
    assert before <= event.time <= datetime.now(UTC)
    assert event.data is None
    assert event.extensions == {}
    assert event.datacontenttype is None
    assert event.subject is None


def test_ids_of_consecutive_events_sort_by_creation() -> None:
    ids = [make().id for _ in range(50)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 50


def test_event_is_frozen() -> None:
    event = make()
    with pytest.raises(ValidationError):
        event.type = "other"  # type: ignore[misc]


def test_time_accepts_rfc3339_text() -> None:
    event = make(time="2024-05-01T14:00:00.25+02:00")
    assert event.time == T0 + timedelta(milliseconds=250)
    assert event.time is not None
    assert event.time.utcoffset() == timedelta(hours=2)


def test_time_with_second_offset_is_restated_in_utc() -> None:
    odd = timezone(timedelta(hours=1, seconds=30))
    event = make(time=datetime(2024, 5, 1, 13, 0, 30, tzinfo=odd))
    assert event.time == T0
    assert event.time is not None
    assert event.time.tzinfo is UTC


def test_bytes_like_data_becomes_bytes() -> None:
    assert make(data=bytearray(b"ab")).data == b"ab"
    assert make(data=memoryview(b"cd")).data == b"cd"


def test_json_bytes_with_json_content_type_are_accepted() -> None:
    event = make(data=b'{"a": 1}', datacontenttype="application/json")
    assert event.data == b'{"a": 1}'


def test_enum_and_mapping_subclasses_are_json() -> None:
    class Colour(str, Enum):
        RED = "red"

    class Size(IntEnum):
        BIG = 3

    event = make(data=OrderedDict(colour=Colour.RED, sizes=[Size.BIG], ratio=0.5))
    assert json.loads(event.to_json())["data"] == {"colour": "red", "sizes": [3], "ratio": 0.5}


def test_extensions_accept_any_mapping() -> None:
    event = make(extensions=OrderedDict(traceparent="00-abc", count=3, on=True))
    assert event.extensions == {"traceparent": "00-abc", "count": 3, "on": True}


def test_non_ascii_strings_are_allowed() -> None:
    event = make(subject="bestellung-über-café ✓", extensions={"who": "Zoë 😀"})
    assert Event.from_json(event.to_json()) == event


# -- validation rules: each names the attribute and the rule -----------------------


@pytest.mark.parametrize("attribute", ["type", "source", "id"])
def test_required_strings_must_not_be_empty(attribute: str) -> None:
    invalid(attribute, "non-empty", **{attribute: ""})


@pytest.mark.parametrize("attribute", ["type", "source", "id", "subject"])
def test_strings_must_be_strings(attribute: str) -> None:
    invalid(attribute, "string", **{attribute: 42})


@pytest.mark.parametrize("attribute", ["subject", "datacontenttype", "dataschema"])
def test_optional_strings_must_not_be_empty(attribute: str) -> None:
    invalid(attribute, "non-empty", **{attribute: ""})


@pytest.mark.parametrize("char", ["\n", "\x00", "\x7f", "\x85", "\ufdd0", "\uffff", "\U0010ffff"])
def test_control_and_noncharacters_are_rejected(char: str) -> None:
    error = invalid("subject", f"U+{ord(char):04X}", subject=f"a{char}b")
    assert "control characters" in error.reason


def test_lone_surrogate_is_rejected() -> None:
    invalid("type", "U+D800", type="a\ud800")


def test_wrong_specversion() -> None:
    invalid("specversion", "must be '1.0'", specversion="0.3")


def test_naive_time_is_rejected() -> None:
    invalid("time", "timezone-aware", time=datetime(2024, 5, 1, 12, 0))


@pytest.mark.parametrize(
    "text",
    ["yesterday", "2024-05-01", "2024-05-01T12:00:00", "2024-05-01 12:00:00Z", "2024-13-01T00:00Z"],
)
def test_bad_time_text(text: str) -> None:
    invalid("time", repr(text), time=text)


@pytest.mark.parametrize("offset", ["+24:00", "-00:60", "+05:99", "-99:00"])
def test_out_of_range_offset_is_rejected(offset: str) -> None:
    # -00:60 used to be read as -01:00: RFC 3339 time-minute is 00-59, time-hour 00-23.
    error = invalid("time", "outside -23:59..+23:59", time=f"2024-05-01T12:00:00{offset}")
    assert offset in error.reason


@pytest.mark.parametrize("offset", ["+23:59", "-23:59", "-00:00", "+00:59"])
def test_offset_bounds_are_inclusive(offset: str) -> None:
    event = make(time=f"2024-05-01T12:00:00{offset}")
    assert event.time is not None
    assert format_time(event.time).endswith("Z" if offset == "-00:00" else offset)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({1, 2}, "got set"),
        ((1, 2), "got tuple"),
        (float("nan"), "nan is not a JSON number"),
        ([1, float("inf")], "inf is not a JSON number"),
        ({1: "a"}, "keys must be strings, got int"),
        ({"a": [object()]}, "got object"),
        (datetime(2024, 1, 1), "got datetime"),
    ],
)
def test_non_json_data_is_rejected(data: Any, fragment: str) -> None:
    invalid("data", fragment, data=data)


def test_deeply_nested_data_is_rejected() -> None:
    deep: Any = 1
    for i in range(600):
        deep = [deep] if i % 2 else {"a": deep}
    invalid("data", "nested deeper than 500", data=deep)


def test_non_json_bytes_with_json_content_type() -> None:
    error = invalid("data", "UTF-8 JSON document", data=b"\xff", datacontenttype="application/json")
    assert "application/json" in error.reason
    invalid("data", "malformed JSON", data=b"nope", datacontenttype="text/json")


def test_bytes_without_content_type_may_be_anything() -> None:
    assert make(data=b"\xff\x00").data == b"\xff\x00"
    assert make(data=b"\xff", datacontenttype="image/png").data == b"\xff"


@pytest.mark.parametrize("name", ["Upper", "with-dash", "x" * 21, "", "naïve"])
def test_bad_extension_names(name: str) -> None:
    invalid(name, "1-20 characters of lower-case a-z or 0-9", extensions={name: "v"})


def test_non_string_extension_name() -> None:
    invalid("7", "names must be strings, got int 7", extensions={7: "v"})


@pytest.mark.parametrize("name", ["id", "time", "data", "data_base64", "subject"])
def test_reserved_extension_names(name: str) -> None:
    if name == "data_base64":  # not even a valid name
        invalid(name, "lower-case", extensions={name: "v"})
    else:
        invalid(name, "context attribute, not an extension", extensions={name: "v"})


@pytest.mark.parametrize(
    ("value", "fragment"),
    [(2**31, "32-bit"), (-(2**31) - 1, "32-bit"), (1.5, "got float"), (None, "got NoneType")],
)
def test_bad_extension_values(value: Any, fragment: str) -> None:
    invalid("ext", fragment, extensions={"ext": value})


def test_empty_extension_string_is_rejected() -> None:
    invalid("ext", "non-empty", extensions={"ext": ""})


def test_extensions_must_be_a_mapping() -> None:
    invalid("extensions", "mapping", extensions=["a"])


def test_int32_bounds_are_inclusive() -> None:
    event = make(extensions={"lo": -(2**31), "hi": 2**31 - 1})
    assert event.extensions == {"lo": -(2**31), "hi": 2**31 - 1}


def _doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
    for key, value in changes.items():
        if value is ...:
            del doc[key]
        else:
            doc[key] = value
    return doc


# -- structured JSON ----------------------------------------------------------------


def test_to_dict_shape() -> None:
    event = make(
        id="1",
        time=T0,
        subject="o-7",
        datacontenttype="application/json",
        dataschema="https://example.com/s.json",
        extensions={"tenant": "acme"},
        data={"total": 5},
    )
    assert event.to_dict() == {
        "specversion": "1.0",
        "id": "1",
        "source": "/shop",
        "type": "order.created",
        "subject": "o-7",
        "time": "2024-05-01T12:00:00Z",
        "datacontenttype": "application/json",
        "dataschema": "https://example.com/s.json",
        "tenant": "acme",
        "data": {"total": 5},
    }


def test_bytes_travel_as_data_base64() -> None:
    event = make(id="1", time=T0, data=b"\x00\xff")
    obj = json.loads(event.to_json())
    assert obj["data_base64"] == "AP8="
    assert "data" not in obj
    assert Event.from_json(event.to_json()).data == b"\x00\xff"


def test_to_json_is_compact_utf8() -> None:
    event = make(id="1", time=T0, data="é")
    assert event.to_json().endswith(b',"data":"\xc3\xa9"}')


@given(events())
def test_json_round_trip(event: Event) -> None:
    assert Event.from_json(event.to_json()) == event
    assert Event.from_dict(json.loads(event.to_json())) == event


def test_parsing_keeps_absent_time_absent() -> None:
    event = Event.from_dict({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"})
    assert event.time is None
    assert "time" not in event.to_dict()


def test_null_attributes_count_as_absent() -> None:
    event = Event.from_dict(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "/s",
            "type": "t",
            "subject": None,
            "time": None,
            "ext": None,
            "data": None,
            "data_base64": None,
        }
    )
    assert event.subject is None
    assert event.time is None
    assert event.extensions == {}
    assert event.data is None


def test_nanosecond_timestamps_are_truncated() -> None:
    event = Event.from_dict(
        {
            "specversion": "1.0",
            "id": "1",
            "source": "/s",
            "type": "t",
            "time": "2024-05-01T12:00:00.123456789z",
        }
    )
    assert event.time == T0 + timedelta(microseconds=123456)


@pytest.mark.parametrize(
    ("doc", "attribute", "fragment"),
    [
        (_doc(id=...), "id", "required but missing"),
        (_doc(source=None), "source", "required but missing"),
        (_doc(type=...), "type", "required but missing"),
        (_doc(specversion=...), "specversion", "required but missing"),
        (_doc(specversion="0.3"), "specversion", "must be '1.0'"),
        (_doc(specversion=1.0), "specversion", "must be a string, got float"),
        (_doc(id=5), "id", "must be a string, got int"),
        (_doc(subject=5), "subject", "must be a string, got int"),
        (_doc(time=5), "time", "not an RFC 3339 timestamp"),
        (_doc(time="2024-05-01T12:00:00"), "time", "not an RFC 3339 timestamp"),
        (_doc(data=1, data_base64="AA=="), "data", "mutually exclusive"),
        (_doc(data_base64=5), "data_base64", "base64 string"),
        (_doc(data_base64="!!"), "data_base64", "not valid base64"),
        (_doc(Bad=1), "Bad", "lower-case"),
        (_doc(ext=1.5), "ext", "got float"),
        (_doc(ext={"a": 1}), "ext", "got dict"),
        (_doc(data_base64="/w==", datacontenttype="application/json"), "data", "UTF-8 JSON"),
    ],
)
def test_from_dict_errors(doc: dict[str, Any], attribute: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.from_dict(doc)
    assert info.value.attribute == attribute
    assert fragment in str(info.value)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"{", "malformed JSON"),
        (b"\xff", "malformed JSON"),
        (b'{"data": NaN}', "NaN is not valid JSON"),
        (b"[1]", "must be a JSON object, got list"),
        (b"", "malformed JSON"),
    ],
)
def test_from_json_errors(raw: bytes, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.from_json(raw)
    assert info.value.attribute is None
    assert fragment in str(info.value)


def test_invalid_event_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="specversion"):
        Event.from_json('{"id": "1", "source": "/s", "type": "t"}')


# -- helpers ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        (None, True),
        ("application/json", True),
        ("Application/JSON; charset=utf-8", True),
        ("text/json", True),
        ("application/cloudevents+json", True),
        ("text/plain", False),
        ("application/jsonp", False),
    ],
)
def test_is_json_content_type(content_type: str | None, expected: bool) -> None:
    assert is_json_content_type(content_type) is expected


def test_format_and_parse_time() -> None:
    assert format_time(T0) == "2024-05-01T12:00:00Z"
    plus = datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert format_time(plus) == "2024-05-01T14:00:00+02:00"
    assert parse_time("2024-05-01T07:30:00-04:30") == T0
    assert parse_time("2024-05-01T12:00:00-00:00") == T0


def test_deeply_nested_objects_are_rejected() -> None:
    deep: Any = 1
    for _ in range(501):
        deep = {"a": deep}
    invalid("data", "nested deeper than 500", data=deep)


def test_model_validate_goes_through_the_constructor() -> None:
    event = Event.model_validate({"id": "1", "source": "/s", "specversion": "1.0", "type": "t"})
    assert event.extensions == {}
    assert event.time is not None
    # pydantic wraps the InvalidEvent in its ValidationError (also a ValueError).
    with pytest.raises(ValueError, match="'A': extension attribute name 'A' is not"):
        Event.model_validate({"type": "t", "source": "/s", "extensions": {"A": 1}})


@pytest.mark.parametrize("data", ["a\ud800", {"k\udfff": 1}, ["\ud83d"]])
def test_unpaired_surrogates_in_data_are_rejected(data: Any) -> None:
    invalid("data", "unpaired surrogate", data=data)


def test_paired_non_ascii_text_in_data_is_fine() -> None:
    event = make(data={"ключ": ["😀", "é"]})
    assert Event.from_json(event.to_json()) == event


def test_time_of_another_type_is_rejected() -> None:
    invalid("time", "datetime or RFC 3339 string, got int", time=5)
