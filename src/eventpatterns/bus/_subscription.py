"""Live subscriptions: bounded local buffers fed by the bus's shared reader."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import anyio

from ..core import Event
from ..errors import ConfigurationError, SubscriberOverflow
from ._contract import BusBackend, LogEntry, Position
from ._matching import SupportsMatch

if TYPE_CHECKING:
    from ._bus import EventBus

__all__ = ["EARLIEST", "Gap", "Overflow", "Subscription"]

#: ``subscribe(since=EARLIEST)`` replays the whole retained history first.
EARLIEST = "earliest"

#: What a subscriber that falls ``buffer`` events behind gets.
Overflow = Literal["drop_oldest", "disconnect"]


@dataclass(frozen=True, slots=True)
class Gap:
    """In-band signal that a slow subscriber missed events (``overflow="drop_oldest"``).

    Attributes:
        missed: How many matching events were dropped, or ``None`` when unknown
            (the bus's own reader fell behind the backend's retention).
        after: Position of the last event delivered before the gap; resubscribe with
            ``since=after`` to fetch what was missed, while history lasts.
    """

    missed: int | None
    after: Position | None


class Subscription:
    """A live stream of matching events, optionally replaying history first.

    Use it as an async context manager, then iterate. Items are :class:`Event`, or a
    :class:`Gap` when the subscriber fell behind and events were dropped.

    Example:
        >>> async def main():  # doctest: +SKIP
        ...     async with EventBus.from_url("memory://") as bus:
        ...         async with bus.subscribe({"type": ["order.created"]}) as sub:
        ...             async for item in sub:
        ...                 print(item)
    """

    def __init__(
        self,
        bus: EventBus,
        matcher: SupportsMatch | None,
        *,
        since: Position | None,
        buffer: int,
        overflow: Overflow,
        replay_page: int = 500,
    ) -> None:
        if buffer < 1:
            raise ConfigurationError(f"buffer must be at least 1, got {buffer}")
        if overflow not in ("drop_oldest", "disconnect"):
            raise ConfigurationError(
                f"overflow must be 'drop_oldest' or 'disconnect', got {overflow!r}"
            )
        self._bus = bus
        self._backend: BusBackend = bus.backend
        self._matcher = matcher
        self._since = since
        self._maxlen = buffer
        self._overflow = overflow
        self._page_size = replay_page
        self._buf: deque[LogEntry] = deque()
        self._waiter: anyio.Event | None = None
        self._missed = 0
        self._unknown_gap = False
        self._overflowed = False
        self._closed = False
        self._entered = False
        self._replaying = since is not None
        self._replay_dropped = False
        self._fast = since is None  # live, no gap to report, nothing to skip
        self._page: deque[LogEntry] = deque()
        self._skip_key: tuple[int, ...] | None = None
        start = None if since == EARLIEST else since
        self._replay_cursor: Position | None = start
        #: The log position this subscription has reached: resubscribe with
        #: ``since=sub.position`` to resume without a gap or a duplicate.
        self.position: Position | None = start
        #: How many events were dropped for this subscriber in total.
        self.dropped = 0

    # -- called by the hub ------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def _push_many(self, entries: list[LogEntry]) -> None:
        buf = self._buf
        if len(buf) + len(entries) <= self._maxlen:
            buf.extend(entries)
        else:
            for entry in entries:
                if len(buf) >= self._maxlen:
                    if self._replaying:
                        buf.popleft()  # still in the log: the replay reads it again
                        self._replay_dropped = True
                    elif self._overflow == "drop_oldest":
                        buf.popleft()
                        self._missed += 1
                        self.dropped += 1
                        self._fast = False
                    else:
                        self._overflowed = True
                        self._detach()
                        break
                buf.append(entry)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def _gap(self) -> None:
        """The bus's reader lost entries (it fell behind retention)."""
        if self._replaying:
            self._replay_dropped = True  # the replay re-reads the log (or hears it expired)
        elif self._overflow == "disconnect":
            self._overflowed = True
            self._detach()
        else:
            self._unknown_gap = True
            self._fast = False
        self._wake()

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Subscription:
        if self._entered:
            raise RuntimeError("a Subscription can be entered only once")
        self._entered = True
        hub = await self._bus._ensure_hub()
        hub.subs.append(self)  # buffer live entries from now on, before replay starts
        if self._since is not None:
            try:
                if self.position is not None:
                    self._skip_key = self._backend.sort_key(self.position)
                await self._fill_page()  # raises PositionExpired now, not at first read
            except BaseException:
                self._detach()
                raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop receiving; iteration ends. Idempotent."""
        self._closed = True
        self._detach()
        self._wake()
        await anyio.lowlevel.checkpoint()

    def _detach(self) -> None:
        hub = self._bus._hub
        if hub is not None and self in hub.subs:
            hub.subs.remove(self)

    def _end(self) -> None:
        """Called by the bus when it closes."""
        self._closed = True
        self._wake()

    # -- iteration ----------------------------------------------------------------------

    def __aiter__(self) -> Subscription:
        return self

    async def _fill_page(self) -> bool:
        self._replay_dropped = False
        page = await self._backend.read(self.position, limit=self._page_size)
        if not page:
            return False
        matcher = self._matcher
        for entry in page:
            if matcher is None or matcher.matches(entry.event.to_dict()):
                self._page.append(entry)
        self._replay_cursor = page[-1].position
        return True

    async def __anext__(self) -> Event | Gap:
        buf = self._buf
        if buf and self._fast:
            entry = buf.popleft()
            self.position = entry.position
            return entry.event
        return await self._next_slow()

    async def _next_slow(self) -> Event | Gap:
        if not self._entered:
            raise RuntimeError(
                "enter the subscription first: `async with bus.subscribe(...) as sub:`"
            )
        while self._replaying:
            if self._page:
                entry = self._page.popleft()
                self.position = entry.position
                return entry.event
            if self._closed:
                raise StopAsyncIteration
            self.position = self._replay_cursor
            if await self._fill_page() or self._replay_dropped:
                continue
            # Caught up: go live, skipping buffered entries the replay already covered.
            self._replaying = False
            self._skip_key = self._backend.sort_key(self.position) if self.position else None
        while True:
            self._fast = self._skip_key is None and not self._missed and not self._unknown_gap
            if self._unknown_gap:
                self._unknown_gap = False
                self._missed = 0
                return Gap(None, self.position)
            if self._missed:
                missed, self._missed = self._missed, 0
                return Gap(missed, self.position)
            buf = self._buf
            if buf:
                entry = buf.popleft()
                if self._skip_key is not None:
                    if self._backend.sort_key(entry.position) <= self._skip_key:
                        continue
                    self._skip_key = None
                self.position = entry.position
                return entry.event
            if self._overflowed:
                self._fast = False
                raise SubscriberOverflow(buffer=self._maxlen, position=self.position)
            if self._closed:
                raise StopAsyncIteration
            waiter = self._waiter = anyio.Event()
            await waiter.wait()
