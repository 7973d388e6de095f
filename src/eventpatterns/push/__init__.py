"""Push notifications: a device registry, Web Push / FCM / APNs providers, fatigue controls.

See ``docs/push.md``.
"""

from ._auth import Mint, TokenAuth
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
from ._notification import Notification, Urgency
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult

__all__ = [
    "Bucket",
    "Budget",
    "DeadToken",
    "Delivered",
    "FatiguePolicy",
    "Mint",
    "Notification",
    "PermanentFailure",
    "QuietHours",
    "Release",
    "RetryLater",
    "SendResult",
    "TokenAuth",
    "Urgency",
    "UserFatigue",
    "admit",
    "release",
]
