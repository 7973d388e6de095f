"""The live tap: one SQS queue and rule per backend object, and a window of what it saw.

AWS keeps no log to read by position (an EventBridge archive replays into the bus
for everyone, hours late; a DynamoDB table of events would cost a write per event and
still have no total order). What a subscriber needs is the stream from now on: the tap
is a queue of this backend object's own, fed by a rule matching every CloudEvent of
the bus, opened by the first ``last_position()`` and removed by ``aclose()``.

Entries it receives get positions of this object, in arrival order, and stay in a
bounded in-memory window (``window`` entries), so that ``read(after)`` from any
position in it is served without taking entries from another reader: a subscriber of
this process resuming from its own recent position replays with no gap and no
duplicate. Anything older, or from another process, raises
:class:`~eventpatterns.errors.PositionExpired` saying there is no history.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import anyio

from ...bus._contract import LogEntry, Position
from ...errors import PositionExpired
from ._bus_leases import delete_messages, receive_slice
from ._client import ClientPool
from ._eventbridge import decode_envelope
from ._patterns import MATCH_ALL
from ._sqs import GroupResources

__all__ = ["LiveTap", "no_history"]

logger = logging.getLogger("eventpatterns.bus.aws")
_WHERE = "the bus's live tap"


def no_history(position: str | None) -> PositionExpired:
    """The error for a replay this backend cannot serve (it keeps no history)."""
    exc = PositionExpired(str(position), oldest=None)
    exc.args = (
        f"resync required: the aws:// bus keeps no history (capabilities.history is False), "
        f"so it cannot replay from {position!r}; only positions this process received "
        "recently can be resumed from. Subscribe without since= and take the current "
        "state from your own store",
    )
    return exc


class LiveTap:
    """The tap's queue and rule, and the window of entries it received.

    Args:
        pool: The clients.
        prefix: Resource name prefix.
        epoch: The backend object's epoch (names the queue and rule).
        bus: The event bus.
        next_position: Hands out this backend object's next position.
        window: Most received entries kept for ``read(after)``.
    """

    def __init__(
        self,
        pool: ClientPool,
        *,
        prefix: str,
        epoch: str,
        bus: str,
        next_position: Callable[[], Position],
        window: int = 10_000,
    ) -> None:
        self.pool = pool
        self.bus = bus
        self.resources = GroupResources.named(prefix, f"tap-{epoch}")
        self.start: Position | None = None
        self._next_position = next_position
        self._entries: deque[LogEntry] = deque(maxlen=window)
        # Fetch at most half the window at a time, so that the position a reader read
        # on from is still held after the fetch.
        self._fetch_size = max(1, min(100, window // 2))
        self._index: dict[Position, int] = {}  # position -> absolute index
        self._base = 0  # absolute index of _entries[0]
        self._open_lock = anyio.Lock()
        self._fetch_lock = anyio.Lock()

    async def open(self) -> Position:
        """Create the queue and rule (once); return the position reading starts after."""
        async with self._open_lock:
            if self.start is None:
                await self.resources.create(
                    self.pool, bus=self.bus, pattern=MATCH_ALL, max_receives=1000
                )
                self.start = self._next_position()
        return self.start

    @property
    def last(self) -> Position | None:
        """The newest position received, or the start when nothing came yet."""
        return self._entries[-1].position if self._entries else self.start

    def _after(self, after: Position) -> list[LogEntry] | None:
        """Entries after ``after`` held in the window, or ``None`` if it is not there."""
        if after == self.start and self._base == 0:
            first = 0
        elif after in self._index:
            first = self._index[after] + 1 - self._base
        else:
            return None
        return list(self._entries)[first:]

    async def read(
        self, after: Position, *, limit: int, wait: float, poll: int, closed: Callable[[], None]
    ) -> list[LogEntry]:
        """Return up to ``limit`` entries after ``after``, fetching from SQS when none are held.

        Raises:
            PositionExpired: ``after`` is not in the window.
        """
        held = self._after(after)
        if held is None:
            raise no_history(after)
        if held:
            return held[:limit]
        if wait <= 0 and self._fetch_lock.locked():
            return []  # the live reader is fetching; what it gets reaches subscribers live
        deadline = anyio.current_time() + wait
        async with self._fetch_lock:
            while True:
                closed()
                held = self._after(after)
                if held is None:
                    raise no_history(after)
                if held:
                    return held[:limit]
                remaining = deadline - anyio.current_time()
                slice_ = 0 if remaining <= 0 else int(min(poll, max(1, remaining)))
                await self._fetch(limit, slice_)
                if not self._after(after) and anyio.current_time() >= deadline:
                    return []

    async def _fetch(self, limit: int, wait: int) -> None:
        messages = await receive_slice(
            self.pool, self.resources.queue_url, max_count=min(limit, self._fetch_size),
            visibility=30, wait=wait, resource=_WHERE,
        )  # fmt: skip
        if not messages:
            return
        await delete_messages(
            self.pool, self.resources.queue_url, [m["ReceiptHandle"] for m in messages],
            resource=_WHERE,
        )  # fmt: skip
        for message in messages:
            try:
                _, event = decode_envelope(message["Body"])
            except Exception:
                logger.warning("aws:// tap: skipped a message that is not a CloudEvent envelope")
                continue
            self._hold(LogEntry(self._next_position(), event))

    def _hold(self, entry: LogEntry) -> None:
        entries = self._entries
        if entries.maxlen is not None and len(entries) == entries.maxlen:
            gone = entries.popleft()
            del self._index[gone.position]
            self._base += 1
        self._index[entry.position] = self._base + len(entries)
        entries.append(entry)

    async def close(self) -> None:
        """Remove the queue and rule (if they were created)."""
        if self.start is not None:
            await self.resources.delete(self.pool, bus=self.bus)
