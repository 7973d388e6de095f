"""What a push device is: a registration as a client sends it, and the registry's record.

Nothing here does I/O. A :class:`Registration` checks everything a browser or an app
sends (hostile input included: the HTTP routes build one from a request body) and
refuses what is wrong with :class:`~eventpatterns.errors.InvalidDevice` naming the
field; a :class:`Device` is what a registry stores and hands back, with the owner and
the times a registry adds.

A device's id is derived from its platform and token (:func:`device_id`): registering
the same token again finds the same device, in every registry implementation.
"""

from __future__ import annotations

import base64
import binascii
import enum
import functools
import hashlib
import math
import re
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from ..errors import ArgumentTypeError, InvalidDevice, MissingDependency

__all__ = [
    "MAX_ENDPOINT",
    "MAX_TOKEN",
    "MAX_TOPICS",
    "Device",
    "Environment",
    "Platform",
    "Registration",
    "device_id",
]

#: Longest Web Push endpoint URL accepted (push services use 150-500 characters).
MAX_ENDPOINT = 2048
#: Longest FCM registration token accepted (they are about 160 characters today).
MAX_TOKEN = 4096
#: Most topics one device may consent to.
MAX_TOPICS = 64

#: The APNs environment of a device token: Xcode builds get sandbox tokens.
Environment = Literal["sandbox", "production"]

_TOPIC = re.compile(r"[A-Za-z0-9_.:/-]{1,64}")
_LOCALE = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,6}")
_ZONE = re.compile(r"[A-Za-z0-9_+\-/]{1,64}")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")
_FCM = re.compile(rf"[\x21-\x7e]{{1,{MAX_TOKEN}}}")
_BUNDLE = re.compile(r"[A-Za-z0-9_.-]{1,255}")
_B64 = re.compile(r"[A-Za-z0-9_\-+/]+={0,2}")
#: Hosts an ``http://`` endpoint may name: local fakes in tests, never a real service.
_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


class Platform(str, enum.Enum):
    """Which push service reaches a device."""

    WEBPUSH = "webpush"
    """A browser's push subscription (RFC 8030), encrypted per RFC 8291."""
    FCM = "fcm"
    """Firebase Cloud Messaging (Android, and iOS apps that use Firebase)."""
    APNS = "apns"
    """Apple Push Notification service (iOS, iPadOS, macOS, watchOS)."""


def device_id(platform: Platform | str, token: str) -> str:
    """Return the id of the device with this platform and (normalised) token.

    The first 128 bits of SHA-256 over ``platform`` and ``token``, in hex: stable
    across processes and registries, so re-registering finds the same device.

    Example:
        >>> device_id("fcm", "abc:def")
        '03fc2fb0d6b6f600811a75343d7973ae'
    """
    name = Platform(platform).value
    return hashlib.sha256(f"{name}\n{token}".encode()).hexdigest()[:32]


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def _text(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ArgumentTypeError("Registration", field, expected="a str", got=value)
    return value


def _optional(field: str, value: object) -> str | None:
    return None if value is None else _text(field, value)


def _endpoint(value: str) -> str:
    if not 0 < len(value) <= MAX_ENDPOINT or not value.isascii() or not value.isprintable():
        raise InvalidDevice(
            f"a Web Push endpoint is a URL of 1-{MAX_ENDPOINT} printable ASCII characters,"
            f" got {_shown(value)} ({len(value)} characters)",
            field="token",
        )
    if " " in value:
        raise InvalidDevice(f"a Web Push endpoint has no spaces: {_shown(value)}", field="token")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError as exc:
        raise InvalidDevice(f"not a URL ({exc}): {_shown(value)}", field="token") from None
    if not host:
        raise InvalidDevice(f"a Web Push endpoint names a host: {_shown(value)}", field="token")
    if parts.username is not None or parts.password is not None or parts.fragment:
        raise InvalidDevice(
            f"a Web Push endpoint has no user info or fragment: {_shown(value)}", field="token"
        )
    if parts.scheme == "https" or (parts.scheme == "http" and host in _LOOPBACK):
        return value
    raise InvalidDevice(
        "a Web Push endpoint is an https:// URL (http:// only for 127.0.0.1, ::1 or"
        f" localhost, for local test receivers), got {_shown(value)}",
        field="token",
    )


def _b64(field: str, value: object, size: int) -> str:
    text = _text(field, value)
    if len(text) > 200 or not _B64.fullmatch(text):
        raise InvalidDevice(f"not base64url: {_shown(text)}", field=field)
    unpadded = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        raise InvalidDevice(f"not base64url: {_shown(text)}", field=field) from None
    if len(raw) != size:
        raise InvalidDevice(f"decodes to {len(raw)} bytes, not {size}", field=field)
    if field == "p256dh":
        _check_point(raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _check_point(raw: bytes) -> None:
    """Refuse a p256dh that is not an uncompressed point on P-256 (RFC 8291 section 3.1)."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError as exc:  # pragma: no cover - the push and server extras have it
        raise MissingDependency("cryptography", extra="push") from exc
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise InvalidDevice(
            "is not an uncompressed P-256 public key (65 bytes, 0x04, a point on the curve)",
            field="p256dh",
        ) from None


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _time_zone(value: object) -> str | None:
    text = _optional("time_zone", value)
    if text is None:
        return None
    if not _ZONE.fullmatch(text) or text not in _zones():
        raise InvalidDevice(
            f"not an IANA time zone name (like 'Europe/Paris'): {_shown(text)}", field="time_zone"
        )
    return text


def _locale(value: object) -> str | None:
    text = _optional("locale", value)
    if text is None:
        return None
    if len(text) > 35 or not _LOCALE.fullmatch(text):
        raise InvalidDevice(
            f"not a BCP 47 language tag (like 'fr-CA'): {_shown(text)}", field="locale"
        )
    return text.replace("_", "-")


def check_topics(value: object) -> frozenset[str]:
    """Return ``value`` as a frozenset of checked topic names, else raise.

    Raises:
        ArgumentTypeError: Not an iterable of str (a str alone is refused too).
        InvalidDevice: A topic that is not 1-64 of ``A-Z a-z 0-9 _ . : / -``, or more
            than :data:`MAX_TOPICS` of them.
    """
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ArgumentTypeError("Registration", "topics", expected="a set of str", got=value)
    topics: set[str] = set()
    for topic in value:
        if not isinstance(topic, str):
            raise ArgumentTypeError("Registration", "topics", expected="str items", got=topic)
        if not _TOPIC.fullmatch(topic):
            raise InvalidDevice(
                "a topic is 1-64 characters of A-Z, a-z, 0-9, '_', '.', ':', '/' or '-',"
                f" got {_shown(topic)}",
                field="topics",
            )
        topics.add(topic)
        if len(topics) > MAX_TOPICS:
            raise InvalidDevice(f"at most {MAX_TOPICS} topics per device", field="topics")
    return frozenset(topics)


@dataclass(frozen=True, slots=True, init=False)
class Registration:
    """A device as a browser or an app registers it: checked on construction.

    Attributes:
        platform: The push service (a :class:`Platform` or its value).
        token: For ``webpush`` the subscription's endpoint URL (``https://``, or
            ``http://`` on a loopback host for local test receivers); for ``fcm`` the
            registration token; for ``apns`` the device token in hex (kept in lower
            case).
        p256dh: Web Push only: the subscription's P-256 public key (base64url).
        auth: Web Push only: the subscription's 16-byte auth secret (base64url).
        apns_topic: APNs only: the app's bundle id (``apns-topic``), or ``None`` for
            the provider's default.
        apns_environment: APNs only: ``"sandbox"`` or ``"production"`` (the default).
        locale: A BCP 47 language tag (``"fr-CA"``; ``"fr_CA"`` becomes that).
        time_zone: An IANA time zone name (``"Europe/Paris"``), for quiet hours.
        topics: The topics the user consented to on this device.
        expires_at: Web Push only: when the subscription ends (Unix seconds), if the
            browser said (``PushSubscription.expirationTime``).

    Raises:
        ArgumentTypeError: A field of the wrong type.
        InvalidDevice: A malformed field, a field of another platform, or a missing
            Web Push key; the error's ``field`` names it.
        MissingDependency: A ``webpush`` registration without ``cryptography``
            installed (``pip install 'eventpatterns[push]'``).
    """

    platform: Platform
    token: str
    p256dh: str | None = None
    auth: str | None = field(default=None, repr=False)  # a secret: never in logs
    apns_topic: str | None = None
    apns_environment: Environment | None = None
    locale: str | None = None
    time_zone: str | None = None
    topics: frozenset[str] = frozenset()
    expires_at: float | None = None

    def __init__(
        self,
        platform: Platform | str,
        token: str,
        *,
        p256dh: str | None = None,
        auth: str | None = None,
        apns_topic: str | None = None,
        apns_environment: Environment | None = None,
        locale: str | None = None,
        time_zone: str | None = None,
        topics: Iterable[str] = (),
        expires_at: float | None = None,
    ) -> None:
        put = functools.partial(object.__setattr__, self)
        put("platform", platform)
        put("token", token)
        put("p256dh", p256dh)
        put("auth", auth)
        put("apns_topic", apns_topic)
        put("apns_environment", apns_environment)
        put("locale", locale)
        put("time_zone", time_zone)
        put("topics", topics)
        put("expires_at", expires_at)
        self._check()

    def _check(self) -> None:
        put = functools.partial(object.__setattr__, self)
        if not isinstance(self.platform, str):
            raise ArgumentTypeError("Registration", "platform", expected="a str", got=self.platform)
        try:
            platform = Platform(self.platform)
        except ValueError:
            raise InvalidDevice(
                f"platform is 'webpush', 'fcm' or 'apns', got {_shown(self.platform)}",
                field="platform",
            ) from None
        put("platform", platform)
        token = _text("token", self.token)
        if platform is Platform.WEBPUSH:
            put("token", _endpoint(token))
            for name in ("p256dh", "auth"):
                if getattr(self, name) is None:
                    raise InvalidDevice("a Web Push subscription needs its keys", field=name)
            put("p256dh", _b64("p256dh", self.p256dh, 65))
            put("auth", _b64("auth", self.auth, 16))
        elif platform is Platform.FCM:
            if not _FCM.fullmatch(token):
                raise InvalidDevice(
                    f"an FCM registration token is 1-{MAX_TOKEN} printable ASCII characters"
                    f" without spaces, got {_shown(token)} ({len(token)} characters)",
                    field="token",
                )
        else:
            if not _HEX.fullmatch(token):
                raise InvalidDevice(
                    "an APNs device token is 32-100 bytes in hex (64-200 hex digits),"
                    f" got {_shown(token)} ({len(token)} characters)",
                    field="token",
                )
            put("token", token.lower())
            self._check_apns()
        self._check_other_platforms(platform)
        put("locale", _locale(self.locale))
        put("time_zone", _time_zone(self.time_zone))
        put("topics", check_topics(self.topics))
        expires = self.expires_at
        if expires is not None and (
            isinstance(expires, bool)
            or not isinstance(expires, int | float)
            or not math.isfinite(expires)
            or expires < 0
        ):
            raise InvalidDevice(f"expires_at is Unix seconds, got {expires!r}", field="expires_at")
        put("expires_at", None if expires is None else float(expires))

    def _check_apns(self) -> None:
        topic = _optional("apns_topic", self.apns_topic)
        if topic is not None and not _BUNDLE.fullmatch(topic):
            raise InvalidDevice(
                f"an APNs topic is a bundle id (like 'com.example.app'), got {_shown(topic)}",
                field="apns_topic",
            )
        environment = self.apns_environment
        if environment is None:
            object.__setattr__(self, "apns_environment", "production")
        elif environment not in ("sandbox", "production"):
            raise InvalidDevice(
                f"is 'sandbox' or 'production', got {environment!r}"[:120],
                field="apns_environment",
            )

    def _check_other_platforms(self, platform: Platform) -> None:
        fields = {
            Platform.WEBPUSH: ("p256dh", "auth", "expires_at"),
            Platform.APNS: ("apns_topic", "apns_environment"),
        }
        for owner, names in fields.items():
            if owner is platform:
                continue
            for name in names:
                if getattr(self, name) is not None:
                    raise InvalidDevice(
                        f"is for {owner.value} devices only, not {platform.value}", field=name
                    )

    @property
    def id(self) -> str:
        """The id of the device this registers (:func:`device_id`)."""
        return device_id(self.platform, self.token)


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device, as a :class:`~eventpatterns.push.DeviceRegistry` holds it.

    Registries build these from a :class:`Registration` and its owner; the fields of
    the registration mean what they mean there.

    Attributes:
        id: :func:`device_id` of the platform and token.
        user: The owner (one user per token: registering it for another moves it).
        created_at: When this user first registered it (Unix seconds).
        last_seen: The latest ``now`` of a registration or ``touch``.
        registered_at: When it was last registered: an APNs ``410`` older than this
            does not remove it (see ``remove_if_not_registered_since``).
    """

    id: str
    user: str
    platform: Platform
    token: str
    created_at: float
    last_seen: float
    registered_at: float
    p256dh: str | None = None
    auth: str | None = field(default=None, repr=False)  # a secret: never in logs
    apns_topic: str | None = None
    apns_environment: Environment | None = None
    locale: str | None = None
    time_zone: str | None = None
    topics: frozenset[str] = frozenset()
    expires_at: float | None = None

    @property
    def zone(self) -> zoneinfo.ZoneInfo | None:
        """The device's time zone, or ``None`` when it gave none."""
        return None if self.time_zone is None else zoneinfo.ZoneInfo(self.time_zone)

    @classmethod
    def of(
        cls,
        user: str,
        registration: Registration,
        *,
        created_at: float,
        registered_at: float,
        last_seen: float,
    ) -> Device:
        """Return the record of ``registration`` for ``user`` with these times."""
        r = registration
        return cls(
            r.id, user, r.platform, r.token, created_at, last_seen, registered_at,
            r.p256dh, r.auth, r.apns_topic, r.apns_environment, r.locale, r.time_zone,
            r.topics, r.expires_at,
        )  # fmt: skip
