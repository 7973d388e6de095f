"""An FCM HTTP v1 message, validated before it is sent (sans-I/O).

The shape is the ``Message`` resource of
https://firebase.google.com/docs/reference/fcm/rest/v1/projects.messages: exactly one
target (``token``, ``topic`` or ``condition``), a ``notification``, ``data`` whose values
are strings, and the ``android`` / ``apns`` / ``webpush`` override blocks. FCM refuses
the rest with ``INVALID_ARGUMENT`` after a round trip; this module refuses it before,
naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import InvalidNotification, LimitExceeded

__all__ = ["FCMMessage"]

#: FCM's payload limit in bytes; topic and condition messages get half.
MAX_PAYLOAD = 4096
MAX_TOPIC_PAYLOAD = 2048
# https://firebase.google.com/docs/cloud-messaging/android/topic-messaging: "[a-zA-Z0-9-_.~%]+"
_TOPIC = re.compile(r"[a-zA-Z0-9\-_.~%]+")
# google.protobuf.Duration in JSON: seconds with up to nine fractional digits, then "s".
_DURATION = re.compile(r"\d{1,11}(\.\d{1,9})?s")
# The fields of each override block (proto3 JSON takes snake_case and lowerCamelCase).
_BLOCKS: dict[str, frozenset[str]] = {
    "android": frozenset(
        {
            "collapse_key",
            "collapseKey",
            "priority",
            "ttl",
            "restricted_package_name",
            "restrictedPackageName",
            "data",
            "notification",
            "fcm_options",
            "fcmOptions",
            "direct_boot_ok",
            "directBootOk",
        }
    ),
    "apns": frozenset(
        {
            "headers",
            "payload",
            "fcm_options",
            "fcmOptions",
            "live_activity_token",
            "liveActivityToken",
        }
    ),
    "webpush": frozenset({"headers", "data", "notification", "fcm_options", "fcmOptions"}),
}
_FIELD = "fcm"


def _fail(where: str, reason: str) -> InvalidNotification:
    return InvalidNotification(reason, provider=_FIELD, field=where)


#: Keys FCM keeps for itself in ``data`` (it answers INVALID_ARGUMENT for them).
_RESERVED = frozenset({"from", "notification", "message_type"})


def _data(where: str, value: object) -> dict[str, str]:
    out = _strings(where, value)
    for key in out:
        if key in _RESERVED or key.lower().startswith(("google", "gcm")):
            raise _fail(
                f"{where}.{key}",
                "a key FCM reserves (from, notification, message_type, google*, gcm*)",
            )
    return out


def _strings(where: str, value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise _fail(where, f"must be a mapping of strings to strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not key:
            raise _fail(where, f"keys must be non-empty strings, got {key!r}")
        if not isinstance(item, str):
            raise _fail(
                f"{where}.{key}",
                f"FCM data values must be strings, got {type(item).__name__}"
                " (encode numbers and objects yourself, e.g. with json.dumps)",
            )
        out[key] = item
    return out


def _json(where: str, value: object) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise _fail(where, f"must be JSON-serialisable: {exc}") from None


def _block(name: str, value: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(name, f"must be a mapping, got {type(value).__name__}")
    unknown = sorted(str(key) for key in value if key not in _BLOCKS[name])
    if unknown:
        raise _fail(f"{name}.{unknown[0]}", f"unknown field; {name} takes {sorted(_BLOCKS[name])}")
    out: dict[str, Any] = _json(name, dict(value))
    if "headers" in out:
        out["headers"] = _strings(f"{name}.headers", out["headers"])
    if "data" in out:
        out["data"] = _data(f"{name}.data", out["data"])
    if name == "android":
        if out.get("priority", "normal") not in ("normal", "high"):
            raise _fail("android.priority", f"must be 'normal' or 'high', got {out['priority']!r}")
        ttl = out.get("ttl")
        if ttl is not None and not (isinstance(ttl, str) and _DURATION.fullmatch(ttl)):
            raise _fail("android.ttl", f"must be a duration such as '3600s', got {ttl!r}")
    if name == "apns" and not isinstance(out.get("payload", {}), dict):
        raise _fail("apns.payload", "must be a JSON object (with an 'aps' dictionary)")
    return out


@dataclass(frozen=True, slots=True)
class FCMMessage:
    """One FCM message, checked when it is built.

    Args:
        token: A device's registration token (Android, iOS or web app).
        topic: A topic name (``"news"``; a leading ``/topics/`` is dropped).
        condition: A topic condition (``"'news' in topics && 'sport' in topics"``).
        title: The notification's title.
        body: The notification's body.
        image: An image URL for the notification.
        data: Custom key-value pairs; FCM takes strings only.
        android: The ``AndroidConfig`` override block (``priority``, ``ttl``, ``collapse_key``...).
        apns: The ``ApnsConfig`` override block (``headers``, ``payload``).
        webpush: The ``WebpushConfig`` override block (``headers``, ``data``, ``notification``).
        analytics_label: ``fcm_options.analytics_label``.

    Raises:
        InvalidNotification: Not exactly one target, a data value that is not a string,
            an unknown override field, a bad topic name... (a ``ValueError`` naming the field).

    Example:
        >>> FCMMessage(token="t0k3n", title="Hi", data={"order": "42"}).target
        ('token', 't0k3n')
    """

    token: str | None = None
    topic: str | None = None
    condition: str | None = None
    title: str | None = None
    body: str | None = None
    image: str | None = None
    data: Mapping[str, str] = field(default_factory=dict)
    android: Mapping[str, Any] | None = None
    apns: Mapping[str, Any] | None = None
    webpush: Mapping[str, Any] | None = None
    analytics_label: str | None = None

    def __post_init__(self) -> None:
        targets = [(name, getattr(self, name)) for name in ("token", "topic", "condition")]
        given = [(name, value) for name, value in targets if value is not None]
        if len(given) != 1:
            names = [name for name, _ in given] or ["none"]
            raise _fail("token", f"give exactly one of token, topic, condition; got {names}")
        name, value = given[0]
        if not isinstance(value, str) or not value.strip():
            raise _fail(name, f"must be a non-empty string, got {value!r}")
        if name == "topic":
            topic = value.removeprefix("/topics/")
            if not _TOPIC.fullmatch(topic):
                raise _fail("topic", f"{value!r} is not a topic name ([a-zA-Z0-9-_.~%]+)")
            object.__setattr__(self, "topic", topic)
        for text in ("title", "body", "image", "analytics_label"):
            item = getattr(self, text)
            if item is not None and not isinstance(item, str):
                raise _fail(text, f"must be a string, got {type(item).__name__}")
        object.__setattr__(self, "data", _data("data", self.data))
        for block in ("android", "apns", "webpush"):
            if getattr(self, block) is not None:
                object.__setattr__(self, block, _block(block, getattr(self, block)))

    @property
    def target(self) -> tuple[str, str]:
        """The target: ``("token" | "topic" | "condition", value)``."""
        for name in ("token", "topic", "condition"):
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise AssertionError("unreachable: validated in __post_init__")  # pragma: no cover

    @property
    def limit(self) -> int:
        """The payload limit in bytes: 4,096, or 2,048 for topic and condition messages."""
        return MAX_PAYLOAD if self.token is not None else MAX_TOPIC_PAYLOAD

    def payload(self) -> dict[str, Any]:
        """Return the message as FCM's JSON ``Message`` object, without checking its size."""
        name, value = self.target
        out: dict[str, Any] = {name: value}
        notification = {
            key: item
            for key, item in (("title", self.title), ("body", self.body), ("image", self.image))
            if item is not None
        }
        if notification:
            out["notification"] = notification
        if self.data:
            out["data"] = dict(self.data)
        for block in ("android", "apns", "webpush"):
            if getattr(self, block) is not None:
                out[block] = getattr(self, block)
        if self.analytics_label is not None:
            out["fcm_options"] = {"analytics_label": self.analytics_label}
        return out

    def size(self) -> int:
        """Return the payload's size in bytes: the compact JSON of everything but the target."""
        name, _ = self.target
        rest = {key: item for key, item in self.payload().items() if key != name}
        return len(json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode())

    def encode(self) -> bytes:
        """Return the ``messages:send`` request body.

        Raises:
            LimitExceeded: The payload is over :attr:`limit` (a ``ValueError``).
        """
        size = self.size()
        if size > self.limit:
            kind = "device" if self.token is not None else "topic"
            raise LimitExceeded(
                f"FCM {kind} message payload is {size} bytes; FCM accepts at most {self.limit}",
                limit="fcm_payload_bytes",
                value=self.limit,
            )
        return json.dumps({"message": self.payload()}, separators=(",", ":")).encode()
