"""Bad input found by fuzzing (issue 7): each is refused with ``InvalidEvent`` or accepted right."""

from __future__ import annotations

import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone, tzinfo
from enum import IntEnum
from typing import Any, cast

import pytest

from eventpatterns.core import Event, events_to_http_batch, parse_time
from eventpatterns.errors import ArgumentTypeError, ConfigurationError, InvalidEvent

HEAD = {"specversion": "1.0", "id": "1", "source": "/s", "type": "t"}
BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
DEEP = b"[" * 10000
BATCH = "application/cloudevents-batch+json"
STRUCTURED = "application/cloudevents+json"
# The longest message an error may have: offending values are cut, never embedded whole.
MAX_MESSAGE = 400


def refused(build: Callable[[], object], attribute: str | None) -> InvalidEvent:
    with pytest.raises(InvalidEvent) as info:
        build()
    assert info.value.attribute == attribute
    assert len(str(info.value)) <= MAX_MESSAGE
    return info.value


# -- deep JSON: RecursionError in json's scanner -------------------------------------


@pytest.mark.parametrize(
    ("build", "attribute"),
    [
        (lambda: Event.from_json(DEEP), None),
        (lambda: Event.from_json(DEEP.decode()), None),
        (lambda: Event.from_json(b'{"data":' + DEEP), None),
        (lambda: Event.batch_from_http({"content-type": BATCH}, DEEP), None),
        (lambda: Event.from_http({"content-type": STRUCTURED}, DEEP), None),
        (lambda: Event.from_http({**BINARY, "content-type": "application/json"}, DEEP), "data"),
        (lambda: Event(type="t", source="/s", data=DEEP, datacontenttype="text/json"), "data"),
    ],
    ids=["from_json", "from_json-str", "data-member", "batch", "structured", "binary", "bytes"],
)  # fmt: skip
def test_deep_json_is_invalid_everywhere(
    build: Callable[[], object], attribute: str | None
) -> None:
    error = refused(build, attribute)
    assert "nested too deeply" in str(error)


def test_deep_binary_body_without_content_type_is_kept_as_bytes() -> None:
    # No Content-Type and not JSON (too deep for the parser): opaque bytes, as before.
    assert Event.from_http(BINARY, DEEP).data == DEEP


@contextmanager
def little_stack_left(frames: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + frames)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def test_nesting_checked_on_a_deep_stack_is_invalid_not_recursion_error() -> None:
    deep: Any = 1
    for _ in range(400):  # within the 500-level limit, but the caller's stack is deep
        deep = [deep]
    with little_stack_left(150), pytest.raises(InvalidEvent) as info:
        Event(type="t", source="/s", data=deep)
    assert info.value.attribute == "data"
    assert "nested too deeply to check" in info.value.reason
    assert Event(type="t", source="/s", data=deep).data == deep  # with the stack back


# -- sub-minute offsets at the edges of datetime: OverflowError ----------------------


ODD = timezone(timedelta(seconds=30))
ODD_WEST = timezone(-timedelta(seconds=30))


@pytest.mark.parametrize(
    "time", [datetime.min.replace(tzinfo=ODD), datetime.max.replace(tzinfo=ODD_WEST)]
)
def test_sub_minute_offset_beyond_the_datetime_range_is_invalid(time: datetime) -> None:
    error = refused(lambda: Event(type="t", source="/s", time=time), "time")
    assert "outside the datetime range" in error.reason
    refused(lambda: Event.from_dict({**HEAD, "time": time}), "time")


def test_sub_minute_offset_beyond_the_range_from_the_sdk_bridge() -> None:
    core_event = pytest.importorskip("cloudevents.core.v1.event")
    time = datetime.min.replace(tzinfo=ODD)
    sdk = core_event.CloudEvent({"type": "t", "source": "/s", "time": time})
    refused(lambda: Event.from_sdk(sdk), "time")


def test_sub_minute_offset_inside_the_range_is_restated_in_utc() -> None:
    time = datetime.min.replace(tzinfo=ODD_WEST)  # 30 s later in UTC: representable
    event = Event(type="t", source="/s", time=time)
    assert event.time == time
    assert event.time is not None
    assert event.time.tzinfo is timezone.utc


@pytest.mark.parametrize("problem", [TypeError, ValueError])
def test_a_broken_tzinfo_is_invalid(problem: type[Exception]) -> None:
    class Broken(tzinfo):
        def utcoffset(self, dt: datetime | None) -> timedelta:
            if problem is ValueError:
                return timedelta(hours=30)  # datetime refuses offsets of a day or more
            return "soon"  # type: ignore[return-value]

        # tzinfo's own dst() and tzname() raise NotImplementedError: so do these.
        def dst(self, dt: datetime | None) -> timedelta:
            raise NotImplementedError

        def tzname(self, dt: datetime | None) -> str:
            raise NotImplementedError

    time = datetime(2024, 5, 1, tzinfo=Broken())
    error = refused(lambda: Event(type="t", source="/s", time=time), "time")
    assert "unusable time zone" in error.reason


# -- data JSON cannot write: huge integers -------------------------------------------


class Big(IntEnum):
    HUGE = 10**5000


@pytest.mark.parametrize(
    "data",
    [10**5000, -(10**5000), [1, {"n": 10**5000}], {"k": [10**5000]}, Big.HUGE],
    ids=["int", "negative", "in-list", "in-dict", "IntEnum"],
)
def test_integers_json_cannot_write_are_refused_when_the_event_is_made(data: Any) -> None:
    error = refused(lambda: Event(type="t", source="/s", data=data), "data")
    assert "sys.get_int_max_str_digits()" in error.reason


def test_big_integers_json_can_write_are_kept() -> None:
    for value in (10**600, -(10**600), 10**4000, 2**64):
        event = Event(type="t", source="/s", data={"n": value})
        assert Event.from_json(event.to_json()) == event


def test_the_digit_limit_is_read_when_the_event_is_made() -> None:
    old = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(0)  # no limit: json.dumps writes any integer
    try:
        event = Event(type="t", source="/s", data=10**5000)
        assert event.to_json().endswith(b'"data":1' + b"0" * 5000 + b"}")
    finally:
        sys.set_int_max_str_digits(old)


def test_huge_integer_as_object_key_is_named_not_crashing() -> None:
    error = refused(lambda: Event(type="t", source="/s", data={10**5000: 1}), "data")
    assert "keys must be strings, got int <unprintable int>" in error.reason


# -- times that are not RFC 3339 -------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "\uff12\uff10\uff12\uff14-05-01T12:00:00Z",  # fullwidth digits match \d
        "2024-05-01T12:00:00.\uff15Z",
        "2024-05-01T12:00:00+0\u0665:00",  # an Arabic-Indic digit in the offset
        "2024-05-01T12:00:00-00:60",
        "2024-05-01T12:00:00+24:00",
        "2024-05-01T12:00:60Z",  # a leap second: RFC 3339 has it, datetime cannot hold it
    ],
)
def test_times_that_are_not_rfc3339_are_refused(text: str) -> None:
    refused(lambda: parse_time(text), "time")
    refused(lambda: Event(type="t", source="/s", time=text), "time")
    refused(lambda: Event.from_dict({**HEAD, "time": text}), "time")
    refused(lambda: Event.from_http({**BINARY, "ce-time": text}, b""), "time")


# -- HTTP header values that are not strings -------------------------------------------


def test_native_header_values_of_the_legacy_sdk_are_kept() -> None:
    legacy = pytest.importorskip("cloudevents.v1.http")
    conversion = pytest.importorskip("cloudevents.v1.conversion")
    sdk = legacy.CloudEvent(
        {"type": "t", "source": "/s", "id": "1", "flag": True, "n": 5, "note": "a b"}, {"a": 1}
    )
    headers, body = conversion.to_binary(sdk)
    assert headers["ce-flag"] is True  # the SDK writes Python values, not header text
    event = Event.from_http(headers, body)
    assert event.extensions == {"flag": True, "n": 5, "note": "a b"}
    assert event.data == {"a": 1}


@pytest.mark.parametrize(
    ("header", "value", "attribute"),
    [("ce-id", 5, "id"), ("ce-time", True, "time"), ("ce-x", None, "x"), ("ce-x", b"v", "x"),
     ("ce-x", 2**40, "x"), ("ce-specversion", 1.0, "specversion")],
)  # fmt: skip
def test_header_values_that_cannot_be_attributes(header: str, value: Any, attribute: str) -> None:
    refused(lambda: Event.from_http({**BINARY, header: value}, b""), attribute)


def test_header_names_and_content_types_that_are_not_strings() -> None:
    error = refused(lambda: Event.from_http({**BINARY, b"ce-x": "v"}, b""), None)  # type: ignore[dict-item]
    assert "header names must be strings, got bytes" in error.reason
    refused(lambda: Event.from_http({**BINARY, "Content-Type": 5}, b""), "datacontenttype")


def test_content_type_headers_that_disagree() -> None:
    headers = {**BINARY, "content-type": "text/plain", "Content-Type": "application/json"}
    refused(lambda: Event.from_http(headers, b"1"), "datacontenttype")
    same = {**BINARY, "content-type": "text/plain", "Content-Type": "text/plain"}
    assert Event.from_http(same, b"1").data == b"1"


@pytest.mark.parametrize("call", [Event.from_http, Event.batch_from_http])
def test_arguments_of_the_wrong_type(call: Any) -> None:
    with pytest.raises(ArgumentTypeError) as info:
        call([("ce-id", "1")], b"")
    assert info.value.argument == "headers"
    with pytest.raises(ArgumentTypeError) as info:
        call(BINARY, 42)
    assert info.value.argument == "body"
    assert isinstance(info.value, TypeError)


def test_text_and_buffer_bodies_are_taken_as_their_bytes() -> None:
    typed = {**BINARY, "content-type": "text/plain"}
    # Not the annotated type (bytes), on purpose: each is accepted anyway.
    assert Event.from_http(typed, cast(Any, "zoë")).data == "zoë".encode()
    assert Event.from_http(typed, cast(Any, bytearray(b"ab"))).data == b"ab"
    assert Event.from_http(typed, cast(Any, memoryview(b"ab"))).data == b"ab"


# -- structured mode: ce-* headers are not read ----------------------------------------


def test_structured_mode_ignores_stray_malformed_ce_headers() -> None:
    event = Event(type="t", source="/s", id="1", data={"a": 1})
    headers: dict[str, Any] = {  # Any: a None value, on purpose
        "content-type": "application/cloudevents+json; charset=utf-8",
        "ce-": "nameless",
        "ce-id": "%ff",  # not percent-encoded UTF-8
        "CE-ID": "2",  # repeated
        "ce-flag": None,
        "ce-data": "x",
    }
    assert Event.from_http(headers, event.to_json()) == event


# -- empty extension names; long values ------------------------------------------------


def test_an_empty_extension_name_is_named() -> None:
    error = refused(lambda: Event(type="t", source="/s", extensions={"": "v"}), "")
    assert "extension attribute name '' is not" in str(error)
    error = refused(lambda: Event.from_dict({**HEAD, "": 1}), "")
    assert "name ''" in str(error)


def test_a_header_named_just_ce_is_named() -> None:
    error = refused(lambda: Event.from_http({**BINARY, "Ce-": "v"}, b""), "")
    assert "'Ce-'" in str(error)
    assert "empty extension name" in str(error)


LONG = "x" * 100_000


@pytest.mark.parametrize(
    ("build", "attribute"),
    [
        (lambda: Event(type="t", source="/s", specversion=LONG), "specversion"),
        (lambda: Event.from_dict({**HEAD, "specversion": LONG}), "specversion"),
        (lambda: Event(type="t", source="/s", time=LONG), "time"),
        (lambda: Event(type="t", source="/s", extensions={LONG: 1}), LONG),
        (lambda: Event(type="t", source="/s", extensions=cast(Any, {LONG.encode(): 1})), None),
        (lambda: Event(type="t", source="/s", data=[LONG + "\ud800"]), "data"),
        (lambda: Event(type="t", source="/s", data={LONG: 1, (1,) * 9999: 2}), "data"),
        (lambda: Event(type="t", source="/s", data=b"{", datacontenttype=LONG + "+json"), "data"),
        (lambda: Event.from_http({**BINARY, "content-type": STRUCTURED + LONG}, b""), None),
        (lambda: Event.from_http({"content-type": LONG}, b""), "specversion"),
        (lambda: Event.from_http({**BINARY, "content-type": LONG + "+json"}, b"{"), "data"),
        (lambda: Event.batch_from_http({"content-type": LONG}, b"[]"), None),
    ],
)  # fmt: skip
def test_messages_cut_long_values(build: Callable[[], object], attribute: str | None) -> None:
    with pytest.raises(InvalidEvent) as info:
        build()
    if attribute is not None:
        assert info.value.attribute == attribute
    assert len(info.value.reason) <= MAX_MESSAGE


def test_a_value_whose_repr_fails_is_named_by_its_type() -> None:
    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    error = refused(lambda: Event(type="t", source="/s", data={Opaque(): 1}), "data")
    assert "got Opaque <unprintable Opaque>" in error.reason


# -- option values: ConfigurationError, still a ValueError -----------------------------


def test_unknown_modes_are_configuration_errors() -> None:
    event = Event(type="t", source="/s")
    with pytest.raises(ConfigurationError, match="'binary' or 'structured'"):
        event.to_http("both")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="'auto', 'core' or 'legacy'"):
        event.to_sdk(api="v3")  # type: ignore[arg-type]


def test_from_sdk_refuses_a_time_that_cannot_be_a_string() -> None:
    class Stamp:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    class Duck:
        def get_attributes(self) -> dict[str, Any]:
            return {**HEAD, "time": Stamp()}

        def get_data(self) -> None:
            return None

    error = refused(lambda: Event.from_sdk(Duck()), "time")
    assert "got Stamp" in error.reason


def test_json_dumps_agrees_with_the_checks() -> None:
    # What the constructor accepts, json.dumps writes (allow_nan=False, like to_json).
    event = Event(type="t", source="/s", data={"n": 10**600, "f": 1.5, "s": "zoë"})
    assert json.loads(json.dumps(event.to_dict(), allow_nan=False)) == event.to_dict()


def test_a_batch_of_things_that_are_not_events() -> None:
    with pytest.raises(ArgumentTypeError, match="takes an iterable of Event, got dict") as info:
        events_to_http_batch([Event(type="t", source="/s"), {"type": "t"}])  # type: ignore[list-item]
    assert info.value.argument == "events"
