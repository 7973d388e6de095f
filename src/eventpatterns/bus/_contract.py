"""The bus backend contract: what memory, Redis, AWS and your own backend implement.

The façade (:class:`~eventpatterns.bus.EventBus`) owns retries, backoff, dead-lettering
decisions, filtering and the per-process fan-out to subscribers; a backend only keeps a
log and per-group delivery state. Every backend must pass
:class:`eventpatterns.testing.BusBackendSuite`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from ..core import Event
from ..errors import ConfigurationError

__all__ = [
    "BusBackend",
    "check_group_name",
    "Capabilities",
    "DeadLetter",
    "Delivery",
    "GroupStats",
    "LogEntry",
    "Position",
]

_GROUP_NAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


def check_group_name(group: object) -> str:
    """Return ``group`` if it is a portable consumer-group name, else raise.

    Names are 1-128 characters of ``A-Z a-z 0-9 . _ -``, so that every backend can use
    them in keys, queue and rule names (Redis, SQS, EventBridge) without escaping.

    Raises:
        ConfigurationError: The name breaks that rule.
    """
    if not isinstance(group, str) or not _GROUP_NAME.fullmatch(group):
        raise ConfigurationError(
            f"group name must be 1-128 characters of A-Z, a-z, 0-9, '.', '_' or '-', got {group!r}"
        )
    return group


#: An opaque, backend-specific place in the log (``"42"`` in memory, a stream id in Redis).
#: Compare positions with :meth:`BusBackend.sort_key`, never as strings.
Position = str


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend guarantees, as data the façade and the tests read.

    Attributes:
        ordering: ``"total"`` when every reader sees the log in one order.
        history: The log keeps history, so ``subscribe(since=...)`` can replay.
        max_message_size: Largest encoded event in bytes, or ``None`` for no limit.
        durable_groups: Consumer-group state survives the process.
        dedupe_window: Seconds within which a repeated event id is not appended again.
    """

    ordering: Literal["total", "partition", "none"] = "total"
    history: bool = True
    max_message_size: int | None = None
    durable_groups: bool = False
    dedupe_window: float = 300.0


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event at its position in the log."""

    position: Position
    event: Event


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event handed to one consumer of a group, until acked or released.

    Attributes:
        receipt: Opaque handle for :meth:`BusBackend.ack` and friends.
        position: Where the event sits in the log.
        event: The event.
        attempt: 1 on the first delivery to the group, +1 on each redelivery.
        last_error: The error recorded by the previous failed attempt, if any.
    """

    receipt: str
    position: Position
    event: Event
    attempt: int
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """An event a group gave up on, with the reason.

    Attributes:
        id: Unique within the group; pass it to ``redrive`` / ``discard``.
        group: The consumer group.
        position: The event's position in the log.
        event: The event.
        error: The last error (``"TypeError: ..."``), or why it was given up on.
        attempts: How many deliveries were made.
        failed_at: When it was dead-lettered (epoch seconds, from the bus clock).
    """

    id: str
    group: str
    position: Position
    event: Event
    error: str
    attempts: int
    failed_at: float


@dataclass(frozen=True, slots=True)
class GroupStats:
    """Counters of one consumer group, as the backend sees it now.

    Attributes:
        pending: Deliveries not acked yet (in flight, or waiting for a retry).
        dead_letters: Entries in the group's dead letters.
        lag: Entries of the log the group has not received yet.
        trimmed_unread: Entries retention trimmed before the group read them.
        lost: Pending entries retention trimmed before they were acked.
        reclaimed: Pending entries taken over from a consumer that stopped
            answering (``0`` where the backend has no such mechanism).

    Nonzero ``trimmed_unread`` or ``lost`` mean ``max_entries`` is too small for how
    far the group falls behind.
    """

    pending: int = 0
    dead_letters: int = 0
    lag: int = 0
    trimmed_unread: int = 0
    lost: int = 0
    reclaimed: int = 0


@runtime_checkable
class BusBackend(Protocol):
    """A durable log plus consumer-group bookkeeping.

    Guarantees every implementation gives (the conformance suite checks each):

    * **Order.** :meth:`append` assigns positions in call order; :meth:`read` returns
      entries in that order; a single consumer of a group first receives entries in
      that order (redeliveries may come later).
    * **Dedupe.** An event whose ``id`` was appended within
      ``capabilities.dedupe_window`` is not appended again; its original position is
      returned.
    * **At-least-once groups.** Every entry appended after a group was created (or
      since its start position) is delivered to one consumer of the group until it
      is acked or dead-lettered. A delivery not acked within its visibility timeout
      becomes receivable again with ``attempt + 1``.
    * **Nothing silently lost.** A read from a position older than the retained
      history raises :class:`~eventpatterns.errors.PositionExpired`.

    All methods may raise :class:`~eventpatterns.errors.BackendUnavailable` when the
    backend cannot be reached; the call then did not complete (an ``append`` may or
    may not have been applied, and may be retried safely thanks to dedupe).
    """

    capabilities: Capabilities

    # -- the log ----------------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> list[Position]:
        """Append events in order and return their positions.

        Raises:
            EventTooLarge: An event exceeds ``capabilities.max_message_size``; no event
                of the call is appended.
        """
        ...

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        """Return up to ``limit`` entries strictly after ``after``, oldest first.

        Args:
            after: A position; ``None`` reads from the oldest retained entry.
            limit: Most entries to return (>= 1).
            wait: When nothing is there yet, wait up to this many seconds (on the
                backend's clock) for new entries before returning an empty list.

        Raises:
            PositionExpired: Entries after ``after`` were already trimmed.
            InvalidPosition: ``after`` is not a position of this backend.
        """
        ...

    async def last_position(self) -> Position | None:
        """Return the newest position in the log, or ``None`` if it is empty."""
        ...

    def sort_key(self, position: Position) -> tuple[int, ...]:
        """Return a key that orders positions as the log does.

        Raises:
            InvalidPosition: ``position`` is not a position of this backend.
        """
        ...

    # -- consumer groups ------------------------------------------------------------------

    async def create_group(self, group: str, *, start: Literal["earliest", "latest"]) -> bool:
        """Create ``group`` if it does not exist; return whether it was created.

        ``"latest"`` delivers entries appended from now on; ``"earliest"`` also the
        retained history. An existing group is left as it is.

        Raises:
            ConfigurationError: ``group`` is not a valid name (see
                :func:`check_group_name`).
        """
        ...

    async def receive(
        self,
        group: str,
        consumer: str,
        *,
        max_count: int,
        visibility_timeout: float,
        wait: float,
    ) -> list[Delivery]:
        """Take up to ``max_count`` deliveries for one consumer of ``group``.

        Redeliveries whose delay or visibility timeout has passed come first, then new
        entries in log order. Each returned delivery stays invisible to other
        consumers for ``visibility_timeout`` seconds.

        Args:
            group: An existing group (see :meth:`create_group`).
            consumer: A name for this consumer (for diagnostics and ownership).
            max_count: Most deliveries to return (>= 1).
            visibility_timeout: Seconds before an unacked delivery is redelivered.
            wait: When nothing is ready, wait up to this many seconds.

        Raises:
            GroupNotFound: The group does not exist.
        """
        ...

    async def ack(self, group: str, receipts: Sequence[str]) -> None:
        """Acknowledge deliveries: they are done for ``group``. Unknown receipts are ignored.

        A backend may queue acknowledgements and send them with its next call for the
        group (the Redis backend sends them with the next ``receive``, saving a round
        trip per batch) and on :meth:`aclose`. Until sent, another process may still
        see the delivery as pending; a crash in between only causes a redelivery, so
        delivery stays at-least-once. A later call on the same backend object never
        sees an acked delivery again.
        """
        ...

    async def release(self, group: str, receipt: str, *, delay: float, error: str) -> None:
        """Give a delivery back: redeliver it after ``delay`` seconds, noting ``error``."""
        ...

    async def dead_letter(self, group: str, receipt: str, *, error: str) -> DeadLetter:
        """Move a delivery to the group's dead letters (and ack it) in one step."""
        ...

    async def dead_letters(self, group: str, *, limit: int) -> list[DeadLetter]:
        """List up to ``limit`` dead letters of ``group``, oldest first."""
        ...

    async def redrive(self, group: str, ids: Sequence[str] | None) -> int:
        """Deliver dead letters to ``group`` again (attempts start over); return how many.

        ``ids=None`` redrives all of them.

        Raises:
            DeadLetterNotFound: One of ``ids`` does not exist; nothing is redriven.
        """
        ...

    async def discard_dead_letters(self, group: str, ids: Sequence[str] | None) -> int:
        """Delete dead letters for good; return how many. ``ids=None`` deletes all.

        Raises:
            DeadLetterNotFound: One of ``ids`` does not exist; nothing is deleted.
        """
        ...

    async def aclose(self) -> None:
        """Release connections. Idempotent; a closed backend raises ``BusClosed``."""
        ...
