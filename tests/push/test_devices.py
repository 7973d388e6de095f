"""Registration checks every field of the three platforms, hostile input included."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from eventpatterns.errors import ArgumentTypeError, EventPatternsError, InvalidDevice
from eventpatterns.push import MAX_TOPICS, Device, Platform, Registration, device_id
from eventpatterns.testing._device_registry_suite import AUTH, P256DH, apns, fcm, webpush


def refused(field: str, **kw: Any) -> InvalidDevice:
    platform = kw.pop("platform", "webpush")
    token = kw.pop("token", "https://push.example.net/x")
    if platform == "webpush":
        kw.setdefault("p256dh", P256DH)
        kw.setdefault("auth", AUTH)
    with pytest.raises(InvalidDevice) as info:
        Registration(platform, token, **kw)
    assert info.value.field == field
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, EventPatternsError)
    return info.value


def test_the_platform_may_be_given_by_name() -> None:
    assert fcm().platform is Platform.FCM
    assert Registration("fcm", "t").platform is Platform.FCM
    assert "webpush" in str(refused("platform", platform="gcm", token="t"))
    with pytest.raises(ArgumentTypeError, match="platform"):
        Registration(3, "t")  # type: ignore[arg-type]


def test_the_id_is_derived_from_platform_and_token() -> None:
    assert fcm("t").id == device_id("fcm", "t") == device_id(Platform.FCM, "t")
    assert device_id("fcm", "t") != device_id("apns", "t")
    assert len(fcm().id) == 32
    assert int(fcm().id, 16) >= 0


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://fcm.googleapis.com/fcm/send/abc:def",
        "https://updates.push.services.mozilla.com/wpush/v2/gAAAA",
        "https://push.example.net:8443/x?y=1",
        "http://127.0.0.1:9000/push/1",
        "http://[::1]:9000/push/1",
        "http://localhost/push",
    ],
)
def test_webpush_endpoints_accepted(endpoint: str) -> None:
    assert webpush(endpoint).token == endpoint


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("http://push.example.net/x", "https"),
        ("http://10.0.0.1/x", "https"),
        ("ftp://push.example.net/x", "https"),
        ("javascript:alert(1)", "host"),
        ("https:///path", "host"),
        ("https://user:pw@push.example.net/x", "user info"),
        ("https://push.example.net/x#frag", "fragment"),
        ("https://push.example.net:99999/x", "not a URL"),
        ("https://push.example.net/a b", "spaces"),
        ("https://pùsh.example.net/x", "ASCII"),
        ("https://push.example.net/\n", "printable"),
        ("https://push.example.net/" + "x" * 3000, "2048"),
        ("", "1-2048"),
    ],
)
def test_webpush_endpoints_refused(endpoint: str, message: str) -> None:
    assert message in str(refused("token", token=endpoint))


def test_webpush_keys_are_checked_and_normalised() -> None:
    assert "needs its keys" in str(refused("p256dh", p256dh=None))
    assert "needs its keys" in str(refused("auth", auth=None))
    raw = base64.urlsafe_b64decode(P256DH + "=")
    padded = base64.b64encode(raw).decode()  # standard alphabet, padded
    assert webpush(p256dh=padded).p256dh == P256DH
    assert "not base64url" in str(refused("p256dh", p256dh="!!"))
    assert "not base64url" in str(refused("auth", auth="a" * 500))
    assert "not base64url" in str(refused("auth", auth="abcde"))  # an impossible length
    assert "16" in str(refused("auth", auth=P256DH))
    assert "65" in str(refused("p256dh", p256dh=AUTH))
    off_curve = base64.urlsafe_b64encode(b"\x04" + b"\x01" * 64).decode()
    assert "P-256" in str(refused("p256dh", p256dh=off_curve))
    compressed = base64.urlsafe_b64encode(b"\x02" + raw[1:33] + b"\x00" * 32).decode()
    assert "P-256" in str(refused("p256dh", p256dh=compressed))
    with pytest.raises(ArgumentTypeError, match="auth"):
        webpush(auth=16)


def test_fcm_tokens() -> None:
    token = "dQw4w9WgXcQ:APA91bH" + "x" * 140
    assert fcm(token).token == token
    for bad in ("", "has space", "tab\there", "é", "x" * 4097):
        refused("token", platform="fcm", token=bad)
    with pytest.raises(ArgumentTypeError, match="token"):
        fcm(b"bytes")  # type: ignore[arg-type]


def test_apns_tokens_are_hex_kept_in_lower_case() -> None:
    device = apns("AB" * 32)
    assert device.token == "ab" * 32
    assert device.apns_environment == "production"
    assert apns("ab" * 100).token == "ab" * 100
    for bad in ("ab" * 31, "ab" * 101, "a" * 65, "zz" * 32, "<" + "ab" * 32 + ">", ""):
        assert "hex" in str(refused("token", platform="apns", token=bad))
    assert apns(apns_topic="com.example.app.voip").apns_topic == "com.example.app.voip"
    refused("apns_topic", platform="apns", token="ab" * 32, apns_topic="com example")
    refused("apns_environment", platform="apns", token="ab" * 32, apns_environment="dev")


def test_fields_of_another_platform_are_refused() -> None:
    assert "webpush devices only" in str(refused("p256dh", platform="fcm", token="t", p256dh="x"))
    refused("expires_at", platform="apns", token="ab" * 32, expires_at=1.0)
    refused("apns_topic", apns_topic="com.example")
    refused("apns_environment", platform="fcm", token="t", apns_environment="sandbox")


def test_locale_and_time_zone() -> None:
    device = fcm(locale="fr_CA", time_zone="Europe/Paris")
    assert (device.locale, device.time_zone) == ("fr-CA", "Europe/Paris")
    assert fcm(locale="zh-Hant-TW").locale == "zh-Hant-TW"
    for bad in ("", "f", "en US", "x" * 40, "123"):
        refused("locale", platform="fcm", token="t", locale=bad)
    for zone in ("Mars/Olympus", "../../etc/passwd", "/etc/localtime", "x" * 1000, "", "Europe"):
        assert "IANA" in str(refused("time_zone", platform="fcm", token="t", time_zone=zone))
    with pytest.raises(ArgumentTypeError, match="time_zone"):
        fcm(time_zone=1)


def test_topics() -> None:
    assert fcm(topics=["a", "a", "b.c:d/e-f_g"]).topics == frozenset({"a", "b.c:d/e-f_g"})
    with pytest.raises(ArgumentTypeError, match="topics"):
        fcm(topics="news")
    with pytest.raises(ArgumentTypeError, match="topics"):
        fcm(topics=[1])
    with pytest.raises(ArgumentTypeError, match="topics"):
        fcm(topics=3)
    for bad in ([""], ["a b"], ["x" * 65], [f"t{i}" for i in range(MAX_TOPICS + 1)]):
        refused("topics", platform="fcm", token="t", topics=bad)
    assert len(fcm(topics=[f"t{i}" for i in range(MAX_TOPICS)]).topics) == MAX_TOPICS


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), True, "1"])
def test_a_bad_expiry_is_refused(value: object) -> None:
    refused("expires_at", expires_at=value)


def test_a_device_is_built_from_a_registration() -> None:
    registration = webpush(topics={"a"}, expires_at=5)
    device = Device.of("u", registration, created_at=1.0, registered_at=2.0, last_seen=3.0)
    assert (device.id, device.user, device.token) == (registration.id, "u", registration.token)
    assert (device.created_at, device.registered_at, device.last_seen) == (1.0, 2.0, 3.0)
    assert (device.p256dh, device.auth, device.expires_at) == (P256DH, AUTH, 5.0)
    assert device.zone is None


def test_the_auth_secret_stays_out_of_reprs() -> None:
    registration = webpush()
    device = Device.of("u", registration, created_at=1.0, registered_at=1.0, last_seen=1.0)
    for value in (registration, device):
        assert AUTH not in repr(value)
        assert "p256dh" in repr(value)
