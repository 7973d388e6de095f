"""The event backbone: publish/subscribe, replay, durable consumer groups, dead letters."""

from ._bus import BACKENDS, EventBus
from ._claims import DATAREF, ClaimCheck
from ._consumer import BatchFailure, Consumer, ConsumerStats, Timeouts
from ._contract import (
    BusBackend,
    Capabilities,
    ConsumerGroups,
    DeadLetter,
    DeadLetters,
    Delivery,
    EventLog,
    GroupStats,
    LogEntry,
    Position,
    check_group_name,
)
from ._matching import SupportsMatch
from ._reader import Sink
from ._retry import (
    Ack,
    Backoff,
    Decision,
    DeliveryAttempt,
    DeliveryState,
    GiveUp,
    Retry,
    RetryAfter,
    decide,
)
from ._subscription import EARLIEST, Gap, Overflow, Subscription
from ._typed import InvalidHook, TypedSubscription

__all__ = [
    "BACKENDS",
    "DATAREF",
    "EARLIEST",
    "Ack",
    "Backoff",
    "BatchFailure",
    "BusBackend",
    "Capabilities",
    "ClaimCheck",
    "Consumer",
    "ConsumerGroups",
    "ConsumerStats",
    "DeadLetter",
    "DeadLetters",
    "Decision",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryState",
    "EventBus",
    "EventLog",
    "Gap",
    "GiveUp",
    "GroupStats",
    "InvalidHook",
    "LogEntry",
    "Overflow",
    "Position",
    "Retry",
    "RetryAfter",
    "Sink",
    "Subscription",
    "SupportsMatch",
    "Timeouts",
    "TypedSubscription",
    "check_group_name",
    "decide",
]
