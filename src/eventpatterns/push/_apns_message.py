"""An APNs notification, validated before it is sent (sans-I/O).

Headers and payload follow Apple's "Sending notification requests to APNs"
(https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns)
and "Generating a remote notification": ``apns-push-type`` must match the payload and
the topic's suffix, ``apns-priority`` is 10, 5 or 1 and 5 for background pushes,
``apns-collapse-id`` is at most 64 bytes, ``apns-id`` is a canonical UUID, and the JSON
payload is at most 4,096 bytes (5,120 for VoIP).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidNotification, LimitExceeded

__all__ = ["APNsMessage", "PushType"]

PushType = Literal[
    "alert",
    "background",
    "controls",
    "complication",
    "fileprovider",
    "liveactivity",
    "location",
    "mdm",
    "pushtotalk",
    "voip",
    "widgets",
]
#: The topic suffix Apple requires for a push type (``<bundle id><suffix>``).
_SUFFIX = {
    "complication": ".complication",
    "fileprovider": ".pushkit.fileprovider",
    "liveactivity": ".push-type.liveactivity",
    "location": ".location-query",
    "pushtotalk": ".voip-ptt",
    "voip": ".voip",
}
#: Priorities each push type allows (Apple's table; absent: 10, 5 and 1).
_PRIORITIES: dict[str, tuple[int, ...]] = {"background": (5,), "pushtotalk": (10,)}
_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){8,100}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TYPES = frozenset(PushType.__args__)  # type: ignore[attr-defined]
MAX_PAYLOAD = 4096
MAX_VOIP_PAYLOAD = 5120


def _fail(where: str, reason: str) -> InvalidNotification:
    return InvalidNotification(reason, provider="apns", field=where)


def _check_types(message: APNsMessage) -> None:
    expected: dict[str, tuple[type, ...]] = {
        "token": (str,),
        "topic": (str,),
        "alert": (str, Mapping, type(None)),
        "sound": (str, Mapping, type(None)),
        "thread_id": (str, type(None)),
        "category": (str, type(None)),
        "collapse_id": (str, type(None)),
        "apns_id": (str, type(None)),
        "content_available": (bool,),
        "mutable_content": (bool,),
        "data": (Mapping,),
    }
    for name, kinds in expected.items():
        value = getattr(message, name)
        if not isinstance(value, kinds):
            raise _fail(name, f"must be {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    for name in ("badge", "priority", "expiration"):
        value = getattr(message, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise _fail(name, f"must be an integer, got {value!r}")
        if value is not None and value < 0:
            raise _fail(name, f"must not be negative, got {value!r}")


@dataclass(frozen=True, slots=True)
class APNsMessage:
    """One APNs notification, checked when it is built.

    Args:
        token: The device token, in hex (what ``didRegisterForRemoteNotificationsWithDeviceToken``
            gives, hex-encoded).
        topic: The app's bundle id (``apns-topic``), with the suffix the push type needs
            (``.voip``, ``.push-type.liveactivity``...).
        alert: ``aps.alert``: a string or a dictionary (``title``, ``body``, ``loc-key``...).
        badge: ``aps.badge``.
        sound: ``aps.sound``: a sound name or a critical-sound dictionary.
        thread_id: ``aps.thread-id``, to group notifications.
        category: ``aps.category``, for actionable notifications.
        content_available: ``aps.content-available: 1``: wake the app (background pushes).
        mutable_content: ``aps.mutable-content: 1``: let a notification service extension edit it.
        data: Custom keys beside ``aps`` (any JSON).
        push_type: ``apns-push-type``.
        priority: ``apns-priority``: 10 (now), 5 (power-friendly), 1 (lowest); 5 for
            background pushes and 10 otherwise by default.
        expiration: ``apns-expiration``: Unix seconds until which APNs retries; 0
            means deliver once or drop. ``None`` sends no header.
        collapse_id: ``apns-collapse-id`` (at most 64 bytes): a newer notification with
            the same id replaces the older one.
        apns_id: ``apns-id``, a lower-case UUID; APNs makes one when absent.
        sandbox: Send to the development environment (a debug build's token).

    Raises:
        InvalidNotification: A field Apple would refuse (a ``ValueError`` naming it).
    """

    token: str
    topic: str
    alert: str | Mapping[str, Any] | None = None
    badge: int | None = None
    sound: str | Mapping[str, Any] | None = None
    thread_id: str | None = None
    category: str | None = None
    content_available: bool = False
    mutable_content: bool = False
    data: Mapping[str, Any] = field(default_factory=dict)
    push_type: PushType = "alert"
    priority: int | None = None
    expiration: int | None = None
    collapse_id: str | None = None
    apns_id: str | None = None
    sandbox: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        if not _TOKEN.fullmatch(self.token):
            raise _fail("token", "must be the device token in hex (an even count of 16-200 digits)")
        if not self.topic.strip():
            raise _fail("topic", "must be the app's bundle id")
        for name in ("topic", "collapse_id"):
            value = getattr(self, name)
            if value is not None and _CONTROL.search(value):
                raise _fail(name, "a header value cannot hold control characters")
        if self.push_type not in _TYPES:
            raise _fail("push_type", f"must be one of {sorted(_TYPES)}, got {self.push_type!r}")
        suffix = _SUFFIX.get(self.push_type)
        if suffix and not self.topic.endswith(suffix):
            raise _fail("topic", f"a {self.push_type} push needs a topic ending {suffix!r}")
        self._check_aps()
        priority = self.priority if self.priority is not None else self.default_priority
        allowed = _PRIORITIES.get(self.push_type, (10, 5, 1))
        if priority not in allowed:
            raise _fail(
                "priority", f"a {self.push_type} push takes apns-priority {allowed}, got {priority}"
            )
        object.__setattr__(self, "priority", priority)
        if self.collapse_id is not None and len(self.collapse_id.encode()) > 64:
            raise _fail("collapse_id", "apns-collapse-id is at most 64 bytes")
        if self.apns_id is not None and not _UUID.fullmatch(self.apns_id):
            raise _fail("apns_id", f"must be a lower-case canonical UUID, got {self.apns_id!r}")
        if "aps" in self.data:
            raise _fail("data.aps", "'aps' is Apple's key; use the named fields")
        for name in ("alert", "sound", "data"):
            value = getattr(self, name)
            if isinstance(value, Mapping):
                try:
                    value = json.loads(json.dumps(dict(value), allow_nan=False))
                except (TypeError, ValueError) as exc:
                    raise _fail(name, f"must be JSON-serialisable: {exc}") from None
                object.__setattr__(self, name, value)

    def _check_aps(self) -> None:
        shown = self.alert is not None or self.badge is not None or self.sound is not None
        if self.push_type == "background":
            if not self.content_available:
                raise _fail("content_available", "a background push must set content_available")
            if shown:
                raise _fail("push_type", "a background push has no alert, badge or sound")
        if self.push_type == "alert" and not shown:
            raise _fail(
                "alert",
                "an alert push needs an alert, a badge or a sound"
                " (for a silent push use push_type='background', content_available=True)",
            )

    @property
    def default_priority(self) -> int:
        """The priority used when none is given: 5 for background pushes, 10 otherwise."""
        return 5 if self.push_type == "background" else 10

    @property
    def limit(self) -> int:
        """The payload limit in bytes: 4,096, or 5,120 for VoIP."""
        return MAX_VOIP_PAYLOAD if self.push_type == "voip" else MAX_PAYLOAD

    def payload(self) -> dict[str, Any]:
        """Return the JSON payload (``aps`` and the custom keys)."""
        aps: dict[str, Any] = {}
        for key, value in (
            ("alert", self.alert),
            ("badge", self.badge),
            ("sound", self.sound),
            ("thread-id", self.thread_id),
            ("category", self.category),
        ):
            if value is not None:
                aps[key] = dict(value) if isinstance(value, Mapping) else value
        if self.content_available:
            aps["content-available"] = 1
        if self.mutable_content:
            aps["mutable-content"] = 1
        return {"aps": aps, **self.data}

    def headers(self) -> dict[str, str]:
        """Return the ``apns-*`` request headers."""
        out = {
            "apns-topic": self.topic,
            "apns-push-type": self.push_type,
            "apns-priority": str(self.priority),
        }
        if self.expiration is not None:
            out["apns-expiration"] = str(self.expiration)
        if self.collapse_id is not None:
            out["apns-collapse-id"] = self.collapse_id
        if self.apns_id is not None:
            out["apns-id"] = self.apns_id
        return out

    def encode(self) -> bytes:
        """Return the request body.

        Raises:
            LimitExceeded: The payload is over :attr:`limit` (a ``ValueError``).
        """
        body = json.dumps(self.payload(), separators=(",", ":"), ensure_ascii=False).encode()
        if len(body) > self.limit:
            raise LimitExceeded(
                f"APNs payload is {len(body)} bytes; APNs accepts at most {self.limit}",
                limit="apns_payload_bytes",
                value=self.limit,
            )
        return body
