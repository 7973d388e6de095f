"""The bus backend contract: what memory, Redis, AWS and your own backend implement.

The façade (:class:`~eventpatterns.bus.EventBus`) owns retries, backoff, dead-lettering
decisions, filtering and the per-process fan-out to subscribers; a backend only keeps a
log and per-group delivery state. The contract is three small role protocols,
:class:`EventLog`, :class:`ConsumerGroups` and :class:`DeadLetters`, composed with
``from_url`` and ``aclose`` into :class:`BusBackend`; each role has its own suite in
:mod:`eventpatterns.testing` (``EventLogSuite``, ``ConsumerGroupSuite``,
``DeadLetterSuite``; ``BusBackendSuite`` runs all three). The docs page "Writing a
backend" walks through a complete one.

Rules that hold for every method of every role:

* **Concurrency.** Methods may be called concurrently from several tasks of one event
  loop (the bus's reader, each consumer worker, the application); each call must be
  atomic with respect to the others. One backend object is used from one event loop.
* **Clock.** Visibility timeouts, retry delays and the dedupe window follow the
  backend's injected clock (a ``clock`` with ``time()`` and ``async sleep()``, the
  :class:`~eventpatterns.core.Clock` protocol), never the wall clock directly, so tests
  drive them with :class:`~eventpatterns.testing.ManualClock`. ``wait=`` only bounds
  how long a call may block when it has nothing to return (memory measures it on the
  injected clock, Redis's ``BLOCK`` in real time); a call returns as soon as it has
  something, and a waiting ``receive`` must also wake when a redelivery comes due on
  the injected clock.
* **Cancellation.** A call cancelled while it waits (``read(wait=...)``,
  ``receive(wait=...)``) leaves nothing behind: no entry is taken, no delivery is made
  invisible, and the backend stays usable. A call cancelled after it took deliveries
  may leave them pending; they come back after their visibility timeout, as after a
  crash.
* **Unavailability.** Any method may raise
  :class:`~eventpatterns.errors.BackendUnavailable` when the backend cannot be
  reached; the call then did not complete (an ``append`` may or may not have been
  applied, and may be retried safely thanks to dedupe).
* **Closing.** After :meth:`BusBackend.aclose`, every method raises
  :class:`~eventpatterns.errors.BusClosed`; calls blocked in ``wait=`` return.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from ..core import Event
from ..errors import ConfigurationError

__all__ = [
    "BusBackend",
    "ConsumerGroups",
    "DeadLetters",
    "EventLog",
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
#: Compare positions with :meth:`EventLog.sort_key`, never as strings.
Position = str


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend guarantees, as data the façade and the suites read.

    Attributes:
        ordering: ``"total"`` when every reader sees the log in one order (the suites
            check order only then); ``"partition"`` or ``"none"`` otherwise.
        history: The log keeps history, so ``subscribe(since=...)`` can replay and
            ``create_group(start="earliest")`` gets it (the suites skip replay tests
            when it is ``False``).
        max_message_size: Largest encoded event (its JSON, in bytes) ``append``
            accepts, or ``None`` for no limit (the suites check the limit is enforced).
        dedupe_window: Seconds within which a repeated event id is not appended
            again (the suites check it expires).
        unique_appends: ``append`` takes ``dedupe=False``, appending without checking
            or recording the ids (the caller guarantees each is new, as job events'
            ``<job id>.<version>`` are): what the bus passes for events whose ids
            are new by construction (the job tracker's).
    """

    ordering: Literal["total", "partition", "none"] = "total"
    history: bool = True
    max_message_size: int | None = None
    dedupe_window: float = 300.0
    unique_appends: bool = False


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One event at its position in the log."""

    position: Position
    event: Event


@dataclass(frozen=True, slots=True)
class Delivery:
    """An event handed to one consumer of a group, until acked or released.

    Attributes:
        receipt: Opaque handle for :meth:`ConsumerGroups.ack` and friends.
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
        id: Unique within the group; pass it to ``redrive`` /
            ``discard_dead_letters``.
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
class EventLog(Protocol):
    """The log: an append-only, ordered, bounded sequence of events.

    Guarantees (checked by :class:`~eventpatterns.testing.EventLogSuite`):

    * **Order.** :meth:`append` assigns positions in call order; :meth:`read` returns
      entries in that order.
    * **Dedupe.** An event whose ``id`` was appended within
      ``capabilities.dedupe_window`` is not appended again; its original position is
      returned.
    * **Nothing silently lost.** A read from a position older than the retained
      history raises :class:`~eventpatterns.errors.PositionExpired`.
    """

    capabilities: Capabilities

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
            wait: When nothing is there yet, wait up to about this many seconds for
                new entries before returning an empty list (see "Clock" above).

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

        A plain call that does no I/O: it checks the position's form and epoch against
        what this backend object knows, not whether the position lies beyond the end of
        the log (:meth:`read` checks that, where it can see the whole log).

        Raises:
            InvalidPosition: ``position`` is not a position of this backend.
            StalePosition: ``position`` has another epoch than the log, as far as this
                backend object has seen it.
        """
        ...


@runtime_checkable
class ConsumerGroups(Protocol):
    """Durable competing consumers: per-group cursors, pending deliveries, acks.

    Guarantees (checked by :class:`~eventpatterns.testing.ConsumerGroupSuite`):

    * **At-least-once.** Every entry appended after a group was created (or since its
      start position) is delivered to one consumer of the group until it is acked or
      dead-lettered. A delivery not acked within its visibility timeout becomes
      receivable again with ``attempt + 1``.
    * **Order.** A single consumer of a group first receives entries in log order
      (redeliveries may come later).
    * **Receipts.** A receipt names one delivery. ``ack`` and ``release`` of a
      receipt the backend does not know (already acked, dead-lettered, or never
      issued) do nothing and raise nothing: a late ack after a redelivery is
      harmless. ``dead_letter`` of one raises ``LookupError``.

    The façade decides retries and dead letters (see
    :class:`~eventpatterns.bus.DeliveryAttempt`); the backend only records them.
    """

    async def create_group(self, group: str, *, start: Literal["earliest", "latest"]) -> bool:
        """Create ``group`` if it does not exist; return whether it was created.

        ``"latest"`` delivers entries appended from now on; ``"earliest"`` also the
        retained history. An existing group is left as it is.

        Raises:
            ConfigurationError: ``group`` is not a valid name (see
                :func:`check_group_name`), or ``start`` is neither value.
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
            wait: When nothing is ready, wait up to about this many seconds for a
                new entry, a release or a redelivery that comes due (on the injected
                clock); ``0`` returns at once. Cancelled while waiting, it takes
                nothing.

        Raises:
            GroupNotFound: The group does not exist.
        """
        ...

    async def ack(self, group: str, receipts: Sequence[str]) -> None:
        """Acknowledge deliveries: they are done for ``group``. Unknown receipts are ignored.

        A backend may queue acknowledgements and send them with its next call for the
        group (the Redis backend sends them with the next ``receive``, saving a round
        trip per batch) and on :meth:`BusBackend.aclose`. Until sent, another process
        may still see the delivery as pending; a crash in between only causes a
        redelivery, so delivery stays at-least-once. A later call on the same backend
        object (``group_stats`` included) never sees an acked delivery again.

        Raises:
            GroupNotFound: The group does not exist.
        """
        ...

    async def release(self, group: str, receipt: str, *, delay: float, error: str) -> None:
        """Give a delivery back: redeliver it after ``delay`` seconds, noting ``error``.

        The redelivery carries ``attempt + 1`` and ``last_error=error``. An unknown
        receipt is ignored.
        """
        ...

    async def group_stats(self, group: str) -> GroupStats:
        """Return the group's counters (see :class:`GroupStats`).

        ``pending == 0 and lag == 0`` means every entry appended so far was acked or
        dead-lettered by the group: :meth:`Consumer.drain
        <eventpatterns.bus.Consumer.drain>` waits for that.

        Raises:
            GroupNotFound: The group does not exist.
        """
        ...


@runtime_checkable
class DeadLetters(Protocol):
    """Per-group dead letters: what a group gave up on, to list, redrive or discard.

    Guarantees (checked by :class:`~eventpatterns.testing.DeadLetterSuite`): a dead
    letter keeps the event, the last error and the attempt count; redriving delivers
    it again with attempts starting over; ids are checked before anything changes.
    Every method raises :class:`~eventpatterns.errors.GroupNotFound` for a group that
    does not exist.
    """

    async def dead_letter(self, group: str, receipt: str, *, error: str) -> DeadLetter:
        """Move a delivery to the group's dead letters (and ack it) in one step.

        Raises:
            LookupError: ``receipt`` is not a pending delivery of the group.
        """
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


@runtime_checkable
class BusBackend(EventLog, ConsumerGroups, DeadLetters, Protocol):
    """A complete bus backend: the three roles, plus construction and closing.

    Every implementation passes :class:`~eventpatterns.testing.BusBackendSuite`.
    The rules in this module's docstring (concurrency, clock, cancellation,
    unavailability, closing) apply to every method.
    """

    @classmethod
    def from_url(cls, url: str, **options: Any) -> BusBackend:
        """Build the backend from a URL (``EventBus.from_url`` calls this).

        Register the scheme in :data:`~eventpatterns.bus.BACKENDS` to make
        ``EventBus.from_url("myscheme://...")`` find it.

        Raises:
            ConfigurationError: Not a URL of this backend, or a bad option.
        """
        ...

    async def aclose(self) -> None:
        """Release connections and wake blocked calls. Idempotent.

        A closed backend raises :class:`~eventpatterns.errors.BusClosed` from every
        other method.
        """
        ...
