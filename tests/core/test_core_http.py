"""The HTTP protocol binding: binary, structured and batched content modes."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventpatterns.core import (
    BATCH_CONTENT_TYPE,
    STRUCTURED_CONTENT_TYPE,
    Event,
    events_to_http_batch,
    is_json_content_type,
)
from eventpatterns.errors import InvalidEvent
from strategies import events

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def make(**overrides: Any) -> Event:
    fields: dict[str, Any] = {"type": "order.created", "source": "/shop", "id": "1", "time": T0}
    fields.update(overrides)
    return Event(**fields)


def binary_expectation(event: Event) -> Event:
    """What a binary-mode round trip can preserve (types of extensions, text bodies)."""
    extensions = {
        name: ("true" if value else "false") if isinstance(value, bool) else str(value)
        for name, value in event.extensions.items()
    }
    content_type, data = event.datacontenttype, event.data
    if isinstance(data, bytes):
        if content_type is None:
            content_type = "application/octet-stream"
        elif is_json_content_type(content_type):
            data = json.loads(data)
    elif data is not None and not is_json_content_type(content_type):
        text = (
            data
            if isinstance(data, str)
            else json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        )
        data = text.encode()
    if data in (b"",):
        data = None
    return event.model_copy(
        update={"extensions": extensions, "datacontenttype": content_type, "data": data}
    )


# -- binary mode --------------------------------------------------------------------


def test_binary_headers_and_body() -> None:
    event = make(
        subject="o 7",
        dataschema="https://example.com/s.json",
        datacontenttype="application/json",
        extensions={"tenant": "acme", "count": 3, "on": False},
        data={"total": 5},
    )
    headers, body = event.to_http()
    assert headers == {
        "ce-specversion": "1.0",
        "ce-id": "1",
        "ce-source": "/shop",
        "ce-type": "order.created",
        "ce-subject": "o%207",
        "ce-time": "2024-05-01T12:00:00Z",
        "ce-dataschema": "https://example.com/s.json",
        "ce-tenant": "acme",
        "ce-count": "3",
        "ce-on": "false",
        "content-type": "application/json",
    }
    assert body == b'{"total":5}'


def test_binary_percent_encoding_follows_section_3_1_3_2() -> None:
    # Space, double quote, percent and non-ASCII are encoded; other printables are not.
    headers, _ = make(subject='a "b" 100% €', source="/x?y=1&z=[2]").to_http()
    assert headers["ce-subject"] == "a%20%22b%22%20100%25%20%E2%82%AC"
    assert headers["ce-source"] == "/x?y=1&z=[2]"
    assert Event.from_http(headers, b"").subject == 'a "b" 100% €'


def test_binary_header_names_are_case_insensitive() -> None:
    headers = {
        "CE-SpecVersion": "1.0",
        "Ce-Id": "1",
        "CE-SOURCE": "/s",
        "ce-Type": "t",
        "Ce-Traceparent": "00-1",
        "Content-Type": "text/plain",
        "X-Other": "ignored",
    }
    event = Event.from_http(headers, b"hello")
    assert event.extensions == {"traceparent": "00-1"}
    assert event.datacontenttype == "text/plain"
    assert event.data == b"hello"
    assert event.time is None


def test_binary_text_data_with_text_type_is_sent_raw() -> None:
    _, body = make(data="héllo", datacontenttype="text/plain").to_http()
    assert body == "héllo".encode()


def test_binary_bytes_without_type_are_octet_stream() -> None:
    headers, body = make(data=b"\x00\xff").to_http()
    assert headers["content-type"] == "application/octet-stream"
    assert body == b"\x00\xff"


def test_binary_json_without_type_has_no_content_type() -> None:
    headers, body = make(data=[1, "a"]).to_http()
    assert "content-type" not in headers
    assert Event.from_http(headers, body).data == [1, "a"]


def test_binary_untyped_non_json_body_is_kept_as_bytes() -> None:
    headers = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}
    assert Event.from_http(headers, b"\xffraw").data == b"\xffraw"


def test_binary_empty_body_means_no_data() -> None:
    headers, body = make().to_http()
    assert body == b""
    assert Event.from_http(headers, body).data is None


@given(events())
def test_binary_round_trip(event: Event) -> None:
    headers, body = event.to_http("binary")
    assert Event.from_http(headers, body) == binary_expectation(event)


@given(events(), st.data())
def test_binary_round_trip_with_any_header_case(event: Event, data: st.DataObject) -> None:
    headers, body = event.to_http("binary")
    cased = {
        data.draw(st.sampled_from([name, name.upper(), name.title()])): value
        for name, value in headers.items()
    }
    assert Event.from_http(cased, body) == binary_expectation(event)


BASE = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


@pytest.mark.parametrize(
    ("headers", "body", "attribute", "fragment"),
    [
        ({}, b"", "specversion", "no ce-specversion header"),
        ({"content-type": "application/json"}, b"{}", "specversion", "required but missing"),
        ({**BASE, "ce-specversion": "0.3"}, b"", "specversion", "must be '1.0'"),
        ({k: v for k, v in BASE.items() if k != "ce-id"}, b"", "id", "required but missing"),
        ({**BASE, "ce-type": ""}, b"", "type", "non-empty"),
        ({**BASE, "ce-Bad_Name": "x"}, b"", "bad_name", "lower-case"),
        ({**BASE, "ce-time": "noon"}, b"", "time", "RFC 3339"),
        ({**BASE, "ce-subject": "%FF"}, b"", "subject", "percent-encoded UTF-8"),
        ({**BASE, "CE-ID": "2"}, b"", "id", "two headers"),
        ({**BASE, "ce-data": "x"}, b"", "data", "not a valid header"),
        ({**BASE, "ce-datacontenttype": "x/y"}, b"", "datacontenttype", "not a valid header"),
        ({**BASE, "content-type": "application/json"}, b"\xff\xfe", "data", "not valid JSON"),
        ({**BASE, "content-type": "application/json"}, b"{nope", "data", "application/json"),
        ({**BASE, "content-type": "text/json"}, b"NaN", "data", "not valid JSON"),
        ({**BASE, "content-type": ""}, b"", "datacontenttype", "non-empty"),
    ],
)
def test_binary_errors(headers: dict[str, str], body: bytes, attribute: str, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.from_http(headers, body)
    assert info.value.attribute == attribute
    assert fragment in str(info.value)


def test_unknown_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="'binary' or 'structured'"):
        make().to_http("batch")  # type: ignore[arg-type]


# -- structured mode ----------------------------------------------------------------


def test_structured_message() -> None:
    event = make(data={"a": 1})
    headers, body = event.to_http("structured")
    assert headers == {"content-type": STRUCTURED_CONTENT_TYPE}
    assert body == event.to_json()


@given(events())
def test_structured_round_trip(event: Event) -> None:
    assert Event.from_http(*event.to_http("structured")) == event


def test_structured_ignores_ce_headers_and_accepts_parameters() -> None:
    event = make(data="x")
    headers = {"Content-Type": "Application/CloudEvents+JSON; charset=UTF-8", "ce-id": "9"}
    assert Event.from_http(headers, event.to_json()) == event


@pytest.mark.parametrize(
    ("body", "attribute", "fragment"),
    [
        (b"{", None, "malformed JSON"),
        (b'{"specversion": "1.0", "id": "1", "source": "/s"}', "type", "required"),
        (b'{"specversion": "1.0", "id": "1", "source": "/s", "type": "t", "X": 1}', "X", "lower"),
    ],
)
def test_structured_errors(body: bytes, attribute: str | None, fragment: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.from_http({"content-type": STRUCTURED_CONTENT_TYPE}, body)
    assert info.value.attribute == attribute
    assert fragment in str(info.value)


def test_other_structured_formats_are_rejected() -> None:
    with pytest.raises(InvalidEvent, match="unsupported structured event format"):
        Event.from_http({"content-type": "application/cloudevents+avro"}, b"")


def test_batch_sent_to_from_http_is_rejected() -> None:
    with pytest.raises(InvalidEvent, match="batch_from_http"):
        Event.from_http(*events_to_http_batch([make()]))


# -- batched mode -------------------------------------------------------------------


@given(st.lists(events(), max_size=4))
def test_batch_round_trip(batch: list[Event]) -> None:
    headers, body = events_to_http_batch(batch)
    assert headers == {"content-type": BATCH_CONTENT_TYPE}
    assert Event.batch_from_http(headers, body) == batch


def test_batch_from_generator_and_header_case() -> None:
    headers, body = events_to_http_batch(make(id=str(i)) for i in range(3))
    parsed = Event.batch_from_http({"Content-Type": headers["content-type"]}, body)
    assert [event.id for event in parsed] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("headers", "body", "attribute", "fragment"),
    [
        ({}, b"[]", None, "got None"),
        ({"content-type": "application/json"}, b"[]", None, "got 'application/json'"),
        ({"content-type": BATCH_CONTENT_TYPE}, b"[", None, "malformed JSON"),
        ({"content-type": BATCH_CONTENT_TYPE}, b"{}", None, "JSON array, got dict"),
        ({"content-type": BATCH_CONTENT_TYPE}, b"[1]", None, "event [0]: a structured event"),
        (
            {"content-type": BATCH_CONTENT_TYPE},
            b'[{"specversion":"1.0","id":"1","source":"/s","type":"t"},{"specversion":"1.0"}]',
            "id",
            "event [1]: is required",
        ),
    ],
)
def test_batch_errors(
    headers: dict[str, str], body: bytes, attribute: str | None, fragment: str
) -> None:
    with pytest.raises(InvalidEvent) as info:
        Event.batch_from_http(headers, body)
    assert info.value.attribute == attribute
    assert fragment in str(info.value)


def test_binary_without_time_sends_no_time_header() -> None:
    event = Event.from_dict({"specversion": "1.0", "id": "1", "source": "/s", "type": "t"})
    headers, _ = event.to_http()
    assert "ce-time" not in headers
    assert Event.from_http(headers, b"") == event
