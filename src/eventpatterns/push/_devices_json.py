"""Devices as JSON: the body a browser or an app posts, and the record the API answers.

:func:`registration_from_json` reads the three platforms' shapes, the browser's
``PushSubscription.toJSON()`` included (posted as it is, or under ``"subscription"``
beside the other fields); anything it does not know is refused, so that a typo
(``"timezone"``) is an error and not a silently missing setting.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidDevice
from ._devices import Device, Platform, Registration

__all__ = ["device_to_json", "registration_from_json", "registration_key_json", "topics_json"]

_COMMON = ("platform", "locale", "time_zone", "topics")
_FIELDS = {
    Platform.WEBPUSH: (*_COMMON, "endpoint", "keys", "expirationTime", "subscription"),
    Platform.FCM: (*_COMMON, "token"),
    Platform.APNS: (*_COMMON, "token", "apns_topic", "apns_environment"),
}
_SUBSCRIPTION = ("endpoint", "keys", "expirationTime")


def _object(field: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidDevice(f"is a JSON object, not {type(value).__name__}", field=field)
    return value


def _platform(body: Mapping[str, Any]) -> Platform:
    name = body.get("platform")
    if name is None:
        if "endpoint" in body or "subscription" in body:
            return Platform.WEBPUSH  # a PushSubscription posted as it is
        raise InvalidDevice("is missing: 'webpush', 'fcm' or 'apns'", field="platform")
    if isinstance(name, str):
        for platform in Platform:
            if platform.value == name:
                return platform
    raise InvalidDevice(f"is 'webpush', 'fcm' or 'apns', got {str(name)[:40]!r}", field="platform")


def _expiration(value: object) -> float | None:
    """``PushSubscription.expirationTime``: ``null`` or milliseconds since the epoch."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise InvalidDevice(
            f"is null or milliseconds since the epoch, got {str(value)[:40]!r}",
            field="expirationTime",
        )
    return value / 1000.0


def _webpush(body: Mapping[str, Any], common: dict[str, Any]) -> Registration:
    subscription: Mapping[str, Any] = body
    if "subscription" in body:
        subscription = _object("subscription", body["subscription"])
        for name in _SUBSCRIPTION:
            if name in body:
                raise InvalidDevice(
                    "give it inside 'subscription' or beside it, not both", field=name
                )
        for name in subscription:
            if name not in _SUBSCRIPTION:
                raise InvalidDevice(
                    "unknown field of a PushSubscription (endpoint, keys, expirationTime)",
                    field=f"subscription.{str(name)[:40]}",
                )
    if "endpoint" not in subscription:
        raise InvalidDevice("is missing (the PushSubscription's endpoint)", field="endpoint")
    keys = _object("keys", subscription.get("keys"))
    for name in keys:
        if name not in ("p256dh", "auth"):
            raise InvalidDevice("unknown key (p256dh, auth)", field=f"keys.{str(name)[:40]}")
    return Registration(
        Platform.WEBPUSH,
        subscription["endpoint"],
        p256dh=keys.get("p256dh"),
        auth=keys.get("auth"),
        expires_at=_expiration(subscription.get("expirationTime")),
        **common,
    )


def registration_from_json(value: object) -> Registration:
    """Return the :class:`Registration` a parsed JSON body describes.

    The shapes::

        {"platform": "fcm", "token": "..."}
        {"platform": "apns", "token": "<hex>", "apns_topic": "com.example.app",
         "apns_environment": "sandbox"}
        {"endpoint": "https://...", "expirationTime": null,
         "keys": {"p256dh": "...", "auth": "..."}}          # PushSubscription.toJSON()
        {"platform": "webpush", "subscription": {<the same>}}

    each with the optional ``"locale"``, ``"time_zone"`` and ``"topics"`` (a list).

    Raises:
        InvalidDevice: Not an object, an unknown or missing field, or a malformed value.
        ArgumentTypeError: A field of the wrong JSON type.
    """
    body = _object("registration", value)
    platform = _platform(body)
    allowed = _FIELDS[platform]
    for name in body:
        if name not in allowed:
            raise InvalidDevice(
                f"unknown field for a {platform.value} device (expected {', '.join(allowed)})",
                field=str(name)[:40],
            )
    topics = body.get("topics", ())
    if not isinstance(topics, list | tuple):
        raise InvalidDevice(f"is a list, not {type(topics).__name__}", field="topics")
    common: dict[str, Any] = {
        "locale": body.get("locale"),
        "time_zone": body.get("time_zone"),
        "topics": topics,
    }
    if platform is Platform.WEBPUSH:
        return _webpush(body, common)
    if "token" not in body:
        raise InvalidDevice("is missing", field="token")
    if platform is Platform.FCM:
        return Registration(platform, body["token"], **common)
    return Registration(
        platform,
        body["token"],
        apns_topic=body.get("apns_topic"),
        apns_environment=body.get("apns_environment"),
        **common,
    )


def device_to_json(device: Device, *, keys: bool = False) -> dict[str, Any]:
    """Return ``device`` as a JSON object (without the Web Push keys unless ``keys``).

    Fields of other platforms are left out; ``topics`` is a sorted list.
    """
    out: dict[str, Any] = {
        "id": device.id,
        "user": device.user,
        "platform": device.platform.value,
        "token": device.token,
        "locale": device.locale,
        "time_zone": device.time_zone,
        "topics": sorted(device.topics),
        "created_at": device.created_at,
        "last_seen": device.last_seen,
        "registered_at": device.registered_at,
    }
    if device.platform is Platform.WEBPUSH:
        out["expires_at"] = device.expires_at
        if keys:
            out["keys"] = {"p256dh": device.p256dh, "auth": device.auth}
    elif device.platform is Platform.APNS:
        out["apns_topic"] = device.apns_topic
        out["apns_environment"] = device.apns_environment
    return out


def registration_key_json(r: Registration) -> str:
    """Return the fields a store compares to tell a re-registration from a change (JSON)."""
    fields = [
        r.platform.value, r.token, r.p256dh, r.auth, r.apns_topic, r.apns_environment,
        r.locale, r.time_zone, r.expires_at,
    ]  # fmt: skip
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


def topics_json(topics: frozenset[str]) -> str:
    """Return consented topics as a sorted JSON list (what stores keep)."""
    return json.dumps(sorted(topics), separators=(",", ":"))
