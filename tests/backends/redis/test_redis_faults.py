"""Faults: a consumer killed mid-batch, Redis killed and restarted, a poison message."""

from __future__ import annotations

import signal
from collections.abc import Callable
from typing import Any, cast

import anyio
import pytest
import redis.asyncio
from redis_helpers import REDIS_URL, RedisServer, spawn, stop, tagged, wait_for

from eventpatterns import Backoff, Event, EventBus, Retry, Timeouts
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.errors import BackendUnavailable
from eventpatterns.testing import eventually, make_events

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_server")]


@pytest.mark.slow
@pytest.mark.anyio
async def test_consumer_killed_mid_batch_loses_nothing(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    results = tagged(prefix, "results")
    async with EventBus.from_url(f"{REDIS_URL}?prefix={prefix}") as bus:
        await bus.create_group("g", start="earliest")
        events = [
            Event(type="kill.test", source="/kill", data={"key": "k", "seq": i}) for i in range(600)
        ]
        await bus.publish_batch(events)
        backend = cast(RedisBusBackend, bus.backend)
        victim = spawn("consume", prefix, "victim", "--delay", "0.3", "--visibility", "1")
        survivor = None
        try:

            async def mid_batch() -> bool:
                stats = await backend.group_stats("g")
                return await client.hlen(results) >= 200 and stats.pending > 0

            await wait_for(mid_batch, within=30, what="the victim to be mid-batch")
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            assert await client.hlen(results) < 600
            survivor = spawn("consume", prefix, "survivor", "--visibility", "1")

            async def all_acked() -> bool:
                stats = await backend.group_stats("g")
                return await client.hlen(results) == 600 and stats.pending == 0

            await wait_for(all_acked, within=60, what="every event to be processed and acked")
        finally:
            stop(victim, *([survivor] if survivor else []))
        raw_counts: dict[bytes, bytes] = await client.hgetall(results)  # type: ignore[assignment]
        counts = {k.decode(): int(v) for k, v in raw_counts.items()}
        assert set(counts) == {e.id for e in events}  # none lost
        assert max(counts.values()) >= 2  # the killed batch was processed again
        assert (await client.xpending(tagged(prefix, "log"), "g"))["pending"] == 0
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.dead_letters, stats.lost) == (0, 0, 0)
    await client.aclose()


@pytest.mark.slow
@pytest.mark.anyio
async def test_redis_restart_delivers_every_returned_publish(
    own_server: Callable[..., RedisServer],
) -> None:
    server = own_server()
    total, restart_at = 300, 100
    try:
        async with EventBus.from_url(f"{server.url}?prefix=restart") as bus:
            handled: list[int] = []

            async def handler(event: Event) -> None:
                handled.append(event.data["n"])

            await bus.create_group("g")
            await bus.consume("g", handler, timeouts=Timeouts(visibility=2), prefetch=20)
            live: list[int] = []
            returned: list[int] = []
            failures = 0
            async with bus.subscribe() as sub, anyio.create_task_group() as tg:

                async def listen() -> None:
                    async for item in sub:
                        assert isinstance(item, Event)
                        live.append(item.data["n"])

                async def restart_later() -> None:
                    await anyio.sleep(0.5)
                    await anyio.to_thread.run_sync(server.start)

                tg.start_soon(listen)
                for event in make_events(total):
                    while True:
                        try:
                            await bus.publish(event)  # the same event again: deduplicated
                            break
                        except BackendUnavailable:
                            failures += 1
                            await anyio.sleep(0.05)
                    returned.append(event.data["n"])
                    if len(returned) == restart_at:
                        server.kill()  # and back in a moment, while we keep publishing
                        tg.start_soon(restart_later)

                with anyio.fail_after(60):
                    while sorted(set(handled)) != returned or live != returned:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
            assert failures > 0  # publishing really went on while Redis was down
            assert sorted(set(handled)) == returned  # the group: at least once
            assert live == returned  # the subscriber: in order, no gap, no duplicate
            backend = cast(RedisBusBackend, bus.backend)
            assert len(await backend.read(None, limit=10 * total)) == total  # dedupe held
    finally:
        server.kill()


@pytest.mark.slow
@pytest.mark.anyio
async def test_always_failing_handler_dead_letters_after_max_attempts(prefix: str) -> None:
    calls: list[int] = []
    healthy = False

    async def handler(event: Event) -> None:
        calls.append(event.data["n"])
        if not healthy:
            raise ValueError("cannot handle this")

    async with EventBus.from_url(f"{REDIS_URL}?prefix={prefix}") as bus:
        consumer = await bus.consume(
            "dlq", handler, retry=Retry(max_attempts=4, backoff=Backoff(initial=0.02, jitter=0))
        )
        event = make_events(1)[0]
        await bus.publish(event)
        await eventually(lambda: consumer.stats.dead_lettered == 1)
        assert len(calls) == 4  # exactly max_attempts
        (letter,) = await bus.dead_letters("dlq")
        assert (letter.event, letter.attempts) == (event, 4)
        assert letter.error == "ValueError: cannot handle this"
        client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
        dead: Any = await client.xrange(tagged(prefix, "g:dlq:dlq"))
        ((dead_id, fields),) = dead
        await client.aclose()
        assert dead_id == letter.id
        assert (fields["a"], fields["r"]) == ("4", letter.error)
        assert letter.position == letter.position.partition(":")[0] + ":" + fields["p"]
        healthy = True
        assert await bus.redrive("dlq") == 1
        await eventually(lambda: consumer.stats.succeeded == 1)
        assert len(calls) == 5
        assert await bus.dead_letters("dlq") == []
