"""APNsMessage: headers, payload, validation naming the field, limits, a bounded fuzz."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import InvalidNotification, LimitExceeded
from eventpatterns.push import APNsMessage

TOKEN = "a1" * 32


def test_an_alert_encodes_aps_and_headers() -> None:
    message = APNsMessage(
        token=TOKEN,
        topic="com.example.app",
        alert={"title": "Order shipped", "body": "Arrives Tuesday"},
        badge=3,
        sound="default",
        thread_id="orders",
        category="ORDER",
        mutable_content=True,
        data={"order": 42},
        expiration=1_700_000_000,
        collapse_id="order-42",
        apns_id="123e4567-e89b-12d3-a456-426614174000",
    )
    assert json.loads(message.encode()) == {
        "aps": {
            "alert": {"title": "Order shipped", "body": "Arrives Tuesday"},
            "badge": 3,
            "sound": "default",
            "thread-id": "orders",
            "category": "ORDER",
            "mutable-content": 1,
        },
        "order": 42,
    }
    assert message.headers() == {
        "apns-topic": "com.example.app",
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-expiration": "1700000000",
        "apns-collapse-id": "order-42",
        "apns-id": "123e4567-e89b-12d3-a456-426614174000",
    }


def test_a_background_push_defaults_to_priority_5() -> None:
    message = APNsMessage(
        token=TOKEN, topic="com.example.app", push_type="background", content_available=True
    )
    assert message.priority == 5
    assert message.headers()["apns-priority"] == "5"
    assert json.loads(message.encode()) == {"aps": {"content-available": 1}}
    voip = APNsMessage(token=TOKEN, topic="com.example.app.voip", push_type="voip", alert="x")
    assert (voip.priority, voip.limit) == (10, 5120)


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"token": "xyz"}, "token", "device token in hex"),
        ({"token": "abc"}, "token", "device token in hex"),
        ({"token": 5}, "token", "must be str"),
        ({"topic": " "}, "topic", "bundle id"),
        ({"topic": "com.x\r\nx: y"}, "topic", "control characters"),
        ({"push_type": "loud"}, "push_type", "must be one of"),
        ({"push_type": "voip"}, "topic", "ending '.voip'"),
        ({"push_type": "liveactivity"}, "topic", "'.push-type.liveactivity'"),
        ({"alert": None}, "alert", "needs an alert, a badge or a sound"),
        ({"alert": 3}, "alert", "must be str or Mapping"),
        ({"push_type": "background", "alert": None}, "content_available", "must set"),
        (
            {"push_type": "background", "content_available": True},
            "push_type",
            "no alert, badge or sound",
        ),
        (
            {"push_type": "background", "content_available": True, "alert": None, "priority": 10},
            "priority",
            "takes apns-priority (5,), got 10",
        ),
        ({"priority": 7}, "priority", "takes apns-priority (10, 5, 1), got 7"),
        ({"priority": True}, "priority", "must be an integer"),
        ({"badge": -1}, "badge", "must not be negative"),
        ({"expiration": "tomorrow"}, "expiration", "must be an integer"),
        ({"collapse_id": "x" * 65}, "collapse_id", "at most 64 bytes"),
        ({"collapse_id": "é" * 33}, "collapse_id", "at most 64 bytes"),
        ({"collapse_id": "a\nb"}, "collapse_id", "control characters"),
        ({"apns_id": "123E4567-E89B-12D3-A456-426614174000"}, "apns_id", "lower-case"),
        ({"data": {"aps": {}}}, "data.aps", "Apple's key"),
        ({"data": {"when": object()}}, "data", "JSON-serialisable"),
        ({"data": {"x": float("nan")}}, "data", "JSON-serialisable"),
        ({"alert": {"title": b"bytes"}}, "alert", "JSON-serialisable"),
        ({"content_available": 1}, "content_available", "must be bool"),
    ],
)
def test_bad_messages_name_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    base: dict[str, Any] = {"token": TOKEN, "topic": "com.example.app", "alert": "hi"}
    with pytest.raises(InvalidNotification) as caught:
        APNsMessage(**{**base, **kwargs})
    assert caught.value.field == field
    assert caught.value.provider == "apns"
    assert words in str(caught.value)


def test_a_64_byte_collapse_id_passes() -> None:
    message = APNsMessage(token=TOKEN, topic="t", alert="x", collapse_id="é" * 32)
    assert len(message.headers()["apns-collapse-id"].encode()) == 64


def _padded(size: int, **kwargs: Any) -> APNsMessage:
    base: dict[str, Any] = {"token": TOKEN, "topic": "com.example.app", "alert": "", **kwargs}
    empty = len(APNsMessage(**base).encode())
    return APNsMessage(**{**base, "alert": "x" * (size - empty)})


def test_payload_limits_are_checked_to_the_byte() -> None:
    assert len(_padded(4096).encode()) == 4096
    with pytest.raises(LimitExceeded, match="4097 bytes; APNs accepts at most 4096") as caught:
        _padded(4097).encode()
    assert (caught.value.limit, caught.value.value) == ("apns_payload_bytes", 4096)
    voip = {"push_type": "voip", "topic": "com.example.app.voip"}
    assert len(_padded(5120, **voip).encode()) == 5120
    with pytest.raises(LimitExceeded, match="at most 5120"):
        _padded(5121, **voip).encode()


_leaf = st.none() | st.booleans() | st.integers(-3, 20) | st.text(max_size=6)


@settings(max_examples=400)
@given(
    token=st.text("0123456789abcdefXYZ", max_size=70) | st.just(TOKEN),
    topic=st.sampled_from(["com.x", "com.x.voip", "com.x.push-type.liveactivity", "", "a\tb"]),
    push_type=st.sampled_from(["alert", "background", "voip", "liveactivity", "mdm", "bogus"]),
    alert=st.none()
    | st.text(max_size=5000)
    | st.dictionaries(
        st.text(max_size=4), st.text(max_size=4) | st.floats() | st.binary(max_size=2)
    ),
    badge=_leaf,
    sound=st.none() | st.text(max_size=5),
    content_available=st.booleans() | st.integers(0, 1),
    priority=st.none() | _leaf,
    expiration=st.none() | _leaf,
    collapse_id=st.none() | st.text(max_size=70),
    apns_id=st.none() | st.uuids().map(str) | st.text(max_size=8),
    data=st.dictionaries(st.text(max_size=4), _leaf | st.floats(), max_size=3),
)
def test_fuzzed_builders_validate_or_refuse_clearly(**kwargs: Any) -> None:
    try:
        message = APNsMessage(**kwargs)
    except InvalidNotification as exc:
        refused: InvalidNotification | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.field
        assert refused.reason
        return
    headers = message.headers()
    assert headers["apns-priority"] in ("10", "5", "1")
    assert len(headers.get("apns-collapse-id", "").encode()) <= 64
    try:
        body = message.encode()
    except LimitExceeded:
        assert message.limit in (4096, 5120)
        return
    assert len(body) <= message.limit
    assert isinstance(json.loads(body, parse_constant=_no_constants)["aps"], dict)


def _no_constants(name: str) -> object:
    raise AssertionError(f"{name} is not JSON")
