"""The conformance suite of the :class:`~eventpatterns.bus.EventLog` role."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest

from ..bus import EventLog, LogEntry
from ..core import Event
from ..errors import EventTooLarge, PositionExpired
from ._clock import ManualClock
from ._helpers import make_events
from ._suite_base import SuiteBase, close

__all__ = ["EventLogSuite"]


def _require_total_order(log: EventLog) -> None:
    if log.capabilities.ordering != "total":
        pytest.skip(f"the backend's ordering is {log.capabilities.ordering!r}, not 'total'")


def _require_history(log: EventLog) -> None:
    if not log.capabilities.history:
        pytest.skip("the backend keeps no history (capabilities.history is False)")


async def _read_on(log: EventLog, cursor: str | None) -> list[LogEntry]:
    """Read every entry after ``cursor`` (from :meth:`EventLog.last_position`), page by page.

    Reading on from the log's last position works with and without history: a
    backend without it (``capabilities.history`` is ``False``) serves only what
    arrives after that position.
    """
    out: list[LogEntry] = []
    while page := await log.read(cursor, limit=100):
        out.extend(page)
        cursor = page[-1].position
    return out


def _numbers(log: EventLog, entries: list[LogEntry]) -> list[int]:
    """The entries' ``data["n"]``, sorted unless the backend promises a total order."""
    numbers = [e.event.data["n"] for e in entries]
    return numbers if log.capabilities.ordering == "total" else sorted(numbers)


class EventLogSuite(SuiteBase):
    """Conformance tests of the log: order, positions, dedupe, limits, waiting reads.

    The tests call the backend directly (no :class:`~eventpatterns.bus.EventBus`), so
    a log on its own can run them.
    """

    async def make_backend(
        self,
        clock: ManualClock,
        *,
        max_entries: int | None = None,
        max_message_size: int | None = None,
    ) -> EventLog:
        """Return a fresh, empty backend that reads time from ``clock``."""
        raise NotImplementedError("subclasses return their backend here")

    @pytest.fixture
    async def log(self, clock: ManualClock) -> AsyncIterator[EventLog]:
        backend = await self.make_backend(clock)
        yield backend
        await close(backend)

    async def test_positions_increase_in_append_order(self, log: EventLog) -> None:
        _require_total_order(log)
        single = [(await log.append([e]))[0] for e in make_events(5)]
        batch = await log.append(make_events(5, start=5))
        keys = [log.sort_key(p) for p in single + batch]
        assert keys == sorted(keys)
        assert len(set(keys)) == 10
        assert await log.last_position() == batch[-1]

    async def test_empty_log_has_no_last_position(self, log: EventLog) -> None:
        if not log.capabilities.history:
            # No history: nothing to read "from the oldest entry", and the last
            # position is where reading on starts (nothing after it yet).
            with pytest.raises(PositionExpired):
                await log.read(None, limit=10)
            assert await log.read(await log.last_position(), limit=10) == []
            return
        assert await log.last_position() is None
        assert await log.read(None, limit=10) == []

    async def test_read_returns_entries_in_order_in_pages(self, log: EventLog) -> None:
        _require_total_order(log)
        events = make_events(30)
        positions = await log.append(events)
        entries = await log.read(None, limit=100)
        assert [e.event.id for e in entries] == [e.id for e in events]
        assert [e.event for e in entries] == events
        assert [e.position for e in entries] == positions
        page = await log.read(entries[9].position, limit=5)
        assert [e.event.id for e in page] == [e.id for e in events[10:15]]
        assert await log.read(positions[-1], limit=5) == []

    async def test_append_same_id_is_deduplicated(self, log: EventLog) -> None:
        cursor = await log.last_position()
        event = make_events(1)[0]
        (first,) = await log.append([event])
        await log.append(make_events(1, start=1))
        (again,) = await log.append([event])
        in_batch = await log.append([event, make_events(1, start=2)[0]])
        assert again == first
        assert in_batch[0] == first
        assert _numbers(log, await _read_on(log, cursor)) == [0, 1, 2]

    async def test_dedupe_window_expires(self, log: EventLog, clock: ManualClock) -> None:
        cursor = await log.last_position()
        event = make_events(1)[0]
        (first,) = await log.append([event])
        await self.advance(clock, log.capabilities.dedupe_window + 1)
        (second,) = await log.append([event])
        assert log.sort_key(second) > log.sort_key(first)
        assert len(await _read_on(log, cursor)) == 2

    async def test_event_too_large_is_rejected_whole(self, clock: ManualClock) -> None:
        log = await self.make_backend(clock, max_message_size=2048)
        try:
            assert log.capabilities.max_message_size == 2048
            cursor = await log.last_position()
            small = make_events(1)[0]
            big = Event(type="big", source="/conformance", data="x" * 4096)
            with pytest.raises(EventTooLarge) as info:
                await log.append([small, big])
            assert info.value.event_id == big.id
            assert info.value.limit == 2048
            assert await _read_on(log, cursor) == []  # nothing of the batch landed
        finally:
            await close(log)

    async def test_read_older_than_history_raises_position_expired(
        self, clock: ManualClock
    ) -> None:
        log = await self.make_backend(clock, max_entries=10)
        try:
            _require_history(log)
            positions = await log.append(make_events(100))
            with pytest.raises(PositionExpired) as info:
                await log.read(positions[0], limit=10)
            assert info.value.position == positions[0]
            kept = await log.read(None, limit=100)
            assert [e.event.data["n"] for e in kept] == list(range(90, 100))
        finally:
            await close(log)

    async def test_blocked_read_wakes_on_append(self, log: EventLog) -> None:
        await log.append(make_events(1))
        position = await log.last_position()  # the appended one, or a live reader's start
        got: list[LogEntry] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def reader() -> None:
                    got.extend(await log.read(position, limit=10, wait=3600))

                tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()
                await log.append(make_events(1, start=1))
        assert [e.event.data["n"] for e in got] == [1]

    async def test_cancelled_read_leaves_the_log_usable(self, log: EventLog) -> None:
        last = await log.last_position()
        with anyio.fail_after(5):
            with anyio.move_on_after(0.1) as scope:
                await log.read(last, limit=1, wait=3600)
        assert scope.cancelled_caught
        await log.append(make_events(1))
        assert [e.event.data["n"] for e in await log.read(last, limit=10)] == [0]
