"""FCMMessage: validation naming the field, payload shape and limits, a bounded fuzz."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import InvalidNotification, LimitExceeded
from eventpatterns.push import FCMMessage
from eventpatterns.push._fcm_errors import retry_at


def test_a_full_message_encodes_as_fcms_message_resource() -> None:
    message = FCMMessage(
        token="t0k3n",
        title="Order shipped",
        body="Arrives Tuesday",
        image="https://example.com/box.png",
        data={"order": "42"},
        android={"priority": "high", "ttl": "3600.5s", "collapse_key": "orders"},
        apns={"headers": {"apns-priority": "10"}, "payload": {"aps": {"badge": 1}}},
        webpush={"headers": {"Urgency": "high"}, "data": {"k": "v"}},
        analytics_label="shipping",
    )
    assert json.loads(message.encode()) == {
        "message": {
            "token": "t0k3n",
            "notification": {
                "title": "Order shipped",
                "body": "Arrives Tuesday",
                "image": "https://example.com/box.png",
            },
            "data": {"order": "42"},
            "android": {"priority": "high", "ttl": "3600.5s", "collapse_key": "orders"},
            "apns": {"headers": {"apns-priority": "10"}, "payload": {"aps": {"badge": 1}}},
            "webpush": {"headers": {"Urgency": "high"}, "data": {"k": "v"}},
            "fcm_options": {"analytics_label": "shipping"},
        }
    }
    assert message.target == ("token", "t0k3n")


def test_validate_only_and_topics() -> None:
    message = FCMMessage(topic="/topics/news", data={"a": "b"})
    assert message.topic == "news"
    assert message.target == ("topic", "news")
    assert message.limit == 2048
    assert FCMMessage(condition="'a' in topics").limit == 2048
    assert FCMMessage(token="t").limit == 4096
    assert json.loads(FCMMessage(condition="'a' in topics").encode()) == {
        "message": {"condition": "'a' in topics"}
    }


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({}, "token", "exactly one of token, topic, condition; got ['none']"),
        ({"token": "a", "topic": "b"}, "token", "got ['token', 'topic']"),
        ({"token": "  "}, "token", "non-empty string"),
        ({"condition": 3}, "condition", "non-empty string"),
        ({"topic": "no spaces"}, "topic", "not a topic name"),
        ({"token": "t", "data": {"price": 9.5}}, "data.price", "must be strings, got float"),
        ({"token": "t", "data": {"": "x"}}, "data", "non-empty strings"),
        ({"token": "t", "data": {"from": "x"}}, "data.from", "a key FCM reserves"),
        ({"token": "t", "data": {"google.sent": "x"}}, "data.google.sent", "a key FCM reserves"),
        ({"token": "t", "android": {"data": {"GCM_x": "1"}}}, "android.data.GCM_x", "reserves"),
        ({"token": "t", "data": ["x"]}, "data", "mapping of strings"),
        ({"token": "t", "title": 5}, "title", "must be a string"),
        ({"token": "t", "android": {"prority": "high"}}, "android.prority", "unknown field"),
        ({"token": "t", "android": {"priority": "urgent"}}, "android.priority", "'normal' or"),
        ({"token": "t", "android": {"ttl": 3600}}, "android.ttl", "duration such as"),
        ({"token": "t", "android": {"data": {"n": 1}}}, "android.data.n", "must be strings"),
        ({"token": "t", "android": []}, "android", "must be a mapping"),
        ({"token": "t", "apns": {"payload": []}}, "apns.payload", "JSON object"),
        ({"token": "t", "apns": {"headers": {"a": 1}}}, "apns.headers.a", "must be strings"),
        ({"token": "t", "webpush": {"notification": {"x": {1, 2}}}}, "webpush", "JSON-serial"),
    ],
)
def test_bad_messages_name_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidNotification) as caught:
        FCMMessage(**kwargs)
    assert caught.value.field == field
    assert caught.value.provider == "fcm"
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)


def _padded(size: int, **target: Any) -> FCMMessage:
    """A message whose payload is exactly ``size`` bytes."""
    empty = FCMMessage(data={"k": ""}, **target).size()
    return FCMMessage(data={"k": "x" * (size - empty)}, **target)


def test_payload_limits_are_checked_to_the_byte() -> None:
    assert _padded(4096, token="t").size() == 4096
    assert _padded(4096, token="t").encode()
    with pytest.raises(LimitExceeded, match="4097 bytes; FCM accepts at most 4096") as caught:
        _padded(4097, token="t").encode()
    assert (caught.value.limit, caught.value.value) == ("fcm_payload_bytes", 4096)
    assert _padded(2048, topic="news").encode()
    with pytest.raises(LimitExceeded, match="topic message payload is 2049 bytes"):
        _padded(2049, topic="news").encode()


def test_the_size_counts_utf8_bytes() -> None:
    message = FCMMessage(token="t", body="é" * 10)
    assert message.size() == len(('{"notification":{"body":"' + "é" * 10 + '"}}').encode())
    assert message.size() == 25 + 20 + 3


_json_leaf = st.none() | st.booleans() | st.integers() | st.text(max_size=8) | st.floats()
_values = (
    _json_leaf
    | st.lists(_json_leaf, max_size=3)
    | st.dictionaries(st.text(max_size=5), _json_leaf, max_size=3)
)
_blocks = st.none() | st.dictionaries(
    st.sampled_from(
        ["priority", "ttl", "data", "headers", "payload", "notification", "bogus", "collapse_key"]
    ),
    _values
    | st.sampled_from(["high", "normal", "10s"])
    | st.dictionaries(st.text(max_size=4), st.text(max_size=4)),
    max_size=3,
)


@settings(max_examples=300)
@given(
    token=st.none() | st.text(max_size=10),
    topic=st.none() | st.text(max_size=10),
    condition=st.none() | st.text(max_size=10),
    title=st.none() | st.text(max_size=20) | st.integers(),
    data=st.dictionaries(st.text(max_size=5), st.text(max_size=400) | _json_leaf, max_size=12),
    android=_blocks,
    apns=_blocks,
    webpush=_blocks,
)
def test_fuzzed_builders_validate_or_refuse_clearly(
    token: Any,
    topic: Any,
    condition: Any,
    title: Any,
    data: Any,
    android: Any,
    apns: Any,
    webpush: Any,
) -> None:
    try:
        message = FCMMessage(
            token=token,
            topic=topic,
            condition=condition,
            title=title,
            data=data,
            android=android,
            apns=apns,
            webpush=webpush,
        )
    except InvalidNotification as exc:
        refused: InvalidNotification | None = exc
    else:
        refused = None
    if refused is not None:
        assert refused.field
        assert refused.reason
        return
    assert all(isinstance(value, str) for value in message.data.values())
    try:
        body = json.loads(message.encode())["message"]
    except LimitExceeded:
        assert message.size() > message.limit
        return
    assert message.size() <= message.limit
    name, value = message.target
    assert body[name] == value
    assert sum(key in body for key in ("token", "topic", "condition")) == 1


@settings(max_examples=300)
@given(st.text(max_size=40) | st.integers(min_value=0, max_value=10**12).map(str))
def test_fuzzed_retry_after_never_raises_and_never_goes_back(value: str) -> None:
    at = retry_at(value, 1_000.0)
    assert at is None or at >= 1_000.0


def test_retry_after_forms() -> None:
    assert retry_at(None, 10.0) is None
    assert retry_at(" 120 ", 10.0) == 130.0
    assert retry_at("Wed, 21 Oct 2015 07:28:00 GMT", 0.0) == 1445412480.0
    assert retry_at("Wed, 21 Oct 2015 07:28:00", 0.0) == 1445412480.0  # no zone: GMT
    assert retry_at("Wed, 21 Oct 2015 07:28:00 GMT", 2e9) == 2e9  # a past date: now
    assert retry_at("soon", 10.0) is None
