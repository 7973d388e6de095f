"""Push notifications: a device registry, Web Push / FCM / APNs providers, a dispatcher.

See ``docs/push.md``.
"""

from ._apns import APNsProvider
from ._apns_message import APNsMessage, PushType
from ._auth import Mint, TokenAuth
from ._fcm import FCMProvider
from ._fcm_message import FCMMessage
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult

__all__ = [
    "APNsMessage",
    "APNsProvider",
    "DeadToken",
    "Delivered",
    "FCMMessage",
    "FCMProvider",
    "Mint",
    "PermanentFailure",
    "PushType",
    "RetryLater",
    "SendResult",
    "TokenAuth",
]
