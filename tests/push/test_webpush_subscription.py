"""WebPushSubscription: the browser's PushSubscription.toJSON() shape, validated by field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import InvalidDevice
from eventpatterns.push import WebPushSubscription
from eventpatterns.push._vapid import b64url_encode

from .test_webpush_ece import VECTORS

P256DH = VECTORS["ua_public"]
AUTH = VECTORS["auth_secret"]
ENDPOINT = "https://fcm.googleapis.com/fcm/send/dQw4w9WgXcQ:APA91b"


def browser_json(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "endpoint": ENDPOINT,
        "expirationTime": None,
        "keys": {"p256dh": P256DH, "auth": AUTH},
    }
    value.update(changes)
    return value


def test_from_json_reads_what_the_browser_sends() -> None:
    for value in (browser_json(), json.dumps(browser_json()), json.dumps(browser_json()).encode()):
        sub = WebPushSubscription.from_json(value)
        assert sub.endpoint == ENDPOINT
        assert b64url_encode(sub.p256dh) == P256DH
        assert b64url_encode(sub.auth) == AUTH
        assert sub.origin == "https://fcm.googleapis.com"
    assert WebPushSubscription.from_json(sub.to_json()) == sub
    assert sub.to_json() == browser_json()


def test_padded_base64url_keys_are_accepted() -> None:
    keys = {"p256dh": P256DH + "=", "auth": AUTH + "=="}
    assert (
        WebPushSubscription.from_json(browser_json(keys=keys)).auth
        == WebPushSubscription.from_json(browser_json()).auth
    )


def test_repr_shows_the_endpoint_not_the_keys() -> None:
    sub = WebPushSubscription.from_json(browser_json())
    assert repr(sub) == f"WebPushSubscription(endpoint={ENDPOINT!r})"


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("{not json", "subscription", "not valid JSON"),
        ([1, 2], "subscription", "JSON object"),
        ({"keys": {}}, "endpoint", "is missing"),
        (browser_json(endpoint=None), "endpoint", "non-empty URL"),
        (browser_json(endpoint="http://push.example.com/x"), "endpoint", "https: URL"),
        (browser_json(endpoint="ftp://push.example.com/x"), "endpoint", "https: URL"),
        (browser_json(endpoint="https:///x"), "endpoint", "no host"),
        (browser_json(endpoint="https://h:99999/x"), "endpoint", "not a valid URL"),
        (browser_json(endpoint="https://h/" + "x" * 3000), "endpoint", "at most 2048"),
        (browser_json(endpoint="https://h/a b"), "endpoint", "printable"),
        (browser_json(keys=None), "keys", "p256dh and auth"),
        (browser_json(keys={"auth": AUTH}), "keys.p256dh", "is missing"),
        (browser_json(keys={"p256dh": P256DH}), "keys.auth", "is missing"),
        (browser_json(keys={"p256dh": 5, "auth": AUTH}), "keys.p256dh", "base64url string"),
        (browser_json(keys={"p256dh": P256DH, "auth": "a+b/"}), "keys.auth", "not base64url"),
        (browser_json(keys={"p256dh": P256DH, "auth": "abcd"}), "keys.auth", "16 octets, not 3"),
        (browser_json(keys={"p256dh": AUTH, "auth": AUTH}), "keys.p256dh", "65 octets, not 16"),
        (
            browser_json(keys={"p256dh": b64url_encode(b"\x04" + b"\x01" * 64), "auth": AUTH}),
            "keys.p256dh",
            "point on the curve",
        ),
    ],
)
def test_bad_subscriptions_name_the_field(value: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidDevice, match=message) as info:
        WebPushSubscription.from_json(value)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)


def test_http_is_allowed_only_on_loopback() -> None:
    for host in ("127.0.0.1:8000", "localhost", "[::1]:9"):
        WebPushSubscription.from_json(browser_json(endpoint=f"http://{host}/push/1"))
    with pytest.raises(InvalidDevice, match="loopback"):
        WebPushSubscription.from_json(browser_json(endpoint="http://10.0.0.1/push/1"))


def test_the_constructor_checks_raw_keys_too() -> None:
    sub = WebPushSubscription.from_json(browser_json())
    with pytest.raises(InvalidDevice, match="65 octets") as info:
        WebPushSubscription(ENDPOINT, b"short", sub.auth)
    assert info.value.field == "keys.p256dh"
    with pytest.raises(InvalidDevice, match="16 octets") as info:
        WebPushSubscription(ENDPOINT, sub.p256dh, b"short")
    assert info.value.field == "keys.auth"


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300)
@given(
    endpoint=st.one_of(st.just(ENDPOINT), st.text(max_size=60), _JSONISH),
    p256dh=st.one_of(
        st.just(P256DH), st.text(max_size=100), st.binary(max_size=70).map(b64url_encode), _JSONISH
    ),
    auth=st.one_of(st.just(AUTH), st.text(max_size=30), st.binary(max_size=20).map(b64url_encode)),
)
def test_fuzz_from_json_raises_only_invalid_subscription(
    endpoint: Any, p256dh: Any, auth: Any
) -> None:
    value = {"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}}
    try:
        sub = WebPushSubscription.from_json(json.dumps(value))
    except InvalidDevice as exc:
        reason = exc.reason
        assert reason, "an error without a reason"
        return
    assert sub.endpoint == endpoint
    assert WebPushSubscription.from_json(sub.to_json()) == sub


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_fuzz_from_json_text(text: str) -> None:
    try:
        WebPushSubscription.from_json(text)
    except InvalidDevice:
        return
    raise AssertionError("random text parsed as a subscription")  # pragma: no cover


def test_from_device_bridges_the_registry() -> None:
    from eventpatterns.push import Device, Registration

    registration = Registration("webpush", ENDPOINT, p256dh=P256DH, auth=AUTH)
    device = Device.of("alice", registration, created_at=1.0, registered_at=1.0, last_seen=1.0)
    assert WebPushSubscription.from_device(device) == WebPushSubscription.from_json(browser_json())
    phone = Registration("fcm", "f" * 40)
    other = Device.of("alice", phone, created_at=1.0, registered_at=1.0, last_seen=1.0)
    with pytest.raises(InvalidDevice, match="fcm device has no Web Push") as info:
        WebPushSubscription.from_device(other)
    assert info.value.field == "platform"
