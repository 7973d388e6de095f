"""The reaper on the memory bus and store, with a ManualClock: every sweep is deterministic."""

from __future__ import annotations

import math
from typing import Any

import anyio
import pytest

from eventpatterns import EventBus
from eventpatterns.backends.memory import MemoryBlobStore, MemoryBusBackend, MemoryJobStore
from eventpatterns.errors import ConfigurationError
from eventpatterns.jobs import (
    DEADLINE_EXCEEDED,
    DeadlinePassed,
    Fail,
    Heartbeat,
    Job,
    JobState,
    Start,
    Succeed,
)
from eventpatterns.jobs._ops import JobOps
from eventpatterns.jobs._reaper import BATCH, Reaper, Sweep
from eventpatterns.testing import ManualClock

from .test_tracker import EVERY_JOB_EVENT, act, announced, tracking, types
from .worker_helpers import FlakyStore

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_a_lost_lease_is_retried_with_the_kinds_backoff_then_dispatched() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:  # "render": Backoff(initial=2, jitter=0)
        job = await tracker.submit("render", {"frames": 1}, owner="u1")
        job = await act(tracker, job, Start("w1", lease=30))
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            clock.advance(29)
            assert await tracker.reaper.sweep() == Sweep()  # the lease still holds
            clock.advance(1)
            assert (await tracker.reaper.sweep()).expired == 1
            lost = await tracker.get(job.id)
            assert lost is not None
            assert lost.state is JobState.RETRYING
            assert lost.run_after == clock.time() + 2
            assert lost.error == "lease expired: worker 'w1' stopped heartbeating"
            clock.advance(1)
            assert (await tracker.reaper.sweep()).dispatched == 0  # not due yet
            clock.advance(1)
            assert (await tracker.reaper.sweep()).dispatched == 1
            again = await tracker.get(job.id)
            events = await announced(tracker.bus, sub)
    assert again is not None
    assert again.state is JobState.PENDING
    assert again.run_after == clock.time() + tracker.dispatch_recheck
    assert types(events) == ["retrying", "pending"]


async def test_a_lost_lease_on_the_last_attempt_fails_the_job_and_a_cancel_ends_it() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        last = await tracker.submit("render", {"frames": 1}, owner="u1", max_attempts=1)
        last = await act(tracker, last, Start("w1", lease=5))
        asked = await act(tracker, await tracker.submit("echo", 1, owner="u1"), Start("w2", 5))
        await tracker.cancel(asked.id)
        clock.advance(5)
        assert (await tracker.reaper.sweep()).expired == 2
        failed, cancelled = await tracker.get(last.id), await tracker.get(asked.id)
    assert failed is not None
    assert cancelled is not None
    assert (failed.state, failed.attempts) == (JobState.FAILED, 1)
    assert failed.error is not None
    assert failed.error.startswith("lease expired")
    assert cancelled.state is JobState.CANCELLED


async def test_a_heartbeat_keeps_the_lease() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        job = await act(tracker, await tracker.submit("echo", 1, owner="u1"), Start("w1", 10))
        for _ in range(5):
            clock.advance(9)
            job = await act(tracker, job, Heartbeat("w1", lease=10))
            assert (await tracker.reaper.sweep()).expired == 0
        assert await tracker.state(job.id) is JobState.RUNNING


async def test_a_kind_this_process_does_not_know_gets_the_default_backoff() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        stranger = Job.new("j-1", "elsewhere", owner="u1", input=None, now=clock.time())
        await tracker.ops.create(stranger)
        await act(tracker, stranger, Start("w1", lease=1))
        clock.advance(1)
        assert (await tracker.reaper.sweep()).expired == 1
        lost = await tracker.get("j-1")
    assert lost is not None
    assert lost.run_after is not None
    # Backoff() after attempt 1: 1 s, less up to half of it for jitter
    assert 0.5 <= lost.run_after - clock.time() <= 1.0


async def test_a_dispatch_never_announced_is_announced_after_dispatch_recheck() -> None:
    clock = ManualClock()
    async with tracking(clock, dispatch_recheck=60) as tracker:
        # What a submit leaves when the bus was unreachable: the job, and no event.
        now = clock.time()
        job = Job.new("lost", "echo", owner="u1", input=1, now=now, run_after=now + 60)
        await tracker.store.create(job)
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            clock.advance(59)
            assert (await tracker.reaper.sweep()).dispatched == 0
            clock.advance(1)
            assert (await tracker.reaper.sweep()).dispatched == 1
            assert (await tracker.reaper.sweep()).dispatched == 0  # next check in 60 s
            clock.advance(60)
            assert (await tracker.reaper.sweep()).dispatched == 1  # still nobody took it
            events = await announced(tracker.bus, sub)
    assert [(e.type, e.id) for e in events] == [
        ("eventpatterns.job.pending", "lost.2"),
        ("eventpatterns.job.pending", "lost.3"),
    ]


async def test_a_job_past_its_deadline_fails_whatever_its_state() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        waiting = await tracker.submit("echo", 1, owner="u1", deadline=10)
        running = await tracker.submit("echo", 2, owner="u1", deadline=10)
        running = await act(tracker, running, Start("w1", lease=60))
        later = await tracker.submit("echo", 3, owner="u1", deadline=11)
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            clock.advance(9.5)
            assert (await tracker.reaper.sweep()).overdue == 0
            clock.advance(0.5)
            assert (await tracker.reaper.sweep()).overdue == 2
            events = await announced(tracker.bus, sub)
        for job in (waiting, running):
            failed = await tracker.get(job.id)
            assert failed is not None
            assert (failed.state, failed.error) == (JobState.FAILED, DEADLINE_EXCEEDED)
        assert await tracker.state(later.id) is JobState.PENDING
    assert types(events) == ["failed", "failed"]


async def test_finished_jobs_and_blobs_are_purged_every_purge_interval() -> None:
    clock = ManualClock()
    blobs = MemoryBlobStore(clock=clock)
    store = MemoryJobStore(clock=clock)
    async with tracking(clock, store=store, blobs=blobs) as tracker:
        reaper = tracker.reaper
        assert (await reaper.sweep()).purged == 0  # the first sweep purges (nothing yet)
        job = await tracker.submit("echo", 1, owner="u1", ttl=5)
        job = await act(tracker, job, Start("w1", lease=30))
        job = await act(tracker, job, Succeed("w1", result=1))
        await blobs.put("results/x", b"x", ttl=5)
        clock.advance(10)
        assert (await reaper.sweep()).purged == 0  # the next purge is 60 s after the first
        clock.advance(50)
        assert (await reaper.sweep()).purged == 2  # the job's record and the blob
        assert await store.get(job.id) is None
        assert (await reaper.sweep()).purged == 0


async def test_a_backlog_bigger_than_one_batch_is_swept_at_once() -> None:
    clock = ManualClock()
    async with tracking(clock, dispatch_recheck=5) as tracker:
        for n in range(BATCH + 20):
            await tracker.submit("echo", n, owner="u1")
        clock.advance(5)
        assert (await tracker.reaper.sweep()).dispatched == BATCH + 20


async def test_two_reapers_on_one_store_change_each_job_once() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        jobs = []
        for n in range(30):
            job = await act(tracker, await tracker.submit("echo", n, owner="u1"), Start("w", 1))
            jobs.append(job)
        other = Reaper(JobOps(tracker.store, tracker.bus, clock), tracker.kinds)
        clock.advance(1)
        async with tracker.bus.subscribe(EVERY_JOB_EVENT, buffer=100) as sub:
            done: list[Sweep] = []

            async def sweep(reaper: Reaper) -> None:
                done.append(await reaper.sweep())

            async with anyio.create_task_group() as tg:
                tg.start_soon(sweep, tracker.reaper)
                tg.start_soon(sweep, other)
            events = await announced(tracker.bus, sub)
    assert sum(d.expired for d in done) == 30
    assert sorted(e.subject or "" for e in events) == sorted(j.id for j in jobs)


async def test_the_decisions_skip_jobs_someone_else_moved() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        reaper, now = tracker.reaper, clock.time()
        job = await tracker.submit("echo", 1, owner="u1", deadline=100)
        running = await act(tracker, job, Start("w1", lease=30))
        retrying = await act(tracker, running, Fail("w1", "x"))
        assert reaper._expire(now + 60)(job) is None  # not running
        assert reaper._expire(now)(running) is None  # the lease holds
        assert reaper._dispatch(now)(running) is None  # started already
        assert reaper._dispatch(now)(retrying) is None  # not due yet
        assert isinstance(reaper._overdue(now + 100)(retrying), DeadlinePassed)
        assert reaper._overdue(now)(retrying) is None  # its deadline is ahead
        cancelled = await tracker.cancel(job.id)
        assert reaper._overdue(now + 100)(cancelled) is None  # final


async def test_the_background_reaper_sweeps_every_interval() -> None:
    clock = ManualClock()
    async with tracking(clock, run_reaper=True, reaper_interval=1, dispatch_recheck=3) as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        async with tracker.watch(job.id) as updates:
            assert (await updates.__anext__()).version == 1
            with anyio.fail_after(5):
                while True:
                    clock.advance(1)
                    with anyio.move_on_after(0.05):
                        redispatched = await updates.__anext__()
                        break
    assert redispatched.state is JobState.PENDING
    assert redispatched.version == 2
    assert tracker.reaper.sweeps >= 3


@pytest.mark.parametrize("option", ["interval", "dispatch_recheck", "purge_interval"])
async def test_bad_intervals_are_refused(option: str) -> None:
    async with EventBus(MemoryBusBackend()) as bus:
        ops = JobOps(MemoryJobStore(), bus, ManualClock())
        for value in (-1.0, math.inf, "1"):
            bad: dict[str, Any] = {option: value}
            with pytest.raises(ConfigurationError, match="positive number of seconds"):
                Reaper(ops, {}, **bad)


class StaleIndexStore(MemoryJobStore):
    """A store whose retry index still lists a job that is gone (a stale index entry)."""

    async def due(self, now: float, *, limit: int = 100) -> list[str]:
        return ["gone", *await super().due(now, limit=limit)]


async def test_a_job_someone_else_removed_is_skipped() -> None:
    clock = ManualClock()
    async with tracking(clock, store=StaleIndexStore(clock=clock), dispatch_recheck=1) as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        clock.advance(1)
        done = await tracker.reaper.sweep()
        assert (done.dispatched, done.complete) == (1, True)
        assert (await tracker.get(job.id) or job).version == 2


async def test_an_unreachable_store_ends_a_sweep_early_and_the_next_one_catches_up() -> None:
    clock = ManualClock()
    flaky = FlakyStore(MemoryJobStore(clock=clock))
    async with tracking(clock, store=flaky, run_reaper=True, dispatch_recheck=2) as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        flaky.down = True
        clock.advance(2)
        with anyio.fail_after(5):
            while flaky.refused < 3:  # the background reaper keeps trying, every second
                clock.advance(1)
                await anyio.sleep(0.01)
        assert (await tracker.reaper.sweep()).complete is False
        flaky.down = False
        assert (await tracker.reaper.sweep()).dispatched == 1
        assert (await tracker.get(job.id) or job).version == 2
