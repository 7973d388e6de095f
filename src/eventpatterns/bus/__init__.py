"""The event backbone: publish/subscribe, replay, durable consumer groups, dead letters."""

from ._bus import BACKENDS, EventBus
from ._consumer import Backoff, BatchFailure, Consumer, ConsumerStats
from ._contract import (
    BusBackend,
    Capabilities,
    DeadLetter,
    Delivery,
    GroupStats,
    LogEntry,
    Position,
    check_group_name,
)
from ._matching import SupportsMatch
from ._subscription import EARLIEST, Gap, Overflow, Subscription

__all__ = [
    "BACKENDS",
    "EARLIEST",
    "Backoff",
    "BatchFailure",
    "BusBackend",
    "Capabilities",
    "Consumer",
    "ConsumerStats",
    "DeadLetter",
    "Delivery",
    "EventBus",
    "Gap",
    "GroupStats",
    "LogEntry",
    "Overflow",
    "Position",
    "Subscription",
    "SupportsMatch",
    "check_group_name",
]
