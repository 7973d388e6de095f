"""The AWS bus backend: EventBridge to publish, SQS queues per consumer group.

See ``docs/backends.md`` ("AWS") for the resources it creates, its costs and the IAM
permissions it needs, and :class:`AWSBusBackend` for what differs from Redis.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Sequence
from typing import Any

import anyio

from ...bus._contract import (
    Capabilities,
    LogEntry,
    Position,
)
from ...core import Clock, Event, SystemClock
from ...errors import (
    BusClosed,
    ConfigurationError,
    EventTooLarge,
    InvalidPosition,
    StalePosition,
)
from ._bus_dlq import DeadLetterQueue
from ._bus_groups import SQSGroups
from ._bus_leases import Leases
from ._bus_tap import LiveTap, no_history
from ._bus_url import check_option, parse_bus_url
from ._client import AWSUnavailable, ClientPool, aws_errors, error_code
from ._eventbridge import (
    MAX_REQUEST,
    DedupeTable,
    Entry,
    check_size,
    put_entries,
)
from ._sqs import GroupResources

__all__ = ["AWSBusBackend"]

logger = logging.getLogger("eventpatterns.bus.aws")

#: Largest event JSON by default: an entry's 256 KiB less room for Source, DetailType
#: and the position in Resources (EventBridge counts them all).
DEFAULT_MAX_MESSAGE_SIZE = 256 * 1024 - 1024


class AWSBusBackend(SQSGroups, DeadLetterQueue):
    """A bus on EventBridge and SQS, with dedupe in DynamoDB.

    * **Publish:** ``PutEvents``, 10 entries and 256 KiB per request; the CloudEvent
      whole in ``Detail``, ``Source``/``DetailType`` mirrored, its position in
      ``Resources``. Dedupe: one DynamoDB conditional ``PutItem`` per event id.
    * **Groups:** an EventBridge rule per group targeting its SQS queue, with a
      redrive policy to its DLQ after ``max_receives`` receives (the crash safety
      net: the façade dead-letters at ``Retry.max_attempts`` itself).
    * **Live subscriptions:** a queue and rule of this backend object (the *tap*),
      opened by the first :meth:`last_position` and removed by :meth:`aclose`.
      There is no history: ``read`` only goes on from the tap's cursor, and every
      other position raises :class:`~eventpatterns.errors.PositionExpired` saying so.
    * **Ordering:** none (SQS standard queues); positions are local to this object.

    Args:
        region: AWS region (``None``: botocore's default chain).
        bus: EventBridge event bus name (created if missing, unless ``"default"``).
        prefix: Starts every queue, rule and table name.
        endpoint_url: Another endpoint (moto, LocalStack).
        dedupe_window: Seconds an event id is remembered.
        max_message_size: Largest event JSON accepted (at most 255 KiB).
        max_receives: Receives before SQS itself moves a message to the DLQ.
        poll: Longest single SQS long poll, in seconds: bounds how late a
            cancellation or ``aclose`` takes effect (each costs one request).
        window: Live entries this object keeps, so that its subscribers can resume
            from a recent position of theirs (see ``_bus_tap``).
        clock: Time source for visibility, delays and the dedupe window.
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        bus: str = "default",
        prefix: str = "eventpatterns",
        endpoint_url: str | None = None,
        dedupe_window: float = 300.0,
        max_message_size: int | None = DEFAULT_MAX_MESSAGE_SIZE,
        max_receives: int = 10,
        poll: int = 5,
        window: int = 10_000,
        clock: Clock | None = None,
    ) -> None:
        given = {"region": region, "bus": bus, "prefix": prefix, "endpoint_url": endpoint_url,
                 "dedupe_window": dedupe_window, "max_receives": max_receives, "poll": poll,
                 "window": window}  # fmt: skip
        for key, value in given.items():
            if value is not None:
                check_option(key, value)
        if max_message_size is None or not 0 < max_message_size <= DEFAULT_MAX_MESSAGE_SIZE:
            raise ConfigurationError(
                f"max_message_size must be 1..{DEFAULT_MAX_MESSAGE_SIZE} bytes on aws:// "
                f"(EventBridge takes 256 KiB per entry), got {max_message_size!r}"
            )
        self.clock: Clock = clock or SystemClock()
        self.capabilities = Capabilities(
            ordering="none",
            history=False,
            max_message_size=max_message_size,
            dedupe_window=float(dedupe_window),
        )
        self.bus = bus
        self.prefix = prefix
        self.epoch = secrets.token_hex(4)
        self.pool = ClientPool(region=region, endpoint_url=endpoint_url)
        self.max_receives = int(max_receives)
        self.poll = int(poll)
        self.dedupe = DedupeTable(
            self.pool, f"{prefix}-dedupe", window=float(dedupe_window), clock=self.clock
        )
        self.leases = Leases()
        self._groups: dict[str, GroupResources] = {}
        self._seq = 0
        self._bus_ready = bus == "default"
        self.tap = LiveTap(
            self.pool,
            prefix=prefix,
            epoch=self.epoch,
            bus=bus,
            next_position=self._next_position,
            window=int(window),
        )
        self._inflight = 0
        self._closed = False
        super().__init__()

    @classmethod
    def from_url(cls, url: str, **options: Any) -> AWSBusBackend:
        """Build from ``aws://?region=eu-west-1&bus=orders&prefix=myapp``.

        The query takes ``region``, ``bus``, ``prefix``, ``endpoint_url``,
        ``dedupe_window``, ``max_message_size``, ``max_receives``, ``poll`` and
        ``window``;
        keyword ``options`` (``clock`` too) win over it.

        Raises:
            ConfigurationError: Not an ``aws://`` URL, or a bad or unknown option.
        """
        return cls(**{**parse_bus_url(url), **options})

    # -- shared -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed("the aws:// bus backend is closed")

    def _next_position(self) -> Position:
        self._seq += 1
        return f"{self.epoch}:{self._seq}"

    async def _ensure_bus(self) -> None:
        if self._bus_ready:
            return
        events = await self.pool.client("events")
        try:
            with aws_errors("CreateEventBus", resource=f"event bus {self.bus!r}"):
                await events.create_event_bus(Name=self.bus)
        except ConfigurationError as exc:
            if error_code(exc.__cause__ or exc) != "ResourceAlreadyExistsException":
                raise
        self._bus_ready = True

    # -- the log ----------------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> list[Position]:
        """Publish events; return their positions (an id seen in the window: its first).

        Raises:
            EventTooLarge: An event's JSON is over ``max_message_size`` or its entry
                over EventBridge's 256 KiB; nothing of the call is published.
            AWSUnavailable: Some entries could not be published (their dedupe records
                are removed, so the call can be retried as a whole).
        """
        self._check_open()
        limit = self.capabilities.max_message_size or DEFAULT_MAX_MESSAGE_SIZE
        entries: list[Entry] = []
        for event in events:
            check_size(event, limit=limit)
            entry = Entry(event, "", self.bus)
            if entry.size > MAX_REQUEST - 100:
                raise EventTooLarge(event.id, size=entry.size, limit=MAX_REQUEST - 100)
            entries.append(entry)
        await self.dedupe.ensure()
        await self._ensure_bus()
        positions: list[Position] = []
        first: dict[str, Position] = {}
        fresh: list[tuple[int, Entry]] = []
        for entry in entries:
            if entry.event.id in first:
                positions.append(first[entry.event.id])
                continue
            position = self._next_position()
            first[entry.event.id] = position
            positions.append(position)
            fresh.append((len(positions) - 1, Entry(entry.event, position, self.bus)))
        seen: dict[int, str | None] = {}

        async def claim(index: int, entry: Entry) -> None:
            seen[index] = await self.dedupe.claim(entry.event.id, entry.position)

        async with anyio.create_task_group() as tg:
            for index, entry in fresh:
                tg.start_soon(claim, index, entry)
        to_send = []
        for index, entry in fresh:
            earlier = seen[index]
            if earlier is None:
                to_send.append(entry)
            else:
                positions = [earlier if p == entry.position else p for p in positions]
        await self._publish(to_send)
        return positions

    async def _publish(self, entries: list[Entry]) -> None:
        try:
            failed = await put_entries(self.pool, entries, bus=self.bus)
        except AWSUnavailable as exc:
            unsent: list[Entry] = getattr(exc, "unsent", entries)
            with anyio.CancelScope(shield=True):
                await self.dedupe.forget([e.event.id for e in unsent])
            raise
        if failed:
            with anyio.CancelScope(shield=True):
                await self.dedupe.forget([e.event.id for e in failed])
            reason = failed[0].error
            raise AWSUnavailable(
                f"AWS PutEvents on event bus {self.bus!r}: {len(failed)} of {len(entries)} "
                f"entries were not published (first: {reason}); none of them is recorded "
                "as seen, so publishing them again is safe",
                code=str(reason).partition(":")[0],
                operation="PutEvents",
            )

    def sort_key(self, position: Position) -> tuple[int, ...]:
        """Order positions of this backend object (``"<epoch>:<n>"``).

        Raises:
            InvalidPosition: Not of that form.
            StalePosition: Another backend object's (each has its own epoch).
        """
        expected = "'<epoch>:<n>' from this aws:// backend"
        if not isinstance(position, str):
            raise InvalidPosition(position, expected=expected)
        epoch, sep, local = position.partition(":")
        if not sep or not epoch or not local.isascii() or not local.isdigit():
            raise InvalidPosition(position, expected=expected)
        if epoch != self.epoch:
            raise StalePosition(position, epoch=self.epoch)
        return (int(local),)

    async def last_position(self) -> Position | None:
        """Open this object's live tap (if needed) and return its newest position.

        Reading after it returns what reaches the tap from then on.
        """
        self._check_open()
        await self._ensure_bus()
        await self.tap.open()
        return self.tap.last

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        """Return entries the live tap received after ``after`` (see ``_bus_tap``).

        Raises:
            PositionExpired: ``after`` is ``None`` or not a recent position of this
                object's tap: there is no history.
            InvalidPosition: Malformed, or beyond the end of this object's positions.
            StalePosition: Another backend object's position.
        """
        self._check_open()
        if after is None:
            await anyio.lowlevel.checkpoint()  # a caller retrying at once stays cancellable
            raise no_history(after)
        (seq,) = self.sort_key(after)
        if seq > self._seq:
            raise InvalidPosition(after, expected="a position not beyond the end of the log")
        self._inflight += 1
        try:
            return await self.tap.read(
                after, limit=limit, wait=wait, poll=self.poll, closed=self._check_open
            )
        finally:
            self._inflight -= 1

    # -- closing ----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Wake blocked calls, remove the tap's rule and queue, close the clients."""
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self.poll + 1):
                while self._inflight:  # noqa: ASYNC110 - they end at their poll's end
                    await anyio.sleep(0.02)
            with anyio.move_on_after(10):
                try:
                    await self.tap.close()
                except Exception as exc:
                    logger.warning("aws:// bus: could not remove the live tap: %s", exc)
            await self.pool.aclose()
