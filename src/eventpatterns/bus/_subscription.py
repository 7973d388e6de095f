"""Live subscriptions: the I/O around a :class:`~eventpatterns.bus._replay.ReplayMerge`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import anyio.lowlevel

from ..core import Event
from ..errors import BusClosed, ConfigurationError, EventsMissed, InvalidState, SubscriptionClosed
from ..observability._metrics import metrics
from ._contract import LogEntry, Position
from ._matching import SupportsMatch, as_matcher
from ._reader import LogReader
from ._replay import Gap, Need, Overflow, ReplayMerge, State

__all__ = ["EARLIEST", "Gap", "Overflow", "Subscription"]

#: ``subscribe(since=EARLIEST)`` replays the whole retained history first.
EARLIEST = "earliest"

_MATCHED = metrics.counter("eventpatterns_bus_matched_total")
_OVERFLOW = metrics.counter("eventpatterns_bus_dropped_total", reason="overflow")


class _Tap:
    """The :class:`~eventpatterns.bus._reader.Sink` a subscription attaches to the reader."""

    __slots__ = ("matcher", "merge", "reader", "waiter")

    def __init__(self, matcher: SupportsMatch | None, merge: ReplayMerge, reader: LogReader):
        self.matcher = matcher
        self.merge = merge
        self.reader = reader
        self.waiter: anyio.Event | None = None

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            waiter.set()

    def push(self, entries: list[LogEntry], /) -> None:
        merge = self.merge
        missed = merge.missed
        merge.push(entries)
        _MATCHED.inc(len(entries))
        if merge.missed != missed:
            _OVERFLOW.inc(merge.missed - missed)
        if merge.state is State.OVERFLOWED:
            _OVERFLOW.inc(len(entries))  # disconnect: this batch is not held
            self.reader.detach(self)
        waiter = self.waiter  # wake(), inlined: this runs once per batch per subscriber
        if waiter is not None:
            self.waiter = None
            waiter.set()

    def lost(self) -> None:
        self.merge.lost()
        if self.merge.state is State.OVERFLOWED:
            self.reader.detach(self)
        self.wake()

    def end(self) -> None:
        self.merge.end()
        self.wake()


class Subscription:
    """A live stream of matching events, optionally replaying history first.

    Enter it with ``async with``, then call :meth:`receive` or iterate: ``async for
    event in sub`` yields :class:`~eventpatterns.Event` and ends when the subscription
    or its bus closes. A gap (events dropped for a slow subscriber) is never silent:
    it raises :class:`~eventpatterns.errors.EventsMissed` out of ``receive()`` and out
    of the loop; the subscription stays usable, so catch it and iterate again. Code
    that prefers gaps in-band iterates :meth:`items` instead, which yields
    :class:`Gap` objects where events were missed.

    One task receives at a time. A subscription can be driven without a bus, by a
    :class:`~eventpatterns.bus._reader.LogReader` of any backend.

    Args:
        reader: The bus's shared log reader.
        pattern: An EventBridge pattern (``dict``), a matcher, or ``None`` for all.
        since: Replay events after this position first (:data:`EARLIEST`: all
            retained history), then go live with no gap and no duplicate.
        buffer: Most undelivered live events held.
        overflow: When the buffer is full: ``"drop_oldest"`` or ``"disconnect"``.
        replay_page: Entries read from the log per replay call.

    Raises:
        ConfigurationError: A bad ``buffer``, ``overflow`` or pattern type.
        InvalidPattern: The pattern cannot be compiled.

    Example:
        ```python
        import anyio
        from eventpatterns import Event, EventBus


        async def main() -> None:
            async with EventBus.from_url("memory://") as bus:
                async with bus.subscribe({"type": ["order.created"]}) as sub:
                    await bus.publish(Event(type="order.created", source="/shop", data=1))
                    event = await sub.receive()
                    print(event.data)


        anyio.run(main)
        ```
    """

    def __init__(
        self,
        reader: LogReader,
        pattern: SupportsMatch | Mapping[str, Any] | None = None,
        *,
        since: Position | None = None,
        buffer: int = 1000,
        overflow: Overflow = "drop_oldest",
        replay_page: int = 500,
    ) -> None:
        if not isinstance(buffer, int) or buffer < 1:
            raise ConfigurationError(f"buffer must be at least 1, got {buffer!r}")
        if overflow not in ("drop_oldest", "disconnect"):
            raise ConfigurationError(
                f"overflow must be 'drop_oldest' or 'disconnect', got {overflow!r}"
            )
        self._reader = reader
        self._since = since
        self._page_size = replay_page
        self._merge = ReplayMerge(reader.backend.sort_key, buffer=buffer, overflow=overflow)
        self._tap = _Tap(as_matcher(pattern), self._merge, reader)
        self._receiving = False

    @property
    def position(self) -> Position | None:
        """The log position this subscription has reached.

        Resubscribe with ``since=sub.position`` to resume without a gap or a duplicate.
        """
        return self._merge.position

    @property
    def missed(self) -> int:
        """How many events were dropped for this subscriber in total (known counts)."""
        return self._merge.missed

    # -- lifecycle ----------------------------------------------------------------------

    async def __aenter__(self) -> Subscription:
        """Start delivering: from now on every matching event published reaches it.

        Raises:
            InvalidState: Entered a second time.
            BusClosed: The bus is closed.
            InvalidPosition: ``since`` is malformed or beyond the end of the log.
            StalePosition: ``since`` is from another incarnation of the log.
            PositionExpired: ``since`` is older than the retained history.
            BackendUnavailable: The backend could not be reached.
        """
        merge = self._merge
        if merge.state is not State.NEW:
            raise InvalidState(
                "a Subscription can be entered only once", state=merge.state.name.lower()
            )
        since = self._since
        if since is None:
            merge.start_live()
        else:
            merge.start_replay(None if since == EARLIEST else since)
        try:
            await self._reader.attach(self._tap)  # live entries are held from here on
            if since is not None:
                await self._read_page()  # a bad `since` raises now, not at first receive
        except BaseException:
            self._reader.detach(self._tap)
            merge.close()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop receiving: ``receive()`` then raises ``SubscriptionClosed``. Idempotent."""
        self._merge.close()
        self._reader.detach(self._tap)
        self._tap.wake()
        await anyio.lowlevel.checkpoint()

    # -- receiving ----------------------------------------------------------------------

    async def receive(self) -> Event:
        """Return the next matching event, waiting for one if needed.

        Raises:
            EventsMissed: Events were dropped here (``overflow="drop_oldest"``, or
                the bus's reader fell behind the backend's retention); the next call
                returns the first event after the gap.
            SubscriberOverflow: With ``overflow="disconnect"``, the subscriber fell
                behind its buffer; raised once the events held were delivered, and
                again on every later call.
            SubscriptionClosed: The subscription was closed (at once), or its bus was
                (once the events held were delivered).
            PositionExpired: While replaying, the log was trimmed past the replay.
            BackendUnavailable: While replaying, the backend could not be reached;
                calling again retries.
            InvalidState: Not entered yet, or another task is receiving already.
        """
        merge = self._merge
        buffer = merge.buffer
        if buffer and merge.clean:  # the hot path: live, nothing to report
            entry = buffer.popleft()
            merge.position = entry.position
            return entry.event
        return await self._receive_slow()

    async def _receive_slow(self) -> Event:
        merge = self._merge
        if merge.state is State.NEW:
            raise InvalidState(
                "enter the subscription first: `async with bus.subscribe(...) as sub:`",
                state="new",
            )
        if self._receiving:
            raise InvalidState(
                "another task is already receiving from this subscription",
                state=merge.state.name.lower(),
            )
        self._receiving = True
        try:
            while True:
                item = merge.next()
                if isinstance(item, LogEntry):
                    return item.event
                if isinstance(item, Gap):
                    raise EventsMissed(missed=item.missed, after=item.after)
                if item is Need.PAGE:
                    await self._read_page()
                else:
                    waiter = self._tap.waiter = anyio.Event()
                    await waiter.wait()
        finally:
            self._receiving = False

    async def _read_page(self) -> None:
        merge = self._merge
        after = merge.page_after()
        try:
            page = await self._reader.backend.read(after, limit=self._page_size)
        except BusClosed:
            merge.end()  # the bus closed under the replay: hand out what is held
            return
        matcher = self._tap.matcher
        if matcher is None:
            matched = page
        else:
            matches = matcher.matches
            matched = [entry for entry in page if matches(entry.event.to_dict())]
        merge.replayed(matched, page[-1].position if page else None)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        """Return :meth:`receive`'s next event; end the loop on ``SubscriptionClosed``."""
        merge = self._merge
        buffer = merge.buffer
        if buffer and merge.clean:  # receive()'s hot path, inlined: one frame less per event
            entry = buffer.popleft()
            merge.position = entry.position
            return entry.event
        try:
            return await self._receive_slow()
        except SubscriptionClosed:
            raise StopAsyncIteration from None

    def items(self) -> _Items:
        """Iterate events and gaps in-band: yields :class:`Event` or :class:`Gap`.

        Derived from :meth:`receive`: an ``EventsMissed`` becomes a ``Gap`` in the
        stream, ``SubscriptionClosed`` ends it; any other error is raised.

        Example:
            ```python
            import anyio
            from eventpatterns import Event, EventBus, Gap


            async def main() -> None:
                async with EventBus.from_url("memory://") as bus:
                    async with bus.subscribe(buffer=2) as sub:
                        events = [Event(type="t", source="/s", data=n) for n in range(5)]
                        await bus.publish_batch(events)
                        async for item in sub.items():
                            if isinstance(item, Gap):
                                print("missed", item.missed)
                            else:
                                print(item.data)
                            if isinstance(item, Event) and item.data == 4:
                                break


            anyio.run(main)
            ```
        """
        return _Items(self)


class _Items:
    """:meth:`Subscription.items`: ``receive()`` with gaps turned into values."""

    __slots__ = ("_sub",)

    def __init__(self, sub: Subscription) -> None:
        self._sub = sub

    def __aiter__(self) -> _Items:
        return self

    async def __anext__(self) -> Event | Gap:
        try:
            return await self._sub.receive()
        except EventsMissed as gap:
            return Gap(gap.missed, gap.after)
        except SubscriptionClosed:
            raise StopAsyncIteration from None
