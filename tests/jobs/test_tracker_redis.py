"""JobTracker on Redis (RedisBusBackend + RedisJobStore): concurrency, races and a restart."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio

from backends.redis.redis_helpers import (
    REDIS_URL,
    RedisServer,
    delete_prefix,
    new_prefix,
    require_redis,
)
from eventpatterns import EventBus
from eventpatterns.backends.redis import RedisBusBackend, RedisJobStore
from eventpatterns.bus import Backoff
from eventpatterns.core import Clock
from eventpatterns.errors import BackendUnavailable, JobNotFound
from eventpatterns.jobs import JobContext, JobState, JobTracker, Start
from eventpatterns.jobs._events import PROGRESS, job_event

from .test_tracker import EVERY_JOB_EVENT, act, announced, types

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    value = new_prefix("jobs")
    yield value
    delete_prefix(value)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own (append-only file: it survives a restart)."""
    require_redis()
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@asynccontextmanager
async def on_redis(
    url: str,
    prefix: str,
    register: Callable[[JobTracker], None] | None = None,
    *,
    clock: Clock | None = None,
    **options: Any,
) -> AsyncIterator[JobTracker]:
    async with (
        EventBus(RedisBusBackend(url, prefix=prefix, clock=clock)) as bus,
        RedisJobStore(url, prefix=prefix, clock=clock) as store,
    ):
        tracker = JobTracker(bus, store, clock=clock, **options)
        tracker.declare("echo")
        if register is not None:
            register(tracker)
        async with tracker:
            yield tracker


async def test_a_thousand_concurrent_submits_with_one_key_make_one_job(prefix: str) -> None:
    async with on_redis(REDIS_URL, prefix, run_reaper=False) as tracker:
        ids: list[str] = []
        # A thousand tasks; at most 100 in the store at once: past redis-py's pool limit
        # (100 connections) a call fails with BackendUnavailable instead of waiting.
        limit = anyio.Semaphore(100)

        async def submit() -> None:
            async with limit:
                job = await tracker.submit("echo", {"n": 1}, owner="alice", idempotency_key="one")
            ids.append(job.id)

        async with tracker.bus.subscribe(EVERY_JOB_EVENT, buffer=2000) as sub:
            async with anyio.create_task_group() as tg:
                for _ in range(1000):
                    tg.start_soon(submit)
            events = await announced(tracker.bus, sub)
        page = await tracker.list("alice")
    assert len(ids) == 1000
    assert len(set(ids)) == 1
    assert [(e.type, e.subject) for e in events] == [("eventpatterns.job.pending", ids[0])]
    assert [j.id for j in page.jobs] == [ids[0]]


async def test_concurrent_cancels_cancel_once(prefix: str) -> None:
    async with on_redis(REDIS_URL, prefix, run_reaper=False) as tracker:
        job = await tracker.submit("echo", 1, owner="alice")
        results = []

        async def cancel() -> None:
            results.append(await tracker.cancel(job.id, owner="alice"))

        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            async with anyio.create_task_group() as tg:
                for _ in range(20):
                    tg.start_soon(cancel)
            events = await announced(tracker.bus, sub)
    assert {(j.state, j.version) for j in results} == {(JobState.CANCELLED, 2)}
    assert types(events) == ["cancelled"]


async def test_a_record_deleted_by_hand_ends_its_watch(prefix: str) -> None:
    async with on_redis(REDIS_URL, prefix, run_reaper=False) as tracker:
        job = await act(tracker, await tracker.submit("echo", 1, owner="u1"), Start("w1", 30))
        async with tracker.watch(job.id) as updates:
            assert (await updates.__anext__()).state is JobState.RUNNING
            client = redis.asyncio.Redis.from_url(REDIS_URL)
            await client.delete("{" + prefix + "}:job:" + job.id)
            await client.aclose()
            newer = dataclasses.replace(job, version=job.version + 1)
            await tracker.bus.publish(job_event(newer, PROGRESS, source="/tests"))
            with pytest.raises(JobNotFound):
                await updates.__anext__()


class Gate:
    """Holds the handler mid-job until the test opens it."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.open = anyio.Event()


@pytest.mark.slow
async def test_a_redis_restart_mid_job_does_not_stop_the_job(own_server: RedisServer) -> None:
    gate = Gate()

    async def slow(ctx: JobContext[Any]) -> str:
        await ctx.progress(0.5, "half")
        gate.started.set()
        await gate.open.wait()
        return "finished"

    def register(tracker: JobTracker) -> None:
        tracker.worker("slow", lease=20, backoff=Backoff(initial=0.1, jitter=0))(slow)

    url = own_server.url
    options: dict[str, Any] = {"reaper_interval": 0.1, "dispatch_recheck": 1}
    async with on_redis(url, "restart", register, **options) as tracker:
        job = await tracker.submit("slow", None, owner="u1")
        with anyio.fail_after(10):
            await gate.started.wait()
        own_server.kill()  # Redis goes away mid-job (what appendfsync wrote survives)
        sweeps = tracker.reaper.sweeps
        with pytest.raises(BackendUnavailable):
            await tracker.submit("slow", None, owner="u1")  # refused, nothing written
        with anyio.fail_after(15):
            while tracker.reaper.sweeps < sweeps + 2:  # noqa: ASYNC110 - it sweeps on, failing
                await anyio.sleep(0.05)
        await anyio.to_thread.run_sync(own_server.start)
        gate.open.set()
        done = await tracker.wait(job.id, timeout=30)
        after = tracker.reaper.sweeps
        with anyio.fail_after(10):
            while not (await tracker.reaper.sweep()).complete:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        again = await tracker.submit("echo", 2, owner="u1")
        page = await tracker.list("u1")
    assert done.state is JobState.SUCCEEDED
    assert done.result == "finished"
    assert done.attempts == 1  # the attempt outlived the outage: the lease was kept
    assert tracker.reaper.sweeps > after
    assert {j.id for j in page.jobs} == {job.id, again.id}  # the refused submit left nothing
