"""Client frame parsing and server frame encoding (sans I/O, synchronous)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ProtocolViolation
from eventpatterns.realtime import ErrorCode, parse_client_frame
from eventpatterns.realtime._frames import (
    Authenticate,
    Ping,
    Subscribe,
    Unsubscribe,
    encode_event,
    encode_frame,
)

CODES = {code.value for code in ErrorCode}


def test_valid_frames_parse() -> None:
    assert parse_client_frame('{"type":"authenticate","token":"t"}') == Authenticate("t")
    assert parse_client_frame(
        '{"type":"subscribe","id":"s-1.a:b_c","pattern":{"type":["x"]},"since":"e:1","zz":1}'
    ) == Subscribe("s-1.a:b_c", {"type": ["x"]}, None, "e:1")
    assert parse_client_frame(b'{"type":"subscribe","id":"s","filter":{"filterGroup":[]}}') == (
        Subscribe("s", None, {"filterGroup": []}, None)
    )
    assert parse_client_frame('{"type":"unsubscribe","id":"s"}') == Unsubscribe("s")
    assert parse_client_frame('{"type":"ping"}') == Ping()
    assert parse_client_frame('{"type":"ping","payload":null}') == Ping(None, True)


@pytest.mark.parametrize(
    ("text", "code", "says"),
    [
        ("{", ErrorCode.INVALID_JSON, "not valid JSON"),
        ('{"type":"ping","x":NaN}', ErrorCode.INVALID_JSON, "NaN"),
        ("[1]", ErrorCode.INVALID_FRAME, "JSON object"),
        ('{"id":"s"}', ErrorCode.INVALID_FRAME, "'type'"),
        ('{"type":"hello"}', ErrorCode.UNKNOWN_TYPE, "'hello'"),
        ('{"type":"subscribe"}', ErrorCode.INVALID_FRAME, "'id'"),
        ('{"type":"subscribe","id":"a b"}', ErrorCode.INVALID_FRAME, "'id'"),
        ('{"type":"subscribe","id":"' + "x" * 129 + '"}', ErrorCode.INVALID_FRAME, "1-128"),
        ('{"type":"subscribe","id":"s","pattern":[1]}', ErrorCode.INVALID_FRAME, "'pattern'"),
        ('{"type":"subscribe","id":"s","filter":"x"}', ErrorCode.INVALID_FRAME, "'filter'"),
        (
            '{"type":"subscribe","id":"s","pattern":{},"filter":{}}',
            ErrorCode.INVALID_FRAME,
            "not both",
        ),
        ('{"type":"subscribe","id":"s","since":5}', ErrorCode.INVALID_POSITION, "'since'"),
        ('{"type":"subscribe","id":"s","since":""}', ErrorCode.INVALID_POSITION, "'since'"),
        ('{"type":"unsubscribe","id":7}', ErrorCode.INVALID_FRAME, "'id'"),
        ('{"type":"authenticate"}', ErrorCode.INVALID_FRAME, "'token'"),
        ('{"type":"authenticate","token":""}', ErrorCode.INVALID_FRAME, "'token'"),
        ("[" * 40 + "]" * 40, ErrorCode.INVALID_FRAME, "deeper"),
        (
            '{"type":"ping","payload":' + "[" * 100_000 + "]" * 100_000 + "}",
            ErrorCode.FRAME_TOO_LARGE,
            "limit",
        ),
        ('{"type":"ping","n":' + "9" * 5000 + "}", ErrorCode.INVALID_JSON, "JSON"),
    ],
)
def test_bad_frames_get_a_code_and_a_message_naming_the_problem(
    text: str, code: ErrorCode, says: str
) -> None:
    with pytest.raises(ProtocolViolation) as info:
        parse_client_frame(text)
    assert info.value.code == code.value
    assert says in str(info.value)


def test_size_is_checked_in_bytes_before_parsing() -> None:
    text = '{"type":"ping","payload":"' + "\u00e9" * 40 + '"}'  # 2 bytes each in UTF-8
    parse_client_frame(text, max_bytes=200)
    with pytest.raises(ProtocolViolation) as info:
        parse_client_frame(text, max_bytes=len(text) + 10)
    assert info.value.code == "frame_too_large"


def test_encoders() -> None:
    raw = '{"specversion":"1.0","id":"1","source":"/s","type":"t","data":"\u00e9"}'
    frame = json.loads(encode_event("ws", "s1", "e:1", raw))
    assert frame == {"type": "event", "id": "s1", "position": "e:1", "event": json.loads(raw)}
    assert encode_event("sse", "s1", "e:1", raw) == f"id: e:1\nevent: event\ndata: {raw}\n\n"
    assert (
        encode_frame({"type": "pong", "payload": "\ud800"}) == '{"type":"pong","payload":"\\ud800"}'
    )
    sse = encode_frame({"type": "subscribed", "id": "s", "position": "e:2"}, "sse")
    assert (
        sse
        == 'id: e:2\nevent: subscribed\ndata: {"type":"subscribed","id":"s","position":"e:2"}\n\n'
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)
frame_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["authenticate", "subscribe", "unsubscribe", "ping", "x", 1])},
    optional={
        "id": st.one_of(st.text(max_size=10), json_values),
        "token": json_values,
        "pattern": json_values,
        "filter": json_values,
        "since": json_values,
        "payload": json_values,
        "presence": st.one_of(st.sampled_from(["room:1", "a/b@c"]), json_values),
        "watch": json_values,
    },
)


@settings(max_examples=400)
@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=200),
        json_values.map(json.dumps),
        frame_like.map(json.dumps),
    )
)
def test_fuzz_parse_raises_only_protocol_violations_with_known_codes(text: str | bytes) -> None:
    outcome: object
    try:
        outcome = parse_client_frame(text, max_bytes=150)
    except ProtocolViolation as exc:
        outcome = exc
    if isinstance(outcome, ProtocolViolation):
        assert outcome.code in CODES
        assert str(outcome)
    else:
        assert isinstance(outcome, Authenticate | Subscribe | Unsubscribe | Ping)
        if isinstance(outcome, Subscribe):
            assert isinstance(outcome.watch, bool)
            assert not outcome.watch or outcome.presence is not None
