"""Push notifications: a device registry, Web Push / FCM / APNs providers, fatigue controls.

See ``docs/push.md``.
"""

from ._apns import APNsProvider
from ._apns_message import APNsMessage, PushType
from ._auth import Mint, TokenAuth
from ._devices import MAX_TOPICS, Device, Environment, Platform, Registration, device_id
from ._devices_json import device_to_json, registration_from_json
from ._fatigue import (
    Bucket,
    Budget,
    FatiguePolicy,
    QuietHours,
    Release,
    UserFatigue,
    admit,
    release,
)
from ._fcm import FCMProvider
from ._fcm_message import FCMMessage
from ._notification import Notification, Urgency
from ._registry import DEFAULT_MAX_DEVICES, DeviceRegistry
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult
from ._vapid import Vapid, VapidClaims, VapidKeys, verify_vapid
from ._webpush import WebPushProvider, WebPushUrgency
from ._webpush_subscription import WebPushSubscription

__all__ = [
    "DEFAULT_MAX_DEVICES",
    "MAX_TOPICS",
    "APNsMessage",
    "APNsProvider",
    "Bucket",
    "Budget",
    "DeadToken",
    "Delivered",
    "Device",
    "DeviceRegistry",
    "Environment",
    "FCMMessage",
    "FCMProvider",
    "FatiguePolicy",
    "Mint",
    "Notification",
    "PermanentFailure",
    "Platform",
    "PushType",
    "QuietHours",
    "Registration",
    "Release",
    "RetryLater",
    "SendResult",
    "TokenAuth",
    "Urgency",
    "UserFatigue",
    "Vapid",
    "VapidClaims",
    "VapidKeys",
    "WebPushProvider",
    "WebPushSubscription",
    "WebPushUrgency",
    "admit",
    "device_id",
    "device_to_json",
    "registration_from_json",
    "release",
    "verify_vapid",
]
