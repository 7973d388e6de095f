"""JobTracker.wait reads the store for the first version at most; the end comes with its event."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import anyio.lowlevel
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryBusBackend, MemoryJobStore
from eventpatterns.errors import BackendUnavailable, JobNotFound, JobTimeout
from eventpatterns.jobs import (
    Cancel,
    Job,
    JobState,
    JobTracker,
    Progress,
    ReportProgress,
    Start,
    Succeed,
    _watch,
    transition,
)
from eventpatterns.jobs._events import JOB_EVENT_PREFIX, PROGRESS, job_event
from eventpatterns.testing import ManualClock

from .test_tracker import act, tracking
from .worker_helpers import FlakyStore

pytestmark = pytest.mark.anyio
SUCCEEDED = JOB_EVENT_PREFIX + "succeeded"
CANCELLED_TYPE = JOB_EVENT_PREFIX + "cancelled"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class CountingStore(FlakyStore):
    """A memory store that counts reads and can hide every job (a vanished record)."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(MemoryJobStore(clock=clock))
        self.gets = 0
        self.hidden = False

    async def get(self, job_id: str) -> Job | None:
        self.gets += 1
        job = await super().get(job_id)
        return None if self.hidden else job


def hears_changes(tracker: JobTracker) -> bool:
    """Whether the tracker's hub subscribed to every job event (for the watches)."""
    return tracker._hub._every


@asynccontextmanager
async def running_job() -> AsyncIterator[tuple[JobTracker, Job]]:
    """A tracker whose hub listens, and a job it created that a worker started."""
    async with tracking() as tracker:
        await listening(tracker)
        job = await tracker.submit("echo", 5, owner="u1")
        yield tracker, await act(tracker, job, Start("w1", lease=30))


async def listening(tracker: JobTracker) -> None:
    """Start the tracker's watch hub (a wait on a job that is already final)."""
    job = await tracker.submit("echo", 0, owner="u0")
    await tracker.cancel(job.id)
    assert (await tracker.wait(job.id, timeout=5)).state is JobState.CANCELLED
    assert tracker._hub.listening


async def ended(tracker: JobTracker, job_id: str) -> None:
    """Let the hub take in the job's final event (it forgets the job then)."""
    with anyio.fail_after(5):
        while job_id in tracker._hub._fresh:
            await anyio.lowlevel.checkpoint()


async def test_a_wait_on_a_job_created_here_reads_only_its_end() -> None:
    clock = ManualClock()
    store = CountingStore(clock)
    async with tracking(clock, store=store) as tracker:
        before = await tracker.submit("echo", 1, owner="u1")  # the hub not listening yet
        await listening(tracker)
        job = await tracker.submit("echo", 2, owner="u1")
        store.gets = 0
        done: list[Job] = []

        async def waiter() -> None:
            done.append(await tracker.wait(job.id, timeout=5, owner="u1"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            running = await act(tracker, job, Start("w1", lease=30))
            running = await act(tracker, running, ReportProgress("w1", Progress(0.5)))
            await anyio.sleep(0.01)
            reads = store.gets  # the running and progress events needed no read
            await act(tracker, running, Succeed("w1", result=2))
        assert reads == 2  # the two commands' reads, none by the waiter
        assert store.gets == 2 + 1  # and the Succeed's: the end came with its event
        assert [j.state for j in done] == [JobState.SUCCEEDED]
        assert done[0].result == 2
        assert done[0] == await tracker.get(job.id)  # exactly the stored job
        # A job created before the hub listened is read first, then at its end.
        store.gets = 0
        running = await act(tracker, before, Start("w1", lease=30))
        await act(tracker, running, Succeed("w1", result=1))
        assert (await tracker.wait(before.id, timeout=5)).result == 1
        assert store.gets == 2 + 1  # the two commands' reads, then the wait's one read


async def test_a_job_that_ended_before_its_wait_is_read_from_the_store() -> None:
    async with tracking() as tracker:
        await listening(tracker)
        job = await tracker.submit("echo", 3, owner="u1")
        running = await act(tracker, job, Start("w1", lease=30))
        await act(tracker, running, Succeed("w1", result=3))
        await ended(tracker, job.id)
        done = await tracker.wait(job.id, timeout=5)
        assert (done.state, done.result) == (JobState.SUCCEEDED, 3)
        with pytest.raises(JobNotFound):  # another owner's job, created here or not
            await tracker.wait(job.id, timeout=5, owner="u2")
        other = await tracker.submit("echo", 4, owner="u1")
        with pytest.raises(JobNotFound):
            await tracker.wait(other.id, timeout=5, owner="u2")


async def test_missed_events_make_every_wait_read_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_watch, "HUB_BUFFER", 8)
    async with running_job() as (tracker, job):
        assert job.id in tracker._hub._fresh
        # Other jobs' ends, more than the hub holds, at once: a gap (job's end may be
        # among the missed ones, so its wait must read the store).
        events = [Event(type=SUCCEEDED, source="/t", subject=f"gone-{n}") for n in range(18)]
        await tracker.bus.publish_batch(events)
        with anyio.fail_after(5):
            while tracker._hub._fresh:
                await anyio.lowlevel.checkpoint()
        with pytest.raises(JobTimeout, match="still running"):  # read: running, not pending
            await tracker.wait(job.id, timeout=0.05)


async def test_a_wait_hears_only_the_ends_and_a_watch_the_other_changes_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_watch, "HUB_BUFFER", 8)
    async with running_job() as (tracker, job):
        events = []
        for _ in range(8 + 10):  # more changes than the hub holds, at once
            new = dataclasses.replace(job, version=job.version + 1, progress=Progress(0.5))
            job = await tracker.store.replace(new, expected_version=job.version)
            events.append(job_event(job, PROGRESS, source="/t"))
        await tracker.bus.publish_batch(events)
        done = await act(tracker, job, Succeed("w1", result={"ok": True}))
        # No watch yet: the hub subscribed to the ends alone, so the progress did not
        # overflow it; the created job still stands for the wait's first read.
        assert not hears_changes(tracker)
        assert (await tracker.wait(job.id, timeout=5)).version == done.version
        # A watch subscribes to every job event, and sees the changes in order.
        second = await tracker.submit("echo", 6, owner="u1")
        async with tracker.watch(second.id) as updates:
            seen = [await updates.__anext__()]
            assert hears_changes(tracker)
            running = await act(tracker, second, Start("w1", lease=30))
            seen.append(await updates.__anext__())
            await act(tracker, running, Succeed("w1", result=1))
            seen.append(await updates.__anext__())
        assert [j.state for j in seen] == [JobState.PENDING, JobState.RUNNING, JobState.SUCCEEDED]


async def test_the_hub_remembers_a_bounded_number_of_created_jobs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_watch, "HUB_BUFFER", 2)
    async with tracking() as tracker:
        await listening(tracker)
        jobs = [await tracker.submit("echo", n, owner="u1") for n in range(3)]
        assert list(tracker._hub._fresh) == [jobs[1].id, jobs[2].id]  # the oldest dropped
        again = await tracker.submit("echo", 9, owner="u1", idempotency_key="k")
        await tracker.submit("echo", 9, owner="u1", idempotency_key="k")  # the same job
        assert list(tracker._hub._fresh) == [jobs[2].id, again.id]


async def test_a_timed_out_wait_names_the_state_now() -> None:
    clock = ManualClock()
    store = CountingStore(clock)
    async with tracking(clock, store=store) as tracker:
        await listening(tracker)
        job = await tracker.submit("echo", 6, owner="u1")
        await act(tracker, job, Start("w1", lease=30))  # the wait starts from v1 (pending)
        with pytest.raises(JobTimeout, match="still running"):
            await tracker.wait(job.id, timeout=0.05)
        # The read after the timeout fails: the last version seen is named instead.
        fresh = await tracker.submit("echo", 7, owner="u1")
        store.down = True
        with pytest.raises(JobTimeout, match="still pending"):
            await tracker.wait(fresh.id, timeout=0.05)
        store.down = False
        # The record vanished meanwhile: likewise.
        third = await tracker.submit("echo", 8, owner="u1")
        store.hidden = True
        with pytest.raises(JobTimeout, match="still pending"):
            await tracker.wait(third.id, timeout=0.05)
        with pytest.raises(JobNotFound):  # never seen at all: not found
            await tracker.wait("no-such-job", timeout=0.05)
        store.hidden = False
        store.down = True
        with pytest.raises(BackendUnavailable):  # nothing seen, and the store is down
            await tracker.wait(job.id, timeout=0.05)


async def test_on_the_system_clock_a_change_never_announced_is_found_by_the_resync(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_watch, "RESYNC", 0.05)
    async with EventBus(MemoryBusBackend()) as bus:
        store = MemoryJobStore()
        tracker = JobTracker(bus, store, run_reaper=False)
        tracker.declare("echo")
        async with tracker:
            job = await tracker.submit("echo", 1, owner="u1")
            seen: list[JobState] = []
            ended = anyio.Event()

            async def follow() -> None:
                async for update in tracker.watch(job.id):
                    seen.append(update.state)
                ended.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(follow)
                with anyio.fail_after(5):
                    while not seen:
                        await anyio.lowlevel.checkpoint()
                # A write whose event was lost: only the periodic read finds it.
                done = dataclasses.replace(
                    job, version=2, state=JobState.CANCELLED, finished_at=job.created_at
                )
                await store.replace(done, expected_version=1)
                with anyio.fail_after(5):
                    await ended.wait()
    assert seen == [JobState.PENDING, JobState.CANCELLED]


async def test_an_end_its_event_cannot_tell_is_read_from_the_store() -> None:
    clock = ManualClock()
    store = CountingStore(clock)
    async with tracking(clock, store=store) as tracker:
        await listening(tracker)
        job = await tracker.submit("echo", 1, owner="u1")
        running = await act(tracker, job, Start("w1", lease=30))
        done: list[Job] = []

        async def waiter() -> None:
            done.append(await tracker.wait(job.id, timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.01)
            # A durable job's end (a step completed since the wait began: its outputs
            # are not in the event) and an event without the job's view (a claim check's
            # stand-in): both make the waiter read the store.
            ended = dataclasses.replace(
                running, version=running.version + 1, state=JobState.SUCCEEDED,
                finished_at=clock.time(), worker=None, lease_until=None, result=7,
                step=1, step_outputs=(7,),
            )  # fmt: skip
            await tracker.store.replace(ended, expected_version=running.version)
            store.gets = 0
            await tracker.bus.publish(job_event(ended, SUCCEEDED, source="/t"))
        assert store.gets == 1
        assert done == [ended]
        second = await tracker.submit("echo", 2, owner="u1")
        stand_in: list[Job] = []

        async def second_waiter() -> None:
            stand_in.append(await tracker.wait(second.id, timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(second_waiter)
            await anyio.sleep(0.01)
            cancelled = transition(second, Cancel("no"), clock.time())  # not announced
            await tracker.store.replace(cancelled, expected_version=second.version)
            store.gets = 0
            event = job_event(cancelled, CANCELLED_TYPE, source="/t")
            await tracker.bus.publish(event.model_copy(update={"data": None}))
        assert store.gets == 1
        assert stand_in == [cancelled]


async def test_a_completion_between_the_first_read_and_the_end_is_not_lost() -> None:
    """The watch registers before its first read: an end announced in between is heard."""
    clock = ManualClock()
    store = CountingStore(clock)
    async with tracking(clock, store=store) as tracker:
        await listening(tracker)
        job = await tracker.submit("echo", 3, owner="u1")
        await ended_fresh(tracker, job.id)
        tracker._hub.take_fresh(job.id)  # a job created elsewhere: the wait reads it first
        reading, finish = anyio.Event(), anyio.Event()
        inner_get = store.get

        async def slow_get(job_id: str) -> Job | None:
            found = await inner_get(job_id)  # pending, as read
            reading.set()
            await finish.wait()  # the job ends (and is announced) before this read returns
            return found

        store.get = slow_get  # type: ignore[method-assign]
        done: list[Job] = []

        async def waiter() -> None:
            done.append(await tracker.wait(job.id, timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            with anyio.fail_after(5):
                await reading.wait()
            store.get = inner_get  # type: ignore[method-assign]
            running = await act(tracker, job, Start("w1", lease=30))
            last = await act(tracker, running, Succeed("w1", result=3))
            await anyio.sleep(0.01)  # the hub hands the end to the waiter's inbox
            finish.set()
        assert done == [last]


async def ended_fresh(tracker: JobTracker, job_id: str) -> None:
    assert job_id in tracker._hub._fresh


async def test_a_wait_is_woken_by_the_end_only() -> None:
    async with tracking() as tracker:
        await listening(tracker)
        job = await tracker.submit("echo", 4, owner="u1")
        done: list[Job] = []

        async def waiter() -> None:
            done.append(await tracker.wait(job.id, timeout=5))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            with anyio.fail_after(5):
                while job.id not in tracker._hub._inboxes:
                    await anyio.lowlevel.checkpoint()
            [inbox] = tracker._hub._inboxes[job.id]
            asleep = inbox._ready  # a note would set it, and the woken waiter renew it
            running = await act(tracker, job, Start("w1", lease=30))
            running = await act(tracker, running, ReportProgress("w1", Progress(0.5)))
            await anyio.sleep(0.01)
            assert inbox._ready is asleep  # announced, but not the end: still asleep
            assert not asleep.is_set()
            await act(tracker, running, Succeed("w1", result=4))
        assert [j.result for j in done] == [4]
