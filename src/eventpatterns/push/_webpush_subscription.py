"""A browser's Web Push subscription: where to send, and the keys to encrypt for."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from ..core._net import is_loopback
from ..errors import InvalidDevice
from ._vapid import b64url_decode, b64url_encode, origin_of

if TYPE_CHECKING:
    from ._devices import Device

__all__ = ["WebPushSubscription"]

_MAX_ENDPOINT = 2048


def _check_endpoint(endpoint: object) -> str:
    if not isinstance(endpoint, str) or not endpoint:
        raise InvalidDevice("must be a non-empty URL string", field="endpoint")
    if len(endpoint) > _MAX_ENDPOINT or not endpoint.isprintable() or " " in endpoint:
        raise InvalidDevice(
            f"must be a URL of at most {_MAX_ENDPOINT} printable characters", field="endpoint"
        )
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidDevice("is not a valid URL", field="endpoint") from None
    if not host:
        raise InvalidDevice("has no host", field="endpoint")
    # RFC 8030 section 8: push resources are https; http only for a local test service.
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(host)):
        raise InvalidDevice(
            "must be an https: URL (http: only for a loopback test service)", field="endpoint"
        )
    return endpoint


def _key(value: object, *, field: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise InvalidDevice("must be a base64url string", field=field)
    try:
        raw = b64url_decode(value, what="it")
    except ValueError as exc:
        raise InvalidDevice(str(exc).replace("it is", "is"), field=field) from None
    if len(raw) != size:
        raise InvalidDevice(f"must decode to {size} octets, not {len(raw)}", field=field)
    return raw


@dataclass(frozen=True, slots=True)
class WebPushSubscription:
    """Where a browser receives pushes, and its encryption keys (RFC 8030, RFC 8291).

    Build it from what the browser's ``PushSubscription.toJSON()`` gave your backend
    with :meth:`from_json`.

    Attributes:
        endpoint: The push resource URL (``https:``; ``http:`` only on loopback).
        p256dh: The browser's P-256 public key, 65 octets (uncompressed point).
        auth: The browser's 16-octet authentication secret.

    Raises:
        InvalidDevice: A field is missing or malformed (it names the field).
    """

    endpoint: str
    p256dh: bytes
    auth: bytes
    _public: ec.EllipticCurvePublicKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_endpoint(self.endpoint)
        self._check_keys()

    @classmethod
    def _of_checked_endpoint(cls, endpoint: str, p256dh: bytes, auth: bytes) -> WebPushSubscription:
        # from_json() has checked the endpoint already: build without checking it again.
        self = object.__new__(cls)
        object.__setattr__(self, "endpoint", endpoint)
        object.__setattr__(self, "p256dh", p256dh)
        object.__setattr__(self, "auth", auth)
        self._check_keys()
        return self

    def _check_keys(self) -> None:
        if not isinstance(self.p256dh, bytes) or len(self.p256dh) != 65:
            raise InvalidDevice("must be 65 octets", field="keys.p256dh")
        if not isinstance(self.auth, bytes) or len(self.auth) != 16:
            raise InvalidDevice("must be 16 octets", field="keys.auth")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), self.p256dh)
        except ValueError:
            raise InvalidDevice(
                "is not an uncompressed P-256 public key (a point on the curve)",
                field="keys.p256dh",
            ) from None
        object.__setattr__(self, "_public", public)

    def __repr__(self) -> str:  # the keys say nothing useful in a log line
        return f"WebPushSubscription(endpoint={self.endpoint!r})"

    @classmethod
    def from_json(cls, value: str | bytes | Mapping[str, Any]) -> WebPushSubscription:
        """Read the browser's ``PushSubscription.toJSON()`` shape.

        ``{"endpoint": "https://...", "expirationTime": null, "keys": {"p256dh": "...",
        "auth": "..."}}``, as JSON text or as the decoded mapping; the keys are base64url
        with or without padding.

        Raises:
            InvalidDevice: Not that shape; the error names the field.
        """
        if isinstance(value, (str, bytes)):
            try:
                value = json.loads(value)
            except (ValueError, RecursionError):
                raise InvalidDevice("not valid JSON", field="subscription") from None
        if not isinstance(value, Mapping):
            raise InvalidDevice(
                "must be a JSON object with endpoint and keys", field="subscription"
            )
        if "endpoint" not in value:
            raise InvalidDevice("is missing", field="endpoint")
        endpoint = _check_endpoint(value["endpoint"])
        keys = value.get("keys")
        if not isinstance(keys, Mapping):
            raise InvalidDevice("must be an object with p256dh and auth", field="keys")
        for name in ("p256dh", "auth"):
            if name not in keys:
                raise InvalidDevice("is missing", field=f"keys.{name}")
        p256dh = _key(keys["p256dh"], field="keys.p256dh", size=65)
        auth = _key(keys["auth"], field="keys.auth", size=16)
        return cls._of_checked_endpoint(endpoint, p256dh, auth)

    @classmethod
    def from_device(cls, device: Device) -> WebPushSubscription:
        """Return the subscription of a ``webpush`` device from a device registry.

        Raises:
            InvalidDevice: The device is of another platform (``field="platform"``).
        """
        if device.platform != "webpush" or device.p256dh is None or device.auth is None:
            raise InvalidDevice(
                f"a {device.platform.value} device has no Web Push subscription",
                field="platform",
            )
        return cls.from_json(
            {"endpoint": device.token, "keys": {"p256dh": device.p256dh, "auth": device.auth}}
        )

    def to_json(self) -> dict[str, Any]:
        """Return the ``PushSubscription.toJSON()`` shape (keys in base64url)."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": b64url_encode(self.p256dh), "auth": b64url_encode(self.auth)},
        }

    @property
    def origin(self) -> str:
        """The push service's origin: the ``aud`` of the VAPID token for this endpoint."""
        return origin_of(self.endpoint)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        """The ``p256dh`` key as a ``cryptography`` public key."""
        return self._public
