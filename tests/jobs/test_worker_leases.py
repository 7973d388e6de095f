"""Leases, cancellation, deadlines, shutdown and an unreachable store, on the memory backend."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from eventpatterns import Backoff
from eventpatterns.errors import BackendUnavailable
from eventpatterns.jobs import Cancel, ExpireLease, Job, JobContext, JobState, transition
from eventpatterns.testing import ManualClock, eventually

from .worker_helpers import FlakyStore, kind, running_pool

pytestmark = pytest.mark.anyio

NOW = Backoff(initial=0.0, maximum=0.0, jitter=0.0)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Probe:
    """A handler that waits forever and records how it ended."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled = anyio.Event()
        self.saw_cancel_request: bool | None = None

    async def handler(self, ctx: JobContext[Any]) -> str:
        self.started.set()
        try:
            await anyio.sleep_forever()
        finally:
            self.saw_cancel_request = ctx.cancelled
            self.cancelled.set()
        return "never"  # pragma: no cover


# -- cancellation ---------------------------------------------------------------------------


async def test_a_cancel_reaches_the_running_handler_through_the_bus() -> None:
    probe = Probe()
    # A lease of 300 s heartbeats every 100 s: only the bus can stop it within the bound.
    # Two pools: the one not running the job ignores the cancelling event.
    async with running_pool(kind("probe", probe.handler, lease=300), workers=2) as h:
        job = await h.submit("probe")
        await probe.started.wait()
        await h.ops.apply(job.id, lambda j: Cancel("the user gave up"))
        with anyio.fail_after(5):
            await probe.cancelled.wait()
        done = await h.final(job.id, within=5)
        types = await h.announced(job.id, "cancelled")
    assert done.state is JobState.CANCELLED
    assert done.error == "the user gave up"
    assert probe.saw_cancel_request is True
    assert types[-3:] == ["running", "cancelling", "cancelled"]


async def test_an_unannounced_cancel_reaches_the_handler_through_the_heartbeat() -> None:
    probe = Probe()
    async with running_pool(kind("probe", probe.handler, lease=0.3)) as h:
        job = await h.submit("probe")
        await probe.started.wait()
        running = await h.get(job.id)  # cancelled in the store only: no event on the bus
        asked = transition(running, Cancel(), h.clock.time())
        await h.store.replace(asked, expected_version=running.version)
        done = await h.final(job.id, within=5)
        types = await h.announced(job.id, "cancelled")
    assert done.state is JobState.CANCELLED
    assert probe.saw_cancel_request is True
    assert "cancelling" not in types


async def test_work_a_handler_finishes_despite_a_cancel_is_kept() -> None:
    started = anyio.Event()

    async def stubborn(ctx: JobContext[None]) -> str:
        started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():  # returns at once instead of re-raising
            return "finished anyway"
        return "never"  # pragma: no cover

    async with running_pool(kind("stubborn", stubborn, lease=300)) as h:
        job = await h.submit("stubborn")
        await started.wait()
        await h.ops.apply(job.id, lambda j: Cancel())
        done = await h.final(job.id, within=5)
    assert done.state is JobState.SUCCEEDED
    assert done.result == "finished anyway"


async def test_a_handler_failing_as_its_timeout_cancels_it_is_recorded_as_timed_out() -> None:
    async def messy(ctx: JobContext[None]) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            raise RuntimeError("cleanup failed")

    async with running_pool(kind("messy", messy, timeout=0.05)) as h:
        job = await h.submit("messy")
        done = await h.in_state(job.id, JobState.RETRYING)
    assert done.error == "timed out after 0.05 s"


# -- lost leases ----------------------------------------------------------------------------


async def test_a_lost_lease_cancels_the_handler_and_the_job_is_retried() -> None:
    clock = ManualClock(start=time.time())
    probe = Probe()
    async with running_pool(kind("probe", probe.handler, lease=0.3, backoff=NOW), clock=clock) as h:
        job = await h.submit("probe")
        await probe.started.wait()
        clock.advance(1.0)  # the worker "hung" past its lease
        expired = await h.ops.apply(job.id, lambda j: ExpireLease(backoff=NOW))
        with anyio.fail_after(5):
            await probe.cancelled.wait()  # its next heartbeat was refused
        await eventually(lambda: not h.pool.running)
    assert expired is not None
    assert expired.state is JobState.RETRYING
    assert expired.error == "lease expired: worker 'w1' stopped heartbeating"
    assert probe.saw_cancel_request is False
    assert (await h.get(job.id)) == expired  # the worker wrote nothing more


async def test_the_result_of_an_attempt_that_lost_its_lease_is_dropped() -> None:
    clock = ManualClock(start=time.time())
    started, finish = anyio.Event(), anyio.Event()

    async def stubborn(ctx: JobContext[None]) -> str:
        if ctx.attempt == 1:
            started.set()
            with anyio.CancelScope(shield=True):  # finishes whatever happens around it
                await finish.wait()
            return "late"
        return "second"

    async with running_pool(kind("stubborn", stubborn, lease=0.3), clock=clock) as h:
        job = await h.submit("stubborn")
        await started.wait()
        clock.advance(1.0)
        await h.ops.apply(job.id, lambda j: ExpireLease(backoff=NOW))
        finish.set()  # the first attempt returns "late", after losing the job
        await eventually(lambda: not h.pool.running)
        dropped = await h.get(job.id)
        await h.dispatch(job.id)
        done = await h.final(job.id)
    assert dropped.state is JobState.RETRYING
    assert dropped.result is None
    assert done.state is JobState.SUCCEEDED
    assert done.result == "second"
    assert done.attempts == 2


async def test_a_deadline_passing_mid_run_fails_the_job_and_stops_the_handler() -> None:
    probe = Probe()
    async with running_pool(kind("probe", probe.handler, lease=300)) as h:
        job = await h.submit("probe", deadline=time.time() + 0.3)
        with anyio.fail_after(5):
            await probe.cancelled.wait()  # the worker woke at the deadline, not a heartbeat
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error == "deadline exceeded"


async def test_a_start_past_the_deadline_fails_the_job_without_running_it() -> None:
    probe = Probe()
    async with running_pool(kind("probe", probe.handler)) as h:
        job = await h.submit("probe", deadline=time.time() - 1)  # dispatched too late
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error == "deadline exceeded"
    assert not probe.started.is_set()


# -- shutdown -------------------------------------------------------------------------------


async def test_shutting_down_releases_running_jobs_for_a_prompt_retry() -> None:
    probe = Probe()
    async with running_pool(kind("probe", probe.handler)) as h:
        job = await h.submit("probe")
        await probe.started.wait()
    released = await h.get(job.id)
    assert probe.cancelled.is_set()
    assert released.state is JobState.RETRYING
    assert released.error == "worker shut down"
    assert released.run_after == released.updated_at  # due at once
    assert released.worker is None


# -- an unreachable store -------------------------------------------------------------------


async def test_the_job_finishes_when_the_store_comes_back_within_the_lease() -> None:
    clock = ManualClock(start=time.time())  # the lease never runs out on its own
    flaky: list[FlakyStore] = []
    started, go = anyio.Event(), anyio.Event()

    async def patient(ctx: JobContext[None]) -> str:
        started.set()
        await go.wait()
        await ctx.progress(0.5, "half")  # the store is down: skipped
        return "ok"

    def wrap(store: Any) -> Any:
        flaky.append(FlakyStore(store))
        return flaky[0]

    async with running_pool(kind("patient", patient, lease=0.3), clock=clock, wrap=wrap) as h:
        job = await h.submit("patient")
        await started.wait()
        flaky[0].down = True
        go.set()
        await eventually(lambda: flaky[0].refused >= 5)  # heartbeats, progress, Succeed
        assert (await h.get(job.id)).state is JobState.RUNNING
        flaky[0].down = False
        done = await h.final(job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.result == "ok"
    assert done.progress.message == ""  # the report made while down was skipped


async def test_a_store_down_past_the_lease_loses_the_attempt() -> None:
    flaky: list[FlakyStore] = []
    started, go = anyio.Event(), anyio.Event()

    async def quick(ctx: JobContext[None]) -> str:
        started.set()
        await go.wait()
        return "ok"

    def wrap(store: Any) -> Any:
        flaky.append(FlakyStore(store))
        return flaky[0]

    async with running_pool(kind("quick", quick, lease=0.3), wrap=wrap) as h:
        job = await h.submit("quick")
        await started.wait()
        flaky[0].down = True
        go.set()  # its Succeed is tried until the lease ends, then left to the reaper
        await eventually(lambda: not h.pool.running)
        left = await h.get(job.id)
    assert left.state is JobState.RUNNING
    assert left.lease_until is not None
    assert left.lease_until <= time.time()  # the reaper's ExpireLease takes it from here


async def test_a_heartbeat_failing_past_the_lease_stops_the_handler() -> None:
    probe = Probe()
    flaky: list[FlakyStore] = []

    def wrap(store: Any) -> Any:
        flaky.append(FlakyStore(store))
        return flaky[0]

    async with running_pool(kind("probe", probe.handler, lease=0.3), wrap=wrap) as h:
        await h.submit("probe")
        await probe.started.wait()
        flaky[0].down = True
        with anyio.fail_after(5):
            await probe.cancelled.wait()
        await eventually(lambda: not h.pool.running)
    assert probe.saw_cancel_request is False


async def test_a_dispatch_the_store_refused_is_redelivered() -> None:
    flaky: list[FlakyStore] = []
    runs: list[int] = []

    async def work(ctx: JobContext[None]) -> None:
        runs.append(ctx.attempt)

    def wrap(store: Any) -> Any:
        flaky.append(FlakyStore(store))
        return flaky[0]

    async with running_pool(kind("work", work), wrap=wrap) as h:
        flaky[0].down = True
        job = await h.submit("work")  # stored and announced; the worker cannot Start it
        await eventually(lambda: flaky[0].refused >= 1)
        flaky[0].down = False
        done = await h.final(job.id)
    assert done.state is JobState.SUCCEEDED
    assert runs == [1]


class RefuseOneStart(FlakyStore):
    """Refuses the first ``Start`` it sees (the store "down" for that write only)."""

    refused_id: str | None = None

    async def replace(self, job: Job, *, expected_version: int) -> Job:
        if job.state is JobState.RUNNING and not self.refused:
            self.refused += 1
            self.refused_id = job.id
            raise BackendUnavailable("the job store is down (test)")
        return await super().replace(job, expected_version=expected_version)


async def test_a_refused_start_among_a_batch_of_dispatches_is_redelivered_alone() -> None:
    runs: list[str] = []

    async def work(ctx: JobContext[None]) -> None:
        runs.append(ctx.job.id)

    refusing: list[RefuseOneStart] = []

    def wrap(store: Any) -> Any:
        refusing.append(RefuseOneStart(store))
        return refusing[0]

    async with running_pool(kind("work", work), wrap=wrap) as h:
        jobs: list[Job] = []

        async def submit() -> None:
            jobs.append(await h.submit("work"))

        async with anyio.create_task_group() as tg:  # at once: dispatched in few receives
            for _ in range(8):
                tg.start_soon(submit)
        done = [await h.final(job.id) for job in jobs]
    assert refusing[0].refused == 1
    assert refusing[0].refused_id in {job.id for job in jobs}
    assert [job.state for job in done] == [JobState.SUCCEEDED] * 8
    assert sorted(runs) == sorted(job.id for job in jobs)  # each ran once, the refused one too
