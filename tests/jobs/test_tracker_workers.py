"""JobTracker end to end with its workers on the memory bus: the events a watcher sees."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from eventpatterns import EventBus
from eventpatterns.backends.memory import MemoryBlobStore, MemoryBusBackend, MemoryJobStore
from eventpatterns.bus import Backoff
from eventpatterns.errors import InvalidJobInput
from eventpatterns.jobs import FailJob, JobContext, JobState, JobTracker, URLSigner

from .test_tracker import EVERY_JOB_EVENT, announced, types

pytestmark = pytest.mark.anyio

QUICK = Backoff(initial=0.01, maximum=0.01, jitter=0)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Render(BaseModel):
    frames: int


calls: list[Any] = []


async def render(ctx: JobContext[Render]) -> dict[str, int]:
    calls.append(ctx.input)
    await ctx.progress(0.5, "half way")
    return {"frames": ctx.input.frames}


async def flaky(ctx: JobContext[Any]) -> None:
    raise RuntimeError(f"attempt {ctx.attempt} broke")


async def refuse(ctx: JobContext[Any]) -> None:
    raise FailJob("bad data")


async def forever(ctx: JobContext[Any]) -> None:
    await ctx.progress(0.1, "started")
    await anyio.sleep_forever()


async def big(ctx: JobContext[Any]) -> str:
    return "x" * 1000


async def double(ctx: JobContext[int], value: int) -> int:
    return value * 2


@asynccontextmanager
async def running() -> AsyncIterator[JobTracker]:
    signer = URLSigner(b"k" * 32, base_url="/blobs")
    async with EventBus(MemoryBusBackend()) as bus:
        tracker = JobTracker(
            bus, MemoryJobStore(), blobs=MemoryBlobStore(signer=signer),
            reaper_interval=0.02, inline_limit=100,
        )  # fmt: skip
        tracker.worker("render")(render)
        tracker.worker("flaky", max_attempts=3, backoff=QUICK)(flaky)
        tracker.worker("refuse")(refuse)
        tracker.worker("forever", lease=5)(forever)
        tracker.worker("big")(big)
        tracker.durable("double", [double, double, double])
        tracker.declare("elsewhere")
        async with tracker:
            yield tracker


async def test_a_job_that_succeeds() -> None:
    calls.clear()
    async with running() as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
        with pytest.raises(InvalidJobInput):  # the handler's annotation is the input model
            await tracker.submit("render", {"frames": "many"}, owner="u1")
        job = await tracker.submit("render", {"frames": 24}, owner="u1")
        done = await tracker.wait(job.id, timeout=10)
        events = await announced(tracker.bus, sub)
        assert await tracker.result(done) == {"frames": 24}
    assert calls == [Render(frames=24)]
    assert types(events) == ["pending", "running", "progress", "succeeded"]
    assert (done.state, done.attempts, done.progress.message) == (
        JobState.SUCCEEDED,
        1,
        "half way",
    )


async def test_a_job_that_fails_after_its_retries() -> None:
    async with running() as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
        job = await tracker.submit("flaky", None, owner="u1")
        done = await tracker.wait(job.id, timeout=10)
        refused = await tracker.wait((await tracker.submit("refuse", 1, owner="u1")).id, timeout=10)
        events = await announced(tracker.bus, sub)
    assert (done.state, done.attempts) == (JobState.FAILED, 3)
    assert done.error == "RuntimeError: attempt 3 broke"
    assert (refused.state, refused.attempts, refused.error) == (JobState.FAILED, 1, "bad data")
    assert types([e for e in events if e.subject == job.id]) == [
        *["pending", "running", "retrying"],
        *["pending", "running", "retrying"],
        *["pending", "running", "failed"],
    ]


async def test_jobs_cancelled_while_pending_and_while_running() -> None:
    async with running() as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
        waiting = await tracker.submit("elsewhere", 1, owner="u1")  # no worker here
        assert (await tracker.cancel(waiting.id)).state is JobState.CANCELLED
        job = await tracker.submit("forever", 1, owner="u1")
        async with tracker.watch(job.id) as updates:
            async for update in updates:
                if update.progress.message == "started":
                    break
        asked = await tracker.cancel(job.id, owner="u1")
        assert (asked.state, asked.cancel_requested) == (JobState.RUNNING, True)
        done = await tracker.wait(job.id, timeout=10)
        events = await announced(tracker.bus, sub)
    assert done.state is JobState.CANCELLED
    assert types([e for e in events if e.subject == waiting.id]) == ["pending", "cancelled"]
    assert types([e for e in events if e.subject == job.id]) == [
        *["pending", "running", "progress", "cancelling", "cancelled"],
    ]


async def test_a_large_result_goes_to_the_blob_store_and_durable_steps_chain() -> None:
    async with running() as tracker:
        large = await tracker.wait((await tracker.submit("big", 1, owner="u1")).id, timeout=10)
        chained = await tracker.wait((await tracker.submit("double", 5, owner="u1")).id, timeout=10)
        assert large.result_ref is not None
        assert await tracker.result(large) == "x" * 1000
        url = await tracker.result_url(large, expires_in=60)
        assert url is not None
        assert url.startswith(f"/blobs/{large.result_ref.key}?expires=")
    assert (chained.state, chained.result) == (JobState.SUCCEEDED, 40)


async def test_a_job_submitted_before_any_worker_started_runs_when_one_does() -> None:
    store = MemoryJobStore()
    async with EventBus.from_url("memory://") as bus:
        front = JobTracker(bus, store, dispatch_recheck=3600, run_workers=False)
        front.declare("late")
        async with front:
            job = await front.submit("late", {"n": 1}, owner="u1")
            back = JobTracker(bus, store, dispatch_recheck=3600, run_reaper=False)

            @back.worker("late")
            async def late(ctx: JobContext[dict[str, int]]) -> int:
                return ctx.input["n"] + 1

            async with back:
                done = await front.wait(job.id, timeout=10)  # not a dispatch_recheck later
    assert (done.state, done.result) == (JobState.SUCCEEDED, 2)
