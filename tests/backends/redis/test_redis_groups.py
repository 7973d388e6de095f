"""Group bookkeeping specific to this backend: batch deadlines, trimming, the safety net."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio
from redis_helpers import REDIS_URL, tagged

from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.errors import DeadLetterNotFound, GroupNotFound
from eventpatterns.testing import ManualClock, make_events

pytestmark = pytest.mark.redis


async def idle_for(client: redis.asyncio.Redis, prefix: str, ms: int) -> bool:
    """Tell whether every pending entry of group g is idle for ``ms`` on Redis's clock."""
    entries = await client.xpending_range(tagged(prefix, "log"), "g", "-", "+", 100)
    return bool(entries) and all(int(e["time_since_delivered"]) >= ms for e in entries)


class TestRedisGroupState:
    """Delivery bookkeeping specific to this backend (batch deadlines, trimming)."""

    @pytest.mark.anyio
    async def test_expired_batch_is_redelivered_in_order_across_calls(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(7))
        first = await backend.receive("g", "c1", max_count=10, visibility_timeout=30, wait=0)
        await backend.ack("g", [d.receipt for d in first[:2]])
        clock.advance(31)
        again = await backend.receive("g", "c2", max_count=2, visibility_timeout=30, wait=0)
        rest = await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0)
        assert [d.event.data["n"] for d in again + rest] == [2, 3, 4, 5, 6]
        assert {d.attempt for d in again + rest} == {2}
        assert await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0) == []
        assert (await backend.group_stats("g")).pending == 5

    @pytest.mark.anyio
    async def test_due_redeliveries_then_new_entries_keep_the_cursor(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        # A receive with redeliveries due parks the group's cursor so that the
        # XREADGROUP of its transaction reads nothing; it must come back unchanged.
        await backend.create_group("g", start="latest")
        await backend.append(make_events(3))
        first = await backend.receive("g", "c1", max_count=2, visibility_timeout=5, wait=0)
        clock.advance(6)
        mixed = await backend.receive("g", "c2", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in mixed] == [(0, 2), (1, 2), (2, 1)]
        await backend.append(make_events(2))
        new = await backend.receive("g", "c2", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in new] == [(0, 1), (1, 1)]
        assert new[0].position not in {d.position for d in first + mixed}
        await backend.ack("g", [d.receipt for d in mixed + new])
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.lag, stats.trimmed_unread) == (0, 0, 0)

    @pytest.mark.anyio
    async def test_ack_ignores_receipts_that_are_not_stream_ids(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(3))
        a, b, c = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        await backend.ack("g", [a.receipt, "nope", f"{b.receipt},{c.receipt}"])
        clock.advance(6)
        again = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.position, d.attempt) for d in again] == [(b.position, 2), (c.position, 2)]

    @pytest.mark.anyio
    async def test_late_ack_of_an_expired_batch_is_honoured(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(5))
        slow = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        clock.advance(6)
        (taken,) = await backend.receive("g", "c2", max_count=1, visibility_timeout=5, wait=0)
        await backend.ack("g", [d.receipt for d in slow])  # the slow consumer finishes after all
        assert await backend.receive("g", "c2", max_count=10, visibility_timeout=5, wait=0) == []
        assert (await backend.group_stats("g")).pending == 0
        assert taken.event == slow[0].event

    @pytest.mark.anyio
    async def test_release_outlives_the_batch_deadline(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(2))
        a, b = await backend.receive("g", "c1", max_count=10, visibility_timeout=30, wait=0)
        await backend.release("g", a.receipt, delay=100, error="RuntimeError: later")
        clock.advance(31)
        (got,) = await backend.receive("g", "c1", max_count=10, visibility_timeout=300, wait=0)
        assert (got.event, got.attempt, got.last_error) == (b.event, 2, None)
        clock.advance(70)
        (got,) = await backend.receive("g", "c1", max_count=10, visibility_timeout=300, wait=0)
        assert (got.event, got.attempt, got.last_error) == (a.event, 2, "RuntimeError: later")

    @pytest.mark.anyio
    async def test_pending_entries_trimmed_by_retention_are_counted(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(3))
        await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        await backend.append(make_events(8, start=3))  # max_entries=8 trims the first 3
        clock.advance(6)
        got = await backend.receive("g", "c1", max_count=20, visibility_timeout=5, wait=0)
        assert [d.event.data["n"] for d in got] == list(range(3, 11))
        stats = await backend.group_stats("g")
        assert (stats.lost, stats.pending, stats.trimmed_unread) == (3, 8, 0)

    @pytest.mark.anyio
    async def test_lag_and_entries_trimmed_unread_match_memory(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        memory = MemoryBusBackend(clock=clock, max_entries=8)
        for b in (backend, memory):
            await b.append(make_events(2))
            await b.create_group("g", start="latest")
            await b.create_group("early", start="earliest")
            await b.append(make_events(3, start=2))
        stats = await backend.group_stats("g")
        assert (stats.lag, stats.trimmed_unread) == (3, 0)
        assert (await backend.group_stats("early")).lag == 5
        for b in (backend, memory):
            await b.append(make_events(8, start=5))  # trims entries neither group read
            got = await b.receive("g", "c", max_count=20, visibility_timeout=5, wait=0)
            assert [d.event.data["n"] for d in got] == list(range(5, 13))
            await b.receive("early", "c", max_count=20, visibility_timeout=5, wait=0)
        for group in ("g", "early"):
            ours, spec = await backend.group_stats(group), await memory.group_stats(group)
            assert (ours.lag, ours.trimmed_unread) == (spec.lag, spec.trimmed_unread)
        assert (await backend.group_stats("early")).trimmed_unread == 5

    @pytest.mark.anyio
    async def test_pending_entries_without_bookkeeping_are_reclaimed(
        self, prefix: str, clock: ManualClock
    ) -> None:
        backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock, reclaim_after=0.2)
        try:
            await backend.create_group("g", start="latest")
            await backend.append(make_events(3))
            taken = await backend.receive("g", "c1", max_count=10, visibility_timeout=30, wait=0)
            client = redis.asyncio.Redis.from_url(REDIS_URL)
            await client.delete(tagged(prefix, "g:g:due"))  # as if evicted under memory pressure
            with anyio.fail_after(10):  # idle on Redis's clock; the bus clock stands still
                while not await idle_for(client, prefix, 300):  # noqa: ASYNC110
                    await anyio.sleep(0.02)
            await client.aclose()
            got = await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0)
            assert [(d.event, d.attempt) for d in got] == [(d.event, 2) for d in taken]
            stats = await backend.group_stats("g")
            assert (stats.reclaimed, stats.pending) == (3, 3)
        finally:
            await backend.aclose()

    @pytest.mark.anyio
    async def test_redrive_survives_trimming_of_the_log_entry(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(1))
        (d,) = await backend.receive("g", "c1", max_count=1, visibility_timeout=5, wait=0)
        letter = await backend.dead_letter("g", d.receipt, error="manual")
        await backend.append(make_events(20, start=1))  # the log no longer has it
        assert await backend.redrive("g", [letter.id]) == 1
        (again,) = await backend.receive("g", "c1", max_count=1, visibility_timeout=5, wait=0)
        assert (again.event, again.attempt, again.position) == (d.event, 1, d.position)
        await backend.ack("g", [again.receipt])
        clock.advance(6)
        rest = await backend.receive("g", "c1", max_count=50, visibility_timeout=5, wait=0)
        assert d.event not in [r.event for r in rest]
        with pytest.raises(GroupNotFound):
            await backend.group_stats("nope")
        # The group is checked first, as in memory.
        for call in (backend.redrive, backend.discard_dead_letters):
            with pytest.raises(GroupNotFound):
                await call("nope", ["not-an-id"])
            for ids, missing in ((["1-1", "not-an-id"], "1-1"), (["not-an-id"], "not-an-id")):
                with pytest.raises(DeadLetterNotFound) as info:
                    await call("g", ids)
                assert info.value.dead_letter_id == missing
