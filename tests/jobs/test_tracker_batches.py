"""Submits that come together go to Redis together: one script per batch, errors per caller."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import redis.asyncio

from backends.redis.redis_helpers import REDIS_URL, delete_prefix, new_prefix, require_redis
from eventpatterns import EventBus
from eventpatterns.backends.redis import RedisBusBackend, RedisJobStore
from eventpatterns.errors import BackendUnavailable, JobConflict
from eventpatterns.jobs import Job, JobState, JobTracker

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    value = new_prefix("jobs-batch")
    yield value
    delete_prefix(value)


class Scripts:
    """Counts the scripts a store sends (around its real connections)."""

    def __init__(self, store: RedisJobStore) -> None:
        self.sent = 0
        raw = store._raw
        real = raw.script

        async def script(*args: Any) -> Any:
            self.sent += 1
            return await real(*args)

        raw.script = script  # type: ignore[method-assign,assignment]


async def log_ids(prefix: str) -> list[str]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        entries: Any = await client.xrange("{" + prefix + "}:log")
        return [bytes(fields[b"i"]).decode() for _, fields in entries]
    finally:
        await client.aclose()


@pytest.mark.parametrize("outbox", [True, False], ids=["outbox", "no-outbox"])
async def test_submits_of_one_loop_iteration_are_one_script(prefix: str, outbox: bool) -> None:
    url = f"{REDIS_URL}?prefix={prefix}"
    async with (
        EventBus.from_url(url) as bus,
        RedisJobStore.from_url(url, outbox=None if outbox else False) as store,
    ):
        tracker = JobTracker(bus, store, run_reaper=False)
        tracker.declare("echo")
        async with tracker:
            scripts = Scripts(store)
            jobs: dict[int, Job] = {}

            async def submit(n: int) -> None:
                jobs[n] = await tracker.submit("echo", n, owner="u1")

            async with anyio.create_task_group() as tg:
                for n in range(50):
                    tg.start_soon(submit, n)
            assert scripts.sent == 1  # 50 jobs, one round trip
            for n, job in jobs.items():
                stored = await tracker.get(job.id)
                assert stored == job
                assert (stored.input, stored.state) == (n, JobState.PENDING)
            # each job announced once (by the script, or published after it)
            ids = await log_ids(prefix)
            assert sorted(ids) == sorted(f"{job.id}.1" for job in jobs.values())
            # one submit alone: its own script, as before
            await tracker.submit("echo", 99, owner="u1")
            assert scripts.sent == 2


async def test_each_caller_of_a_batch_gets_its_own_answer(prefix: str) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with RedisJobStore(REDIS_URL, prefix=prefix, outbox=backend) as store:
        taken = await store.create(Job.new("taken", "echo", owner="u1", input=0, now=1))
        scripts = Scripts(store)
        answers: dict[str, Any] = {}

        async def create(name: str, job: Job) -> None:
            try:
                answers[name] = await store.create(job)
            except JobConflict as exc:
                answers[name] = exc

        def new(job_id: str, key: str | None = None) -> Job:
            return Job.new(job_id, "echo", owner="u1", input=job_id, now=2, idempotency_key=key)

        async with anyio.create_task_group() as tg:
            tg.start_soon(create, "first", new("a", "k"))
            tg.start_soon(create, "same key", new("b", "k"))
            tg.start_soon(create, "same id", new("taken"))
            tg.start_soon(create, "plain", new("c"))
        assert scripts.sent == 1  # one batch (the repeat then reads the first job)
        assert answers["first"] == new("a", "k")
        assert answers["same key"] == answers["first"]  # the first job, not a second one
        assert isinstance(answers["same id"], JobConflict)
        assert answers["plain"] == new("c")
        assert await store.get("taken") == taken  # left as it was
        assert await store.get("b") is None
        await backend.aclose()


async def test_a_batch_that_cannot_reach_redis_fails_every_caller_and_writes_nothing(
    prefix: str,
) -> None:
    async with RedisJobStore("redis://127.0.0.1:1/0", prefix=prefix) as store:
        errors: list[BaseException] = []

        async def create(n: int) -> None:
            try:
                await store.create(Job.new(f"j{n}", "echo", owner="u1", input=n, now=1))
            except BackendUnavailable as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for n in range(5):
                tg.start_soon(create, n)
        assert len(errors) == 5
    async with RedisJobStore(REDIS_URL, prefix=prefix) as store:
        assert [await store.get(f"j{n}") for n in range(5)] == [None] * 5
