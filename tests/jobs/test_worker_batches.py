"""The worker's batched store calls on Redis: Start for a run of dispatches in one read and
one write, completions coalesced into one write, cancellations on the store's channel."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import pytest
import redis.asyncio

from backends.redis.redis_helpers import REDIS_URL, delete_prefix, new_prefix, require_redis
from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend, RedisJobStore
from eventpatterns.errors import ConfigurationError, JobConflict, JobNotFound
from eventpatterns.jobs import (
    Cancel,
    Job,
    JobContext,
    JobState,
    JobTracker,
    ReportProgress,
    Start,
    Succeed,
    transition,
)
from eventpatterns.jobs._events import job_event
from eventpatterns.jobs._model import Progress
from eventpatterns.jobs._ops import JobOps
from eventpatterns.jobs._worker import DISPATCH_BATCH, dispatch_loops
from eventpatterns.testing import ManualClock

from .test_tracker import EVERY_JOB_EVENT, announced, types

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    value = new_prefix("jobs-batches")
    yield value
    delete_prefix(value)


class CountingStore(RedisJobStore):
    """A real Redis store that records the batches it is asked to write."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[list[str]] = []
        self.meddle = False  # cancel the first job read, between the read and its write

    async def get_many(self, job_ids: Sequence[str]) -> list[Job | None]:
        jobs = await super().get_many(job_ids)
        job = jobs[0]
        if self.meddle and job is not None:  # another writer, right after this read
            self.meddle = False
            cancelled = transition(job, Cancel("meddled"), self._clock.time())
            await self.replace(cancelled, expected_version=job.version)
        return jobs

    async def replace_many(
        self, writes: Sequence[tuple[Job, int]], *, events: Sequence[Event | None] | None = None
    ) -> list[Any]:
        self.batches.append([job.id for job, _ in writes])
        return await super().replace_many(writes, events=events)


async def log_events(prefix: str) -> list[str]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        entries = cast(
            list[tuple[bytes, dict[bytes, bytes]]], await client.xrange("{" + prefix + "}:log")
        )
    finally:
        await client.aclose()
    return [fields[b"i"].decode() for _, fields in entries if b"i" in fields]


def new_job(job_id: str, clock: ManualClock) -> Job:
    return Job.new(job_id, "k", owner="o", input={}, now=clock.time())


# -- the store ------------------------------------------------------------------------------


async def test_replace_many_writes_each_on_its_own_and_announces_those_written(
    prefix: str,
) -> None:
    clock = ManualClock()
    backend = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with (
        EventBus(backend),
        RedisJobStore(REDIS_URL, prefix=prefix, clock=clock, outbox=backend) as store,
    ):
        a = await store.create(new_job("a", clock))
        b = await store.create(new_job("b", clock))
        started_b = transition(b, Start("w", lease=30), clock.time())
        await store.replace(started_b, expected_version=1)  # b moved on: v2
        writes = [
            (transition(a, Start("w", lease=30), clock.time()), 1),
            (transition(b, Start("w", lease=30), clock.time()), 1),  # stale: conflict
            (transition(new_job("gone", clock), Start("w", lease=30), clock.time()), 1),
        ]
        events = [job_event(new, "eventpatterns.job.running", source="/t") for new, _ in writes]
        before = await log_events(prefix)
        outcomes = await store.replace_many(writes, events=events)
        assert isinstance(outcomes[0], Job)
        assert outcomes[0].version == 2
        assert isinstance(outcomes[1], JobConflict)
        assert outcomes[1].actual == 2
        assert isinstance(outcomes[2], JobNotFound)
        assert (await store.get("a")) == outcomes[0]
        assert (await store.get("b")) == started_b  # the conflict wrote nothing
        assert (await log_events(prefix))[len(before) :] == ["a.2"]  # only the one written
        got = await store.get_many(["a", "nothing", "b"])
        assert got == [outcomes[0], None, started_b]


async def test_replace_many_refuses_events_without_an_outbox(prefix: str) -> None:
    clock = ManualClock()
    async with RedisJobStore(REDIS_URL, prefix=prefix, clock=clock) as store:
        a = await store.create(new_job("a", clock))
        new = transition(a, Start("w", lease=30), clock.time())
        with pytest.raises(ConfigurationError, match="outbox"):
            await store.replace_many([(new, 1)], events=[None])
        assert await store.replace_many([(new, 1)]) == [new]
        assert (await store.replace_many([(new, 1)]))[0].__class__ is JobConflict


# -- the worker -----------------------------------------------------------------------------


@asynccontextmanager
async def tracker_on(
    prefix: str, *, outbox: bool, lease: float = 30.0, **store_options: Any
) -> AsyncIterator[tuple[JobTracker, CountingStore, dict[str, anyio.Event]]]:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix)
    gates: dict[str, anyio.Event] = {"started": anyio.Event()}
    async with (
        EventBus(backend) as bus,
        CountingStore(
            REDIS_URL, prefix=prefix, outbox=backend if outbox else None, **store_options
        ) as entered,
    ):
        store = cast(CountingStore, entered)
        tracker = JobTracker(bus, store, run_reaper=False)

        @tracker.worker("echo", concurrency=50)
        async def echo(ctx: JobContext[Any]) -> Any:
            return ctx.input

        @tracker.worker("gated", lease=lease)
        async def gated(ctx: JobContext[Any]) -> Any:
            gates[ctx.job.id] = gate = anyio.Event()
            gates["started"].set()
            await gate.wait()  # only a cancellation ends it
            return "never"

        async with tracker:
            yield tracker, store, gates


@pytest.mark.parametrize("outbox", [True, False])
async def test_dispatches_taken_together_start_and_finish_in_batched_writes(
    prefix: str, outbox: bool
) -> None:
    async with (
        tracker_on(prefix, outbox=outbox) as (tracker, store, _),
        tracker.bus.subscribe(EVERY_JOB_EVENT) as sub,
    ):
        # Submitted before the worker can take any: its receives take many at once.
        jobs = [await tracker.submit("echo", i, owner="u1") for i in range(40)]
        done = [await tracker.wait(job.id, timeout=20) for job in jobs]
        events = await announced(tracker.bus, sub)
    assert [(j.state, j.result, j.attempts, j.version) for j in done] == [
        (JobState.SUCCEEDED, i, 1, 3) for i in range(40)
    ]
    for job in jobs:  # each change announced once, in order
        mine = [e for e in events if e.subject == job.id]
        assert types(mine) == ["pending", "running", "succeeded"]
    written = [job_id for batch in store.batches for job_id in batch]
    assert sorted(written) == sorted(j.id for j in jobs for _ in range(2))  # Start + Succeed
    assert len(store.batches) < len(written)  # and not one round trip each


async def test_a_job_changed_between_the_read_and_the_write_is_judged_again(
    prefix: str,
) -> None:
    async with (
        tracker_on(prefix, outbox=True) as (tracker, store, _),
        tracker.bus.subscribe(EVERY_JOB_EVENT) as sub,
    ):
        store.meddle = True  # the job is cancelled right after the worker read it
        job = await tracker.submit("echo", 1, owner="u1")
        done = await tracker.wait(job.id, timeout=20)
        other = await tracker.submit("echo", 2, owner="u1")  # the worker goes on
        assert (await tracker.wait(other.id, timeout=20)).state is JobState.SUCCEEDED
        events = await announced(tracker.bus, sub)
    # Its Start lost the compare-and-swap; read again, the job is final: not started.
    assert (done.state, done.attempts, done.error) == (JobState.CANCELLED, 0, "meddled")
    # (the meddling write was the store's alone: announced by nobody)
    assert types([e for e in events if e.subject == job.id]) == ["pending"]
    assert store.batches[0] == [job.id]


@pytest.mark.parametrize("outbox", [True, False])
async def test_a_cancel_reaches_a_running_handler_through_the_store_channel(
    prefix: str, outbox: bool
) -> None:
    # A lease of an hour: the first heartbeat (which would also tell) is 20 minutes off.
    async with tracker_on(prefix, outbox=outbox, lease=3600.0) as (tracker, _store, gates):
        job = await tracker.submit("gated", None, owner="u1")
        with anyio.fail_after(20):  # a hang guard, not a timed assertion
            await gates["started"].wait()
            asked = await tracker.cancel(job.id, owner="u1")
            assert (asked.state, asked.cancel_requested) == (JobState.RUNNING, True)
            done = await tracker.wait(job.id, timeout=15)
    assert done.state is JobState.CANCELLED
    assert not gates[job.id].is_set()  # the handler was stopped, not let go


async def test_coalesced_writes_made_in_one_turn_go_in_one_call(prefix: str) -> None:
    clock = ManualClock()
    backend = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with (
        EventBus(backend) as bus,
        CountingStore(REDIS_URL, prefix=prefix, clock=clock, outbox=backend) as entered,
    ):
        store = cast(CountingStore, entered)
        ops = JobOps(store, bus, clock)
        running = []
        for i in range(10):
            job = await store.create(new_job(f"c{i}", clock))
            running.append(await store.replace(
                transition(job, Start("w", lease=30), clock.time()), expected_version=1
            ))  # fmt: skip
        results: dict[str, Job | None] = {}
        stale = running[3]
        await store.replace(
            transition(stale, ReportProgress("w", Progress(0.5)), clock.time()), expected_version=2
        )  # c3 moved on since: its write conflicts, then is made on the fresh copy

        async def finish(job: Job) -> None:
            command = Succeed("w", result=job.id)
            results[job.id] = await ops.apply(
                job.id, lambda _job: command, current=job, coalesce=True
            )

        async with anyio.create_task_group() as tg:
            for job in running:
                tg.start_soon(finish, job)
    assert store.batches[0] == [job.id for job in running]  # all ten in the first call
    assert store.batches[1:] == [["c3"]]  # then the one that lost its race, alone
    assert {k: (v.state, v.result) for k, v in results.items() if v} == {
        job.id: (JobState.SUCCEEDED, job.id) for job in running
    }
    stored = results["c3"]
    assert stored is not None
    assert stored.version == 4


async def test_each_job_in_a_batch_keeps_its_own_trace(prefix: str) -> None:
    from eventpatterns.observability import TraceContext, trace_of, use_trace

    # (Without the outbox: the outbox's own events carry no trace context yet.)
    async with (
        tracker_on(prefix, outbox=False) as (tracker, store, _),
        tracker.bus.subscribe(EVERY_JOB_EVENT) as sub,
    ):
        traces = [TraceContext.new() for _ in range(6)]
        jobs = []
        for trace in traces:  # submitted faster than one receive: started together
            with use_trace(trace):
                jobs.append(await tracker.submit("echo", 1, owner="u1"))
        for job in jobs:
            assert (await tracker.wait(job.id, timeout=20)).state is JobState.SUCCEEDED
        events = await announced(tracker.bus, sub)
    assert any(len(batch) > 1 for batch in store.batches)  # some were written together
    for job, trace in zip(jobs, traces, strict=True):
        mine = [e for e in events if e.subject == job.id]
        assert types(mine) == ["pending", "running", "succeeded"]
        found = [trace_of(e) for e in mine]
        assert [t.trace_id if t else None for t in found] == [trace.trace_id] * 3


def test_a_kind_runs_one_receive_loop_per_batch_of_slots_up_to_four() -> None:
    assert [dispatch_loops(c) for c in (1, 32, 33, 64, 65, 96, 97, 128, 1000)] == [
        1, 1, 2, 2, 3, 3, 4, 4, 4,
    ]  # fmt: skip
    # Together the loops hold about as many dispatches as the kind has slots.
    for concurrency in (1, 32, 33, 100, 128):
        held = dispatch_loops(concurrency) * min(concurrency, DISPATCH_BATCH)
        assert concurrency <= held < concurrency + DISPATCH_BATCH
