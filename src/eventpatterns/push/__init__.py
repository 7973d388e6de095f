"""Push notifications: a device registry, Web Push / FCM / APNs providers, fatigue controls.

See ``docs/push.md``.
"""

from ._adapters import NOTIFICATION_ID, APNsAdapter, FCMAdapter, PushProvider, WebPushAdapter
from ._apns import APNsProvider
from ._apns_message import APNsMessage, PushType
from ._auth import Mint, TokenAuth
from ._devices import MAX_TOPICS, Device, Environment, Platform, Registration, device_id
from ._devices_json import device_to_json, registration_from_json
from ._dispatch_inapp import ACK_TYPE, INAPP_TYPE, job_notification, user_channel
from ._dispatch_state import (
    DeliveryOutcome,
    DispatchState,
    MemoryDispatchState,
    MemoryPushDeadLetters,
    NotifyResult,
    PushDeadLetter,
    PushDeadLetters,
    PushRetry,
)
from ._dispatcher import PushDispatcher
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
from ._http import PushTransport
from ._notification import PLATFORMS, Notification, Urgency, Variant
from ._registry import DEFAULT_MAX_DEVICES, DeviceRegistry
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult
from ._vapid import Vapid, VapidClaims, VapidKeys, verify_vapid
from ._webpush import WebPushProvider
from ._webpush_subscription import WebPushSubscription

__all__ = [
    "Vapid",
    "VapidClaims",
    "VapidKeys",
    "WebPushProvider",
    "PushTransport",
    "WebPushSubscription",
    "verify_vapid",
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
    "PLATFORMS",
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
    "Variant",
    "UserFatigue",
    "admit",
    "device_id",
    "device_to_json",
    "registration_from_json",
    "release",
    # The dispatcher (issue 11)
    "ACK_TYPE",
    "INAPP_TYPE",
    "NOTIFICATION_ID",
    "APNsAdapter",
    "DeliveryOutcome",
    "DispatchState",
    "FCMAdapter",
    "MemoryDispatchState",
    "MemoryPushDeadLetters",
    "NotifyResult",
    "PushDeadLetter",
    "PushDeadLetters",
    "PushDispatcher",
    "PushProvider",
    "PushRetry",
    "WebPushAdapter",
    "job_notification",
    "user_channel",
]
