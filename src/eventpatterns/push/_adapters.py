"""One adapter per platform: a (Device, Notification) shaped into its provider's call.

The dispatcher knows devices and notifications; the providers know subscriptions,
``FCMMessage`` and ``APNsMessage``. An adapter is the one place each mapping is
written, so that the dispatcher's retries, pruning and dead letters are the same for
every platform. Anything that can be written as a :class:`PushProvider` works: a
test double, or an adapter for another service.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Protocol, runtime_checkable

from ..core import Clock, SystemClock
from ..errors import ArgumentTypeError, ConfigurationError
from ._apns import APNsProvider
from ._apns_message import APNsMessage
from ._devices import Device, Platform
from ._fcm import FCMProvider
from ._fcm_message import FCMMessage
from ._notification import Notification
from ._result import SendResult
from ._webpush import WebPushProvider
from ._webpush_subscription import WebPushSubscription

__all__ = [
    "NOTIFICATION_ID",
    "APNsAdapter",
    "FCMAdapter",
    "PushProvider",
    "WebPushAdapter",
    "collapse_id",
]

#: The ``data`` key under which the dispatcher passes each notification's id to the
#: device (a service worker or an app acks with it).
NOTIFICATION_ID = "notificationId"

_WEBPUSH_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")


@runtime_checkable
class PushProvider(Protocol):
    """Send one notification to one device; answer with a normalised result.

    Implementations never raise for what the push service answers: every answer is
    a :data:`~eventpatterns.push.SendResult`. They may raise
    :class:`~eventpatterns.errors.EventPatternsError` subclasses (a ``ValueError``:
    ``LimitExceeded``, ``InvalidNotification``, ``ConfigurationError``...) for a
    notification that cannot be shaped for the device; the dispatcher dead-letters it.
    """

    #: The platform this provider reaches.
    platform: Platform

    async def send(self, device: Device, notification: Notification) -> SendResult:
        """Send ``notification`` to ``device`` and return what the service made of it."""
        ...


def collapse_id(key: str, *, limit: int, pattern: re.Pattern[str] | None = None) -> str:
    """Return ``key`` if it fits the service's limit (and alphabet), else a digest of it.

    The digest (base64url of SHA-256, cut to ``limit``) is stable, so two
    notifications with the same long key still collapse onto each other.

    Example:
        >>> collapse_id("order-42", limit=32)
        'order-42'
        >>> len(collapse_id("x" * 100, limit=32))
        32
    """
    if len(key.encode()) <= limit and (pattern is None or pattern.fullmatch(key)):
        return key
    digest = base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()).rstrip(b"=")
    return digest.decode()[:limit]


def _check_device(device: object, platform: Platform) -> Device:
    if not isinstance(device, Device):
        raise ArgumentTypeError("send", "device", expected="a Device", got=device)
    if device.platform is not platform:
        raise ConfigurationError(
            f"a {platform.value} adapter cannot send to a {device.platform.value} device"
        )
    return device


class WebPushAdapter:
    """Web Push: the notification as a JSON payload, encrypted and sent by the provider.

    The payload is ``{"title", "body", "data", "topic"}`` (``data`` includes
    ``notificationId``); ``TTL``, ``Urgency`` come from the notification and ``Topic``
    from its ``collapse_key`` (a digest when longer than 32 URL-safe characters).

    Args:
        provider: The :class:`~eventpatterns.push.WebPushProvider` to send with.
    """

    platform = Platform.WEBPUSH

    def __init__(self, provider: WebPushProvider) -> None:
        self.provider = provider

    def payload(self, notification: Notification) -> bytes:
        """Return the JSON bytes a service worker's ``push`` event reads."""
        body = {
            "title": notification.title,
            "body": notification.body,
            "data": dict(notification.data),
            "topic": notification.topic,
        }
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()

    async def send(self, device: Device, notification: Notification) -> SendResult:
        """Send to a browser subscription (see :meth:`WebPushProvider.send`)."""
        subscription = WebPushSubscription.from_device(_check_device(device, Platform.WEBPUSH))
        key = notification.collapse_key
        return await self.provider.send(
            subscription,
            self.payload(notification),
            ttl=int(notification.ttl),
            urgency=notification.urgency,
            topic=None if key is None else collapse_id(key, limit=32, pattern=_WEBPUSH_TOPIC),
        )


class FCMAdapter:
    """FCM: an ``FCMMessage`` to the device's token, data as strings.

    ``android.priority`` is ``high`` for high urgency and ``normal`` otherwise,
    ``android.ttl`` the notification's ttl and ``android.collapse_key`` its
    ``collapse_key``.

    Args:
        provider: The :class:`~eventpatterns.push.FCMProvider` to send with.
    """

    platform = Platform.FCM

    def __init__(self, provider: FCMProvider) -> None:
        self.provider = provider

    def message(self, device: Device, notification: Notification) -> FCMMessage:
        """Return the :class:`~eventpatterns.push.FCMMessage` for this device."""
        device = _check_device(device, Platform.FCM)
        android: dict[str, object] = {
            "priority": "high" if notification.urgency == "high" else "normal",
            "ttl": f"{int(notification.ttl)}s",
        }
        if notification.collapse_key is not None:
            android["collapse_key"] = notification.collapse_key
        return FCMMessage(
            token=device.token,
            title=notification.title or None,
            body=notification.body or None,
            data=dict(notification.data),
            android=android,
        )

    async def send(self, device: Device, notification: Notification) -> SendResult:
        """Send to an FCM registration token (see :meth:`FCMProvider.send`)."""
        return await self.provider.send(self.message(device, notification))


class APNsAdapter:
    """APNs: an ``APNsMessage`` with an alert, collapse id, expiration and priority.

    ``apns-expiration`` is now + ttl (0 for a ttl of 0: deliver once or drop),
    ``apns-priority`` 10 for normal and high urgency and 5 for low and very-low,
    ``apns-collapse-id`` the ``collapse_key`` (a digest when over 64 bytes), and the
    device's sandbox or production environment picks the endpoint.

    Args:
        provider: The :class:`~eventpatterns.push.APNsProvider` to send with.
        topic: The ``apns-topic`` (bundle id) for devices registered without one.
        clock: Where "now" for ``apns-expiration`` is read from.
    """

    platform = Platform.APNS

    def __init__(
        self, provider: APNsProvider, *, topic: str | None = None, clock: Clock | None = None
    ) -> None:
        self.provider = provider
        self.topic = topic
        self._clock = clock or SystemClock()

    def message(self, device: Device, notification: Notification) -> APNsMessage:
        """Return the :class:`~eventpatterns.push.APNsMessage` for this device.

        Raises:
            ConfigurationError: The device has no ``apns_topic`` and the adapter no
                default ``topic``.
        """
        device = _check_device(device, Platform.APNS)
        topic = device.apns_topic or self.topic
        if topic is None:
            raise ConfigurationError(
                "an APNs device registered without apns_topic needs APNsAdapter(topic=...)"
            )
        ttl = int(notification.ttl)
        key = notification.collapse_key
        return APNsMessage(
            token=device.token,
            topic=topic,
            alert={"title": notification.title, "body": notification.body},
            data=dict(notification.data),
            priority=10 if notification.urgency in ("normal", "high") else 5,
            expiration=0 if ttl == 0 else int(self._clock.time()) + ttl,
            collapse_id=None if key is None else collapse_id(key, limit=64),
            sandbox=device.apns_environment == "sandbox",
        )

    async def send(self, device: Device, notification: Notification) -> SendResult:
        """Send to an APNs device token (see :meth:`APNsProvider.send`)."""
        return await self.provider.send(self.message(device, notification))
