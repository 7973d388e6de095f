"""Bounded fuzzing of every parser: the outcome is a valid Event or ``InvalidEvent``, nothing else.

Each test feeds one entry point near-valid and hostile input (mutated events, deep
nesting, huge integers, odd offsets, non-string headers) and checks two things: an
accepted event is a real one (it survives ``to_json()`` and ``from_json()``), and a
refusal is an ``InvalidEvent`` with a message of bounded length. Any other exception
fails the test. Example counts are modest so the suite stays quick.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns.core import Event, format_time, parse_time, trusted_event
from eventpatterns.errors import InvalidEvent
from strategies import RESERVED, attribute_text, events, extension_names, times

MAX_MESSAGE = 400
fuzz = settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])

# -- what hostile input is made of -----------------------------------------------------

json_junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=30)
    | st.integers(4301, 5000).map(lambda digits: 10**digits)  # more digits than str() writes
    | st.sampled_from([-(2**63), 2**31, "\ud800", "1.0", ""]),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=10,
)


def _nest(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


nested = st.integers(0, 1500).map(_nest)
#: Any UTC offset datetime accepts, to the microsecond: most are not whole minutes.
DAY = timedelta(hours=23, minutes=59, seconds=59)
SECOND = timedelta(seconds=1)
any_offsets = st.timedeltas(min_value=-DAY, max_value=DAY).map(timezone)
odd_times = st.datetimes(timezones=any_offsets) | st.sampled_from(
    [
        datetime.min.replace(tzinfo=timezone(SECOND)),
        datetime.max.replace(tzinfo=timezone(-SECOND)),
        datetime(2024, 5, 1),  # naive
    ]
)
time_texts = st.from_regex(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?", fullmatch=True
)
member_names = st.sampled_from(sorted(RESERVED)) | extension_names | st.text(max_size=25)
member_values = (
    json_junk
    | attribute_text
    | time_texts
    | st.sampled_from(["1.0", "0.3", "", "AAE=", "application/json", "text/plain"])
)


@st.composite
def near_events(draw: st.DrawFn) -> dict[str, Any]:
    """A structured event object with a few members deleted, added or replaced."""
    obj = draw(events()).to_dict()
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(sorted(obj)) | member_names)
        if draw(st.booleans()) and name in obj:
            del obj[name]
        else:
            obj[name] = draw(member_values | nested)
    return obj


@st.composite
def documents(draw: st.DrawFn) -> bytes:
    """JSON text (or not) that a structured-mode parser may receive."""
    kind = draw(st.sampled_from(["event", "cut", "bytes", "deep", "array", "bignum"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        return draw(st.sampled_from([b"[", b'{"a":', b'{"data":['])) * draw(st.integers(1, 20000))
    if kind == "bignum":
        digits = b"9" * draw(st.integers(4000, 5000))  # around the 4300-digit limit
        return b'{"specversion":"1.0","id":"1","source":"/s","type":"t","data":' + digits + b"}"
    try:
        text = json.dumps(draw(near_events()), ensure_ascii=draw(st.booleans()), allow_nan=True)
    except ValueError:  # an integer with more digits than Python writes
        return b"[1e999999]"
    if kind == "array":
        text = f"[{text},{text}]"
    if kind == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    return text.encode("utf-8", "surrogatepass")


header_names = st.sampled_from(
    ["content-type", "Content-Type", "ce-specversion", "ce-id", "CE-Source", "ce-type", "ce-time",
     "ce-subject", "ce-", "ce-ext", "ce-data", "ce-datacontenttype", "ce-dataschema", "x-other"]
) | st.text(max_size=12).map("ce-".__add__) | st.text(max_size=12)  # fmt: skip
header_values = (
    st.text(max_size=40)
    | st.sampled_from(
        ["1.0", "application/json", "application/cloudevents+json; charset=utf-8", "text/plain",
         "application/cloudevents-batch+json", "application/cloudevents+xml", "%ff", "%41%20",
         "2024-05-01T12:00:00Z", "-00:60"]
    )
    | st.integers()
    | st.booleans()
    | st.none()
    | st.binary(max_size=4)
)  # fmt: skip
BINARY = {"ce-specversion": "1.0", "ce-id": "1", "ce-source": "/s", "ce-type": "t"}


@st.composite
def http_messages(draw: st.DrawFn) -> tuple[dict[Any, Any], bytes]:
    """Headers and a body: a real message, then a few headers added or replaced."""
    if draw(st.booleans()):
        headers, body = draw(events()).to_http(draw(st.sampled_from(["binary", "structured"])))
    else:
        headers, body = dict(BINARY), draw(documents())
    extra = draw(st.dictionaries(header_names | st.binary(max_size=3), header_values, max_size=4))
    return {**headers, **extra}, body


def outcome(call: Callable[[], Any]) -> tuple[Any, InvalidEvent | None]:
    """Run a parser: ``(result, None)``, or ``(None, error)`` if it raised InvalidEvent."""
    try:
        return call(), None
    except InvalidEvent as error:
        return None, error


def check(call: Callable[[], Any]) -> list[Event]:
    """Run a parser; return the events it accepted, ``[]`` when it refused."""
    result, error = outcome(call)
    if error is not None:
        assert len(str(error)) <= MAX_MESSAGE, str(error)[:200]
        return []
    accepted = result if isinstance(result, list) else [result]
    for event in accepted:
        assert isinstance(event, Event)
        assert Event.from_json(event.to_json()) == event  # a real event: it can be written
    return accepted


# -- the parsers -------------------------------------------------------------------------


@fuzz
@given(documents())
def test_from_json(raw: bytes) -> None:
    check(lambda: Event.from_json(raw))
    check(lambda: Event.from_json(raw.decode("utf-8", "replace")))


@fuzz
@given(near_events())
def test_from_dict(obj: dict[str, Any]) -> None:
    check(lambda: Event.from_dict(obj))


@fuzz
@given(st.lists(near_events(), max_size=3), documents())
def test_batch_from_http(objs: list[dict[str, Any]], other: bytes) -> None:
    headers = {"content-type": "application/cloudevents-batch+json"}
    try:
        body = json.dumps(objs, allow_nan=True).encode("utf-8", "surrogatepass")
    except ValueError:  # an integer with more digits than Python writes
        body = b"[]"
    assert len(check(lambda: Event.batch_from_http(headers, body))) in (0, len(objs))
    check(lambda: Event.batch_from_http(headers, other))


@fuzz
@given(http_messages())
def test_from_http(message: tuple[dict[Any, Any], bytes]) -> None:
    headers, body = message
    check(lambda: Event.from_http(headers, body))


@fuzz
@given(near_events(), odd_times | member_values, json_junk | st.binary(max_size=8) | nested)
def test_from_sdk(attrs: dict[str, Any], time: Any, data: Any) -> None:
    class SDKEvent:
        def get_attributes(self) -> dict[str, Any]:
            return {**attrs, "time": time}

        def get_data(self) -> Any:
            return data

    check(lambda: Event.from_sdk(SDKEvent()))


@fuzz
@given(
    st.builds(
        dict,
        type=member_values,
        source=attribute_text | member_values,
        id=st.none() | member_values,
        subject=st.none() | member_values,
        time=st.none() | odd_times | time_texts | member_values,
        datacontenttype=st.none() | st.sampled_from(["application/json", "text/plain", "x/y+json"]),
        data=json_junk | nested | st.binary(max_size=8) | st.tuples(st.integers()),
        extensions=st.dictionaries(member_names, member_values, max_size=3),
    )
)
def test_constructor(fields: dict[str, Any]) -> None:
    check(lambda: Event(**fields))


@fuzz
@given(time_texts | st.text(max_size=40))
def test_parse_time(text: str) -> None:
    parsed, error = outcome(lambda: parse_time(text))
    if error is not None:
        assert error.attribute == "time"
        assert len(str(error)) <= MAX_MESSAGE
        return
    assert text.isascii()  # RFC 3339 digits are ASCII
    offset = parsed.utcoffset()
    assert offset is not None
    assert offset.seconds % 60 == 0
    assert abs(offset) < timedelta(days=1)
    assert parse_time(format_time(parsed)) == parsed


@given(times)
def test_format_then_parse_keeps_instant_and_offset(time: datetime) -> None:
    back = parse_time(format_time(time))
    assert back == time
    assert back.utcoffset() == time.utcoffset()


@fuzz
@given(member_names | st.text(max_size=60))
def test_extension_names(name: str) -> None:
    valid = re.fullmatch("[a-z0-9]{1,20}", name) is not None and name not in RESERVED
    event, error = outcome(lambda: Event(type="t", source="/s", extensions={name: "v"}))
    if error is not None:
        assert not valid
        assert error.attribute == name  # named, even when the name is empty
        assert len(str(error)) <= MAX_MESSAGE
        if len(name) <= 40 and name not in RESERVED:
            assert repr(name) in str(error)
    else:
        assert valid
        assert event.extensions == {name: "v"}


@fuzz
@given(near_events() | st.dictionaries(member_names, member_values, max_size=6))
def test_trusted_event_refuses_only_with_invalid_event(obj: dict[str, Any]) -> None:
    # Not validation: what it accepts need not be valid (the caller vouches), but it
    # never fails with another error.
    event, error = outcome(lambda: trusted_event(obj))
    if error is not None:
        assert len(str(error)) <= MAX_MESSAGE
    else:
        assert type(event) is Event
