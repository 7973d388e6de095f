"""Connections: options reach every one of them, and failures map to our errors."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from redis_helpers import REDIS_URL, RedisServer, blocked_read, free_port, new_prefix

from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.errors import BackendUnavailable, ConfigurationError
from eventpatterns.testing import make_events

pytestmark = [pytest.mark.redis, pytest.mark.anyio]


async def test_keyword_password_reaches_subscribers_and_consumers(
    own_server: Callable[..., RedisServer],
) -> None:
    server = own_server("--requirepass", "s3cret")
    url = f"{server.url}?prefix={new_prefix('auth')}"
    handled: list[int] = []
    done = anyio.Event()

    async def handler(event: Event) -> None:
        handled.append(event.data["n"])
        if len(handled) == 3:
            done.set()

    async with EventBus.from_url(url, password="s3cret") as bus:
        await bus.consume("g", handler)
        async with bus.subscribe() as sub:
            await bus.publish_batch(make_events(3))
            with anyio.fail_after(10):
                live = [await sub.__anext__() for _ in range(3)]
                await done.wait()
    assert [e.data["n"] for e in live if isinstance(e, Event)] == [0, 1, 2]
    assert sorted(handled) == [0, 1, 2]


async def test_without_the_password_calls_fail(own_server: Callable[..., RedisServer]) -> None:
    server = own_server("--requirepass", "s3cret")
    backend = RedisBusBackend(server.url, prefix="noauth")
    try:
        with pytest.raises(BackendUnavailable, match=r"(?i)auth"):
            await backend.append(make_events(1))
        with pytest.raises(BackendUnavailable, match=r"(?i)auth"):
            await backend.read(None, limit=1, wait=0.1)
    finally:
        await backend.aclose()


async def test_database_out_of_range_names_db(redis_server: None) -> None:
    backend = RedisBusBackend.from_url(f"{REDIS_URL.rsplit('/', 1)[0]}/100000?prefix=nodb")
    try:
        with pytest.raises(ConfigurationError, match=r"db=100000 is out of range"):
            await backend.append(make_events(1))
    finally:
        await backend.aclose()


async def test_unreachable_redis_raises_backend_unavailable() -> None:
    backend = RedisBusBackend(f"redis://127.0.0.1:{free_port()}/0", prefix="nowhere")
    try:
        with pytest.raises(BackendUnavailable):
            await backend.append(make_events(1))
        with pytest.raises(BackendUnavailable):
            await backend.read(None, limit=1, wait=1)
    finally:
        await backend.aclose()


async def test_cancelled_blocking_read_does_not_poison_connections(prefix: str) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with EventBus(backend) as bus:
        last = await bus.publish(make_events(1)[0])
        for _ in range(3):
            with anyio.move_on_after(0.05):
                await backend.read(last, limit=10, wait=30)
        # A reply to a cancelled XREAD must never be read as the answer to another call.
        newer = await bus.publish(make_events(1, start=1)[0])
        got = await backend.read(last, limit=10, wait=1)
        assert [e.position for e in got] == [newer]
        assert [e.event.data["n"] for e in got] == [1]


async def test_resp3_connections_read_and_receive(prefix: str) -> None:
    """``protocol=3`` changes the shape of raw replies (maps): both kinds are read."""
    url = f"{REDIS_URL}?prefix={prefix}&protocol=3&client_name={prefix}"
    async with EventBus.from_url(url) as bus:
        backend = bus.backend
        await bus.create_group("g")
        first = await bus.publish(make_events(1)[0])
        async with anyio.create_task_group() as tg:
            got: list[object] = []

            async def read() -> None:
                got.extend(await backend.read(first, limit=10, wait=10))

            tg.start_soon(read)
            await blocked_read(prefix)
            (second,) = await bus.publish_batch(make_events(1, start=1))
            with anyio.fail_after(10):
                taken = await backend.receive("g", "c", max_count=10, visibility_timeout=5, wait=5)
        assert [e.position for e in got] == [second]  # type: ignore[attr-defined]
        assert [d.position for d in taken] == [first, second]


async def test_more_concurrent_calls_than_connections_wait_instead_of_failing(prefix: str) -> None:
    # redis-py's own pool raises MaxConnectionsError past 100 calls in flight.
    from eventpatterns.backends.redis import RedisJobStore
    from eventpatterns.jobs import Job

    backend = RedisBusBackend(REDIS_URL, prefix=prefix, max_connections=8)
    store = RedisJobStore(REDIS_URL, prefix=prefix)
    try:
        positions = await asyncio.gather(*(backend.append(make_events(1)) for _ in range(300)))
        assert len({p[0] for p in positions}) == 300
        jobs = [Job.new(f"j{i}", "k", owner="o", input={}, now=1.0) for i in range(300)]
        created = await asyncio.gather(*(store.create(job) for job in jobs))
        assert [job.id for job in created] == [job.id for job in jobs]
        client: Any = backend._conn.client
        assert client.connection_pool.max_connections == 8
    finally:
        await backend.aclose()
        await store.aclose()
