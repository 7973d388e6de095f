"""Acks are queued and ride along with the group's next call; nothing else may tell."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
import pytest
from redis_helpers import REDIS_URL

from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.bus import Delivery
from eventpatterns.errors import BusClosed, GroupNotFound
from eventpatterns.testing import ManualClock, make_events

pytestmark = pytest.mark.redis


@pytest.mark.anyio
class TestRedisQueuedAcks:
    """Acks ride along with the next call for their group; nothing else may tell."""

    @pytest.fixture
    async def backends(
        self, prefix: str, clock: ManualClock
    ) -> AsyncIterator[tuple[RedisBusBackend, RedisBusBackend]]:
        one = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
        other = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
        await one.create_group("g", start="latest")
        await one.append(make_events(3))
        yield one, other
        await one.aclose()
        await other.aclose()

    async def test_ack_is_queued_then_carried_by_the_next_receive(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        got = await one.receive("g", "c1", max_count=2, visibility_timeout=30, wait=0)
        assert got[0] == Delivery(got[0].receipt, got[0].position, got[0].event, 1, None)
        assert got[0].position.endswith(":" + got[0].receipt)
        await one.ack("g", [d.receipt for d in got])
        assert (await other.group_stats("g")).pending == 2  # not sent yet
        (last,) = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        assert last.event.data["n"] == 2
        assert (await other.group_stats("g")).pending == 1  # sent with that receive

    async def test_every_other_call_for_the_group_sends_queued_acks_first(
        self, backends: tuple[RedisBusBackend, RedisBusBackend], clock: ManualClock
    ) -> None:
        one, other = backends
        a, b, c = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        await one.ack("g", [a.receipt])
        assert (await one.group_stats("g")).pending == 2
        await one.ack("g", [b.receipt])
        await one.release("g", b.receipt, delay=0, error="late")  # acked: nothing to release
        await one.ack("g", [c.receipt])
        with pytest.raises(LookupError):
            await one.dead_letter("g", c.receipt, error="acked already")
        clock.advance(31)
        assert await other.receive("g", "c2", max_count=5, visibility_timeout=30, wait=0) == []

    async def test_aclose_sends_queued_acks(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        got = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        await one.ack("g", [d.receipt for d in got])
        await one.aclose()
        assert (await other.group_stats("g")).pending == 0
        with pytest.raises(BusClosed):
            await one.ack("g", [got[0].receipt])

    async def test_cancelled_receive_still_sends_the_acks_it_carried(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        got = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        await one.ack("g", [d.receipt for d in got])
        with anyio.CancelScope() as scope:
            scope.cancel()  # cancelled at its first await: before or after sending
            await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        assert (await other.group_stats("g")).pending == 0

    async def test_first_ack_for_a_group_is_sent_at_once_and_checks_it(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        (d,) = await one.receive("g", "c1", max_count=1, visibility_timeout=30, wait=0)
        await other.ack("g", [d.receipt, "not-an-id"])  # other never saw "g": no queue
        assert (await one.group_stats("g")).pending == 0
        with pytest.raises(GroupNotFound):
            await other.ack("nope", [d.receipt])
