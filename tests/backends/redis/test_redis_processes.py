"""Many processes (and buses) sharing one Redis bus."""

from __future__ import annotations

from typing import cast

import pytest
import redis.asyncio
from redis_helpers import REDIS_URL, spawn, stop, tagged, wait_for

from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.testing import eventually, make_events

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_server")]


@pytest.mark.anyio
async def test_two_groups_in_two_processes_each_get_every_event(prefix: str) -> None:
    url = f"{REDIS_URL}?prefix={prefix}"
    seen: dict[str, list[int]] = {"a": [], "b": []}
    async with EventBus.from_url(url) as one, EventBus.from_url(url) as two:
        for bus, name in ((one, "a"), (two, "b")):

            async def handler(event: Event, name: str = name) -> None:
                seen[name].append(event.data["n"])

            await bus.consume(name, handler)
            await bus.consume(name, handler)  # two members per group
        await one.publish_batch(make_events(100))
        await eventually(lambda: len(seen["a"]) >= 100 and len(seen["b"]) >= 100)
        backend = cast(RedisBusBackend, two.backend)

        async def all_acked() -> bool:
            stats = [await backend.group_stats(name) for name in ("a", "b")]
            return all(s.pending == 0 and s.lag == 0 for s in stats)

        # Nothing is pending or unread any more: no delivery can still come.
        await wait_for(all_acked, within=10, what="both groups to ack everything")
    assert sorted(seen["a"]) == sorted(seen["b"]) == list(range(100))


@pytest.mark.slow
@pytest.mark.anyio
async def test_many_processes_ack_each_event_exactly_once_in_order(prefix: str) -> None:
    per_publisher, publishers, consumers = 10_000, 2, 3
    total = per_publisher * publishers
    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    results = tagged(prefix, "results")
    async with EventBus.from_url(f"{REDIS_URL}?prefix={prefix}&max_entries=100000") as bus:
        await bus.create_group("g", start="earliest")
        backend = cast(RedisBusBackend, bus.backend)
        procs = [spawn("consume", prefix, f"c{i}") for i in range(consumers)]
        try:
            procs += [
                spawn("publish", prefix, f"p{i}", str(per_publisher)) for i in range(publishers)
            ]

            async def done() -> bool:
                stats = await backend.group_stats("g")
                return await client.hlen(results) == total and stats.pending == 0

            await wait_for(done, within=90, what=f"{total} events to be acked")
            assert all(p.wait(timeout=30) == 0 for p in procs[consumers:])  # publishers
        finally:
            stop(*procs)
        counts = await client.hgetall(results)
        assert len(counts) == total
        assert set(counts.values()) == {"1"}  # each event handled, then acked, exactly once
        # Order per partition key: in the log, and in each consumer's processing order.
        log = await backend.read(None, limit=total + 1)
        assert len(log) == total
        last: dict[str, int] = {}
        for entry in log:
            key, seq = entry.event.data["key"], entry.event.data["seq"]
            assert seq > last.get(key, -1)
            last[key] = seq
        busy = 0
        for i in range(consumers):
            order: list[str] = await client.lrange(tagged(prefix, f"order:c{i}"), 0, -1)  # type: ignore[assignment]
            busy += bool(order)
            last = {}
            for item in order:
                key, _, seq_text = item.rpartition(":")
                assert int(seq_text) > last.get(key, -1), f"c{i} handled {key} out of order"
                last[key] = int(seq_text)
        assert busy >= 2  # the work really was shared
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.dead_letters, stats.lost) == (0, 0, 0)
    await client.aclose()
