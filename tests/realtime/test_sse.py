"""SSE framing: what encode() writes is what a WHATWG parser dispatches."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.realtime._sse import (
    MAX_LAST_EVENT_ID,
    comment,
    encode,
    encode_text,
    parse_last_event_id,
)

from .sse_parser import Parser


def _parse(*chunks: bytes) -> Parser:
    parser = Parser()
    for chunk in chunks:
        parser.feed(chunk)
    return parser


def test_encode_an_event_frame() -> None:
    assert encode('{"a":1}', event="event", id="7", retry=2000) == (
        b'event: event\nid: 7\nretry: 2000\ndata: {"a":1}\n\n'
    )


def test_multi_line_data_arrives_with_lf() -> None:
    parser = _parse(encode("one\ntwo\r\nthree\rfour"))
    assert [m.data for m in parser.messages] == ["one\ntwo\nthree\nfour"]


def test_empty_data_and_leading_space_survive() -> None:
    parser = _parse(encode(""), encode(" indented"), encode("\n"))
    # An empty data line still dispatches (data buffer is "\n" before the trim).
    assert [m.data for m in parser.messages] == ["", " indented", "\n"]


def test_comment_is_ignored_by_clients() -> None:
    parser = _parse(comment("keep-alive"), encode("x"))
    assert parser.comments == ["keep-alive"]
    assert [m.data for m in parser.messages] == ["x"]
    assert comment() == b": \n\n"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"event": "a\nb"}, "line break"),
        ({"event": "a\rb"}, "line break"),
        ({"id": "1\n2"}, "line break"),
        ({"id": "1\x002"}, "NUL"),
        ({"retry": -1}, "non-negative"),
    ],
)
def test_field_injection_is_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode("x", **kwargs)  # type: ignore[arg-type]


def test_wrong_types_are_refused() -> None:
    with pytest.raises(TypeError, match="str"):
        encode(b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="int"):
        encode("x", retry=True)
    with pytest.raises(TypeError, match="int"):
        encode("x", retry=1.5)  # type: ignore[arg-type]


def test_lone_surrogates_are_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        encode("a\ud800b")
    with pytest.raises(ValueError, match="Unicode"):
        comment("\udfff")
    with pytest.raises(ValueError, match="line break"):
        comment("a\nb")


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, None), ("", None), ("  \t", None), (" 12-0 ", "12-0"), ("a" * 256, "a" * 256)],
)
def test_parse_last_event_id(header: str | None, expected: str | None) -> None:
    assert parse_last_event_id(header) == expected


@pytest.mark.parametrize("header", ["a" * (MAX_LAST_EVENT_ID + 1), "1\x002", "1\x7f", "1\x1b"])
def test_parse_last_event_id_refuses(header: str) -> None:
    with pytest.raises(ValueError, match="Last-Event-ID"):
        parse_last_event_id(header)


_TEXT = st.text(
    st.characters(codec="utf-8") | st.sampled_from(["\r", "\n", "\ufeff", " ", ":"]),
    max_size=60,
)
_ONE_LINE = st.text(st.characters(codec="utf-8", exclude_characters="\r\n\0"), max_size=20)


def _normalized(data: str) -> str:
    return re.sub(r"\r\n|\r", "\n", data)


@settings(max_examples=300)
@given(
    messages=st.lists(
        st.tuples(_TEXT, st.none() | _ONE_LINE, st.none() | _ONE_LINE), min_size=1, max_size=5
    ),
    cut=st.integers(min_value=0, max_value=400),
)
def test_any_data_round_trips(messages: list[tuple[str, str | None, str | None]], cut: int) -> None:
    stream = b"".join(encode(data, event=event, id=eid) for data, event, eid in messages)
    # Split the stream anywhere (even inside a UTF-8 sequence or between CR and LF).
    parser = _parse(stream[:cut], stream[cut:])
    assert len(parser.messages) == len(messages)
    last_id = ""
    for message, (data, event, eid) in zip(parser.messages, messages, strict=True):
        assert message.data == _normalized(data)
        # A client treats an empty event name as "message", the default.
        assert message.type == (event or "message")
        if eid is not None:
            last_id = eid
        assert message.last_event_id == last_id


@settings(max_examples=100)
@given(st.text(st.characters(exclude_categories=()), max_size=30))
def test_text_and_bytes_agree_or_refuse(data: str) -> None:
    try:
        encoded = encode(data)
    except ValueError:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in data)
    else:
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in data)
        assert encoded == encode_text(data).encode()
