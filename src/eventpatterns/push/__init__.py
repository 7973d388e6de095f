"""Push notifications: a device registry, Web Push / FCM / APNs providers, a dispatcher.

See ``docs/push.md``.
"""

from ._auth import Mint, TokenAuth
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult
from ._vapid import Vapid, VapidClaims, VapidKeys, verify_vapid
from ._webpush import WebPushProvider, WebPushUrgency
from ._webpush_subscription import WebPushSubscription

__all__ = [
    "Vapid",
    "VapidClaims",
    "VapidKeys",
    "WebPushProvider",
    "WebPushSubscription",
    "WebPushUrgency",
    "verify_vapid",
    "DeadToken",
    "Delivered",
    "Mint",
    "PermanentFailure",
    "RetryLater",
    "SendResult",
    "TokenAuth",
]
