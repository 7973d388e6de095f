"""Push notifications: a device registry, Web Push / FCM / APNs providers, a dispatcher.

See ``docs/push.md``.
"""

from ._auth import Mint, TokenAuth
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult

__all__ = [
    "DeadToken",
    "Delivered",
    "Mint",
    "PermanentFailure",
    "RetryLater",
    "SendResult",
    "TokenAuth",
]
