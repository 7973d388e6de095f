"""JobTracker.watch and wait on the memory bus: current state first, changes in order, the end."""

from __future__ import annotations

import dataclasses

import anyio
import anyio.lowlevel
import pytest

from eventpatterns.backends.memory import MemoryJobStore
from eventpatterns.errors import ConfigurationError, JobNotFound, JobTimeout, SubscriptionClosed
from eventpatterns.jobs import (
    Job,
    JobState,
    JobTracker,
    Progress,
    ReportProgress,
    Start,
    Succeed,
    _watch,
)
from eventpatterns.jobs._events import PROGRESS, job_event
from eventpatterns.jobs._watch import RESYNC
from eventpatterns.testing import ManualClock

from .test_tracker import act, tracking
from .worker_helpers import FlakyStore

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def collect(tracker: JobTracker, job_id: str, into: list[Job]) -> None:
    async for job in tracker.watch(job_id):
        into.append(job)


async def until(count: int, seen: list[Job]) -> None:
    """Let the watcher run until it has yielded ``count`` jobs (fails after 5 s)."""
    with anyio.fail_after(5):
        while len(seen) < count:
            await anyio.lowlevel.checkpoint()


async def test_a_late_watcher_gets_the_current_state_then_every_change_then_ends() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        job = await act(tracker, job, Start("w1", lease=30))  # before anyone watches
        seen: list[Job] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, tracker, job.id, seen)
            await until(1, seen)
            for step in (0.25, 0.5):
                job = await act(tracker, job, ReportProgress("w1", Progress(step)))
                await until(len(seen) + 1, seen)
            job = await act(tracker, job, Succeed("w1", result="done"))
        # the watcher's loop ended by itself after the final state
    assert [(j.version, j.state.value, j.progress.fraction) for j in seen] == [
        (2, "running", 0.0),
        (3, "running", 0.25),
        (4, "running", 0.5),
        (5, "succeeded", 1.0),
    ]
    assert seen[-1] == job


async def test_watching_a_final_job_yields_it_once() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        done = await tracker.cancel(job.id)
        assert [j async for j in tracker.watch(job.id)] == [done]


async def test_watch_refuses_unknown_jobs_and_other_owners() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        with pytest.raises(JobNotFound):
            [j async for j in tracker.watch("no-such-job")]
        with pytest.raises(JobNotFound):
            [j async for j in tracker.watch(job.id, owner="u2")]
        async with tracker.watch(job.id, owner="u1") as watch:
            assert await watch.__anext__() == job


async def test_changes_in_quick_succession_arrive_once_in_version_order() -> None:
    async with tracking() as tracker:
        job = await act(tracker, await tracker.submit("echo", 1, owner="u1"), Start("w1", lease=30))
        watch = tracker.watch(job.id)
        first = await watch.__anext__()
        # Two changes land before the watcher runs again: on the first event it reads
        # the store, which holds the second already; the second event is then skipped.
        for n in (1, 2):
            job = await act(tracker, job, ReportProgress("w1", Progress(n / 10)))
        second = await watch.__anext__()
        job = await act(tracker, job, Succeed("w1"))
        rest = [j async for j in watch]
    assert [first.version, second.version] + [j.version for j in rest] == [2, 4, 5]
    assert second.progress.fraction == 0.2
    assert rest[-1] == job
    assert watch.last == job


async def test_closing_a_watch_from_another_task_ends_its_loop() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        watch = tracker.watch(job.id)
        seen: list[Job] = []

        async def loop() -> None:
            async for update in watch:
                seen.append(update)

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(loop)
                await until(1, seen)
                await anyio.sleep(0.01)  # the loop waits for the next event now
                await watch.aclose()
        assert seen == [job]
        assert watch.last == job


async def test_a_watcher_that_missed_events_reads_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_watch, "HUB_BUFFER", 8)  # the tracker's hub holds 8 events
    async with tracking() as tracker:
        job = await act(tracker, await tracker.submit("echo", 1, owner="u1"), Start("w1", lease=30))
        async with tracker.watch(job.id) as watch:
            assert (await watch.__anext__()).version == job.version
            # More events than the hub holds, published at once: it is told of a gap.
            versions = []
            for _n in range(8 + 10):
                new = dataclasses.replace(job, version=job.version + 1, progress=Progress(0.5))
                job = await tracker.store.replace(new, expected_version=job.version)
                versions.append(job_event(job, PROGRESS, source="/t"))
            await tracker.bus.publish_batch(versions)
            got = await watch.__anext__()
        assert got == job  # the newest version, read after the gap
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()  # closed by `async with`


async def test_a_change_never_announced_is_found_by_the_periodic_read() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        seen: list[Job] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, tracker, job.id, seen)
            await until(1, seen)
            await anyio.sleep(0.01)  # the watcher waits for an event or its resync now
            clock.advance(RESYNC)  # nothing new: the periodic read yields nothing
            await anyio.sleep(0.01)
            # A worker's write whose event was lost: the store has it, the bus does not.
            started = dataclasses.replace(
                job, version=2, state=JobState.RUNNING, worker="w1", lease_until=clock.time() + 9
            )
            await tracker.store.replace(started, expected_version=1)
            with anyio.fail_after(5):
                while len(seen) < 2:
                    clock.advance(RESYNC)
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    assert [j.state for j in seen] == [JobState.PENDING, JobState.RUNNING]


async def test_wait_returns_the_final_job_or_times_out_naming_its_state() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        with pytest.raises(JobTimeout, match="still pending") as caught:
            await tracker.wait(job.id, timeout=0.05)
        assert (caught.value.job_id, caught.value.state) == (job.id, "pending")
        with pytest.raises(ConfigurationError, match="timeout"):
            await tracker.wait(job.id, timeout=0)
        with pytest.raises(JobNotFound):
            await tracker.wait(job.id, timeout=1, owner="u2")

        async def finish() -> None:
            running = await act(tracker, job, Start("w1", lease=30))
            await act(tracker, running, Succeed("w1", result=42))

        async with anyio.create_task_group() as tg:
            tg.start_soon(finish)
            done = await tracker.wait(job.id, timeout=5)
    assert done.state is JobState.SUCCEEDED
    assert done.result == 42


async def test_a_watch_ends_with_the_bus() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        watch = tracker.watch(job.id)
        await watch.__anext__()
        await tracker.bus.aclose()
        with pytest.raises(SubscriptionClosed):
            await watch.__anext__()
        with pytest.raises(StopAsyncIteration):
            await watch.__anext__()


class StuckStore(MemoryJobStore):
    """A store whose next read hangs (a stalled connection) until cancelled."""

    stuck = False

    async def get(self, job_id: str) -> Job | None:
        if self.stuck:
            self.stuck = False
            await anyio.sleep_forever()
        return await super().get(job_id)


async def test_a_wait_that_times_out_before_its_first_read_names_the_state_now() -> None:
    store = StuckStore()
    async with tracking(store=store) as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        store.stuck = True
        with pytest.raises(JobTimeout, match="still pending"):
            await tracker.wait(job.id, timeout=0.05)
        store.stuck = True
        with pytest.raises(JobNotFound):
            await tracker.wait("no-such-job", timeout=0.05)


async def test_a_watcher_outlives_an_unreachable_store() -> None:
    clock = ManualClock()
    flaky = FlakyStore(MemoryJobStore(clock=clock))
    async with tracking(clock, store=flaky) as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        seen: list[Job] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(collect, tracker, job.id, seen)
            await until(1, seen)
            flaky.down = True
            with anyio.fail_after(5):
                while flaky.refused < 2:  # its periodic reads fail, and are logged
                    clock.advance(RESYNC)
                    await anyio.sleep(0.01)
            flaky.down = False
            await tracker.cancel(job.id)
            await until(2, seen)
    assert [j.state for j in seen] == [JobState.PENDING, JobState.CANCELLED]
