"""registration_from_json reads every platform's body, and refuses anything else clearly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ArgumentTypeError, InvalidDevice
from eventpatterns.push import (
    Device,
    Platform,
    Registration,
    device_to_json,
    registration_from_json,
)
from eventpatterns.testing._device_registry_suite import AUTH, P256DH, webpush

ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc:def"
SUBSCRIPTION = {
    "endpoint": ENDPOINT,
    "expirationTime": None,
    "keys": {"p256dh": P256DH, "auth": AUTH},
}


def test_a_push_subscription_posted_as_it_is() -> None:
    registration = registration_from_json(SUBSCRIPTION)
    assert registration == webpush(ENDPOINT)


def test_a_push_subscription_beside_the_other_fields() -> None:
    body = {
        "platform": "webpush",
        "subscription": {**SUBSCRIPTION, "expirationTime": 1_700_000_000_500},
        "locale": "en-GB",
        "time_zone": "Europe/London",
        "topics": ["news"],
    }
    registration = registration_from_json(body)
    assert registration == webpush(
        ENDPOINT,
        locale="en-GB",
        time_zone="Europe/London",
        topics={"news"},
        expires_at=1_700_000_000.5,
    )


def test_fcm_and_apns_bodies() -> None:
    assert registration_from_json({"platform": "fcm", "token": "t", "topics": []}) == (
        Registration(Platform.FCM, "t")
    )
    body = {
        "platform": "apns",
        "token": "AB" * 32,
        "apns_topic": "com.example.app",
        "apns_environment": "sandbox",
    }
    assert registration_from_json(body) == Registration(
        Platform.APNS, "ab" * 32, apns_topic="com.example.app", apns_environment="sandbox"
    )


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "registration", "JSON object"),
        ({}, "platform", "missing"),
        ({"platform": 3}, "platform", "'webpush', 'fcm' or 'apns'"),
        ({"platform": "gcm"}, "platform", "'webpush', 'fcm' or 'apns'"),
        ({"platform": "fcm"}, "token", "missing"),
        ({"platform": "fcm", "token": "t", "timezone": "UTC"}, "timezone", "unknown field"),
        ({"platform": "fcm", "token": "t", "endpoint": "x"}, "endpoint", "unknown field"),
        ({"platform": "fcm", "token": "t", "topics": "news"}, "topics", "a list"),
        ({"platform": "webpush", "keys": {}}, "endpoint", "missing"),
        ({"endpoint": ENDPOINT, "keys": []}, "keys", "JSON object"),
        ({"endpoint": ENDPOINT}, "keys", "JSON object"),
        ({"endpoint": ENDPOINT, "keys": {"p256dh": P256DH, "auth": AUTH, "x": 1}}, "keys.x", "key"),
        ({**SUBSCRIPTION, "expirationTime": -1}, "expirationTime", "milliseconds"),
        ({**SUBSCRIPTION, "expirationTime": "soon"}, "expirationTime", "milliseconds"),
        ({"subscription": SUBSCRIPTION, "endpoint": ENDPOINT}, "endpoint", "not both"),
        ({"subscription": [1]}, "subscription", "JSON object"),
        ({"subscription": {**SUBSCRIPTION, "extra": 1}}, "subscription.extra", "unknown"),
        ({"endpoint": "http://evil.example/x", "keys": SUBSCRIPTION["keys"]}, "token", "https"),
    ],
)
def test_bad_bodies_name_their_field(body: Any, field: str, message: str) -> None:
    with pytest.raises(InvalidDevice, match=message) as info:
        registration_from_json(body)
    assert info.value.field == field


def test_a_field_of_the_wrong_json_type() -> None:
    with pytest.raises(ArgumentTypeError, match="token"):
        registration_from_json({"platform": "fcm", "token": 42})


def test_device_json_leaves_the_keys_out_unless_asked() -> None:
    device = Device.of(
        "u", webpush(ENDPOINT, topics={"b", "a"}), created_at=1.0, registered_at=2.0, last_seen=3.0
    )
    out = device_to_json(device)
    assert "keys" not in out
    assert out["topics"] == ["a", "b"]
    assert out["expires_at"] is None
    assert out["platform"] == "webpush"
    assert out["token"] == ENDPOINT
    assert device_to_json(device, keys=True)["keys"] == {"p256dh": P256DH, "auth": AUTH}
    phone = Device.of(
        "u",
        Registration("apns", "ab" * 32),
        created_at=1.0,
        registered_at=1.0,
        last_seen=1.0,
    )
    assert device_to_json(phone)["apns_environment"] == "production"
    assert "apns_topic" not in device_to_json(Device.of(
        "u", Registration("fcm", "t"), created_at=1.0, registered_at=1.0, last_seen=1.0
    ))  # fmt: skip
    json.dumps(out)  # JSON-serialisable as it is


# -- fuzz ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["platform", "token", "endpoint", "keys", "expirationTime", "subscription",
          "apns_topic", "apns_environment", "locale", "time_zone", "topics"]  # fmt: skip
near_valid = st.fixed_dictionaries(
    {},
    optional={
        "platform": st.sampled_from(["webpush", "fcm", "apns", "x"]) | json_values,
        "token": st.sampled_from(["ab" * 32, "t:1", ""]) | json_values,
        "endpoint": st.sampled_from([ENDPOINT, "http://127.0.0.1/x", "https://"]) | json_values,
        "keys": st.just(SUBSCRIPTION["keys"]) | json_values,
        "expirationTime": st.none() | json_values,
        "subscription": st.just(SUBSCRIPTION) | json_values,
        "locale": st.sampled_from(["en", "fr_CA"]) | json_values,
        "time_zone": st.sampled_from(["UTC", "Europe/Paris", "Nowhere"]) | json_values,
        "topics": st.lists(st.sampled_from(["a", "b c", "c"]), max_size=3) | json_values,
        "apns_topic": st.sampled_from(["com.x", "bad topic"]) | json_values,
        "apns_environment": st.sampled_from(["sandbox", "production", "dev"]) | json_values,
    },
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, near_valid))
def test_fuzz_a_body_is_a_registration_or_a_clear_error(body: Any) -> None:
    try:
        registration = registration_from_json(body)
    except (InvalidDevice, ArgumentTypeError) as exc:
        assert str(exc)  # noqa: PT017 - a fuzz test: any of these, with a message
        return
    # Accepted: it is a checked registration that round-trips through the API's JSON.
    assert isinstance(registration, Registration)
    device = Device.of("u", registration, created_at=0.0, registered_at=0.0, last_seen=0.0)
    out = device_to_json(device, keys=True)
    assert out["id"] == registration.id
    assert out["token"] == registration.token
    json.dumps(out, allow_nan=False)


@settings(max_examples=200)
@given(
    st.sampled_from(list(Platform)),
    st.text(max_size=300),
    st.text(max_size=80) | st.none(),
    st.text(max_size=80) | st.none(),
)
def test_fuzz_hostile_strings_in_every_field(
    platform: Platform, token: str, locale: str | None, zone: str | None
) -> None:
    keys: dict[str, Any] = {"p256dh": P256DH, "auth": AUTH} if platform is Platform.WEBPUSH else {}
    try:
        registration = Registration(platform, token, locale=locale, time_zone=zone, **keys)
    except InvalidDevice as exc:
        assert exc.field in ("token", "locale", "time_zone")  # noqa: PT017
        return
    assert registration.token.isascii()
    assert registration.token.isprintable()
    assert registration.id == Registration(platform, registration.token, **keys).id
