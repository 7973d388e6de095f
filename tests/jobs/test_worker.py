"""The worker pool on a memory bus and store: dispatch, concurrency, results, failures."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from eventpatterns import Backoff, Event
from eventpatterns.backends.memory import MemoryBlobStore
from eventpatterns.bus import check_group_name
from eventpatterns.errors import BackendUnavailable, BlobNotFound, ConfigurationError
from eventpatterns.jobs import Blob, ExpireLease, FailJob, Job, JobContext, JobState
from eventpatterns.jobs._context import Attempt
from eventpatterns.jobs._events import PENDING, job_event
from eventpatterns.jobs._worker import MAX_ERROR, WorkerPool, describe, group_name
from eventpatterns.testing import ManualClock, eventually

from .worker_helpers import kind, running_pool

pytestmark = pytest.mark.anyio

NOW = Backoff(initial=0.0, maximum=0.0, jitter=0.0)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Render(BaseModel):
    frames: int
    title: str = "untitled"


async def render(ctx: JobContext[Render]) -> dict[str, Any]:
    for frame in range(ctx.input.frames):
        await ctx.progress((frame + 1) / ctx.input.frames, f"frame {frame + 1}")
    return {"frames": ctx.input.frames, "title": ctx.input.title, "attempt": ctx.attempt}


# -- the happy path -------------------------------------------------------------------------


async def test_a_dispatched_job_runs_and_its_result_is_inline() -> None:
    async with running_pool(kind("render", render)) as h:
        job = await h.submit("render", {"frames": 3, "title": "intro"})
        done = await h.final(job.id)
        types = await h.announced(job.id, "succeeded")
    assert done.state is JobState.SUCCEEDED
    assert done.result == {"frames": 3, "title": "intro", "attempt": 1}
    assert done.result_ref is None
    assert done.attempts == 1
    assert done.worker is None
    assert done.progress.fraction == 1.0
    assert done.progress.message == "frame 3"
    assert types == ["pending", "running", "progress", "progress", "progress", "succeeded"]


async def test_the_context_carries_the_job_the_attempt_and_the_worker() -> None:
    seen: list[tuple[str, int, str, bool, Any]] = []

    async def look(ctx: JobContext[Any]) -> None:
        seen.append((ctx.job.id, ctx.attempt, ctx.worker_id, ctx.cancelled, ctx.input))
        await ctx.heartbeat()

    async with running_pool(kind("look", look)) as h:
        job = await h.submit("look", {"any": ["json", 1]})
        done = await h.final(job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.result is None
    assert seen == [(job.id, 1, "w1", False, {"any": ["json", 1]})]


async def test_at_most_concurrency_handlers_run_at_once() -> None:
    now = most = 0
    release = anyio.Event()

    async def busy(ctx: JobContext[None]) -> int:
        nonlocal now, most
        now += 1
        most = max(most, now)
        try:
            await release.wait()
        finally:
            now -= 1
        return 1

    async with running_pool(kind("busy", busy, concurrency=2)) as h:
        jobs = [await h.submit("busy") for _ in range(5)]
        for job in jobs[:2]:
            await h.in_state(job.id, JobState.RUNNING)
        await anyio.sleep(0.05)  # the three others stay pending while the slots are taken
        states = [(await h.get(job.id)).state for job in jobs]
        release.set()
        finals = [await h.final(job.id) for job in jobs]
    assert states.count(JobState.RUNNING) == 2
    assert states.count(JobState.PENDING) == 3
    assert most == 2
    assert all(job.state is JobState.SUCCEEDED for job in finals)


async def test_two_pools_run_each_job_exactly_once() -> None:
    runs: dict[str, list[str]] = {}

    async def once(ctx: JobContext[None]) -> None:
        runs.setdefault(ctx.job.id, []).append(ctx.worker_id)
        await anyio.sleep(0.001)

    async with running_pool(kind("once", once, concurrency=3), workers=2) as h:
        jobs = [await h.submit("once") for _ in range(20)]
        for job in jobs:
            assert (await h.final(job.id)).state is JobState.SUCCEEDED
    assert sorted(runs) == sorted(job.id for job in jobs)
    assert all(len(workers) == 1 for workers in runs.values())


async def test_a_duplicate_or_stale_dispatch_is_dropped() -> None:
    runs: list[str] = []

    async def count(ctx: JobContext[None]) -> None:
        runs.append(ctx.job.id)

    async with running_pool(kind("count", count)) as h:
        job = await h.submit("count")
        done = await h.final(job.id)
        # The same dispatch again (a new event id: the bus does not dedupe it), and one
        # for a job that does not exist: both are acknowledged and do nothing.
        stale = job_event(job, PENDING, source="/test")
        await h.bus.publish(Event.from_dict({**stale.to_dict(), "id": "again"}))
        ghost = {**stale.to_dict(), "id": "ghost", "subject": "no-such-job"}
        await h.bus.publish(Event.from_dict(ghost))
        other = await h.ops.create(Job.new("other", "elsewhere", owner="bob", input=None, now=0))
        wrong = job_event(other, PENDING, source="/test").to_dict()  # a job of another kind
        await h.bus.publish(Event.from_dict({**wrong, "id": "wrong", "jobkind": "count"}))
        nameless = {k: v for k, v in stale.to_dict().items() if k != "subject"}
        await h.bus.publish(Event.from_dict({**nameless, "id": "nameless"}))
        for consumer in h.pool.consumers:
            await consumer.drain()
        assert await h.get(job.id) == done
        assert (await h.get("other")).state is JobState.PENDING
    assert runs == [job.id]


async def test_a_pool_with_nothing_to_run_returns_at_once() -> None:
    async with running_pool(kind("declared")) as h:
        assert h.pool.kinds == {}
        assert h.pool.consumers == []


# -- input ----------------------------------------------------------------------------------


async def test_stored_input_the_model_refuses_fails_the_job_for_good() -> None:
    async with running_pool(kind("render", render)) as h:
        job = await h.submit("render", {"frames": "many"})
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.attempts == 1
    assert done.error is not None
    assert done.error.startswith("InvalidJobInput: invalid input for job kind 'render'")
    assert "frames" in done.error
    assert "integer" in done.error


# -- failures -------------------------------------------------------------------------------


async def test_an_exception_is_retried_then_the_retry_succeeds() -> None:
    async def flaky(ctx: JobContext[None]) -> str:
        if ctx.attempt == 1:
            raise ValueError("the disk is full")
        return "ok"

    async with running_pool(kind("flaky", flaky, backoff=NOW)) as h:
        job = await h.submit("flaky")
        retrying = await h.in_state(job.id, JobState.RETRYING)
        await h.dispatch(job.id)  # what the reaper does once the retry is due
        done = await h.final(job.id)
    assert retrying.error == "ValueError: the disk is full"
    assert retrying.attempts == 1
    assert done.state is JobState.SUCCEEDED
    assert done.result == "ok"
    assert done.attempts == 2


async def test_the_last_attempt_failing_fails_the_job() -> None:
    async def broken(ctx: JobContext[None]) -> None:
        raise KeyError("frame 7")

    async with running_pool(kind("broken", broken, max_attempts=1)) as h:
        job = await h.submit("broken", max_attempts=1)
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error == "KeyError: 'frame 7'"


@pytest.mark.parametrize(("retryable", "state"), [(False, "failed"), (True, "retrying")])
async def test_fail_job_records_its_message_and_honours_retryable(
    retryable: bool, state: str
) -> None:
    async def refuse(ctx: JobContext[None]) -> None:
        raise FailJob("the video has no frames", retryable=retryable)

    async with running_pool(kind("refuse", refuse)) as h:
        job = await h.submit("refuse")
        done = await h.until(job.id, lambda j: j.state.value == state)
    assert done.error == "the video has no frames"
    assert done.attempts == 1


def test_an_error_is_cut_to_a_thousand_characters() -> None:
    text = describe(RuntimeError("x" * 5000))
    assert len(text) == MAX_ERROR
    assert text.startswith("RuntimeError: xxx")
    assert text[-1] == "…"
    assert describe(FailJob("short")) == "short"


async def test_a_bad_progress_report_fails_the_attempt_naming_it() -> None:
    async def overshoot(ctx: JobContext[None]) -> None:
        await ctx.progress(1.5)

    async with running_pool(kind("overshoot", overshoot)) as h:
        job = await h.submit("overshoot")
        done = await h.in_state(job.id, JobState.RETRYING)
    assert done.error == "ConfigurationError: progress fraction must be within [0, 1], got 1.5"


async def test_a_kind_timeout_fails_the_attempt_as_retryable() -> None:
    cancelled = anyio.Event()

    async def slow(ctx: JobContext[None]) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async with running_pool(kind("slow", slow, timeout=0.1)) as h:
        job = await h.submit("slow")
        done = await h.in_state(job.id, JobState.RETRYING)
    assert cancelled.is_set()
    assert done.error == "timed out after 0.1 s"


# -- results --------------------------------------------------------------------------------


async def test_a_large_result_goes_to_the_blob_store() -> None:
    blobs = MemoryBlobStore()

    async def big(ctx: JobContext[None]) -> list[int]:
        return list(range(100))

    async with running_pool(kind("big", big, ttl=60), blobs=blobs, inline_limit=50) as h:
        job = await h.submit("big")
        done = await h.final(job.id)
    assert done.state is JobState.SUCCEEDED
    assert done.result is None
    ref = done.result_ref
    assert ref is not None
    assert ref.content_type == "application/json"
    blob = await blobs.get(ref.key)
    assert json.loads(blob.data) == list(range(100))
    assert ref.size == blob.size
    assert blob.expires_at is not None
    assert blob.expires_at - blob.created_at == 60
    assert ref.key == f"jobs/{job.id}/result-1"


async def test_a_job_id_blob_keys_refuse_gets_a_derived_key() -> None:
    blobs = MemoryBlobStore()

    async def raw(ctx: JobContext[None]) -> bytes:
        return b"data"

    async with running_pool(kind("raw", raw), blobs=blobs) as h:
        odd = Job.new("odd id/../x", "raw", owner="alice", input=None, now=h.clock.time())
        await h.ops.create(odd)
        done = await h.final(odd.id)
    assert done.result_ref is not None
    key = done.result_ref.key
    assert key == f"jobs/{hashlib.sha256(odd.id.encode()).hexdigest()[:32]}/result-1"
    assert (await blobs.get(key)).data == b"data"


class GatedBlobs(MemoryBlobStore):
    """A real memory blob store whose ``put`` waits for the test, or fails while down."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = anyio.Event()
        self.gate = anyio.Event()
        self.error: Exception | None = None

    async def put(
        self, key: str, data: bytes, *, content_type: str = "application/octet-stream",
        ttl: float | None = None,
    ) -> Blob:  # fmt: skip
        self.entered.set()
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return await super().put(key, data, content_type=content_type, ttl=ttl)


async def test_a_blob_store_that_cannot_be_reached_retries_the_job() -> None:
    blobs = GatedBlobs()
    blobs.error = BackendUnavailable("the blob store is down (test)")
    blobs.gate.set()

    async def raw(ctx: JobContext[None]) -> bytes:
        return b"data"

    async with running_pool(kind("raw", raw), blobs=blobs) as h:
        job = await h.submit("raw")
        done = await h.in_state(job.id, JobState.RETRYING)
    assert done.error == "BackendUnavailable: the blob store is down (test)"


async def test_an_unexpected_blob_store_error_fails_the_attempt_and_the_pool_goes_on() -> None:
    blobs = GatedBlobs()
    blobs.error = OSError("no space left on device")
    blobs.gate.set()

    async def raw(ctx: JobContext[str]) -> Any:
        return b"data" if ctx.input == "bytes" else "inline"

    async with running_pool(kind("raw", raw), blobs=blobs) as h:
        job = await h.submit("raw", "bytes")
        failed = await h.in_state(job.id, JobState.RETRYING)
        other = await h.submit("raw", "small")
        done = await h.final(other.id)
    assert failed.error == "OSError: no space left on device"
    assert done.result == "inline"


async def test_a_blob_put_by_an_attempt_that_lost_its_lease_is_deleted() -> None:
    clock = ManualClock(start=time.time())
    blobs = GatedBlobs()

    async def raw(ctx: JobContext[None]) -> bytes:
        return b"late"

    async with running_pool(kind("raw", raw, lease=0.3), blobs=blobs, clock=clock) as h:
        job = await h.submit("raw")
        await blobs.entered.wait()  # the result is on its way to the blob store
        clock.advance(1.0)
        await h.ops.apply(job.id, lambda j: ExpireLease(backoff=NOW))
        blobs.gate.set()
        await eventually(lambda: not h.pool.running)
        left = await h.get(job.id)
    assert left.state is JobState.RETRYING
    assert left.result_ref is None
    with pytest.raises(BlobNotFound):
        await blobs.get(f"jobs/{job.id}/result-1")


async def test_bytes_always_go_to_the_blob_store() -> None:
    blobs = MemoryBlobStore()

    async def tiny(ctx: JobContext[None]) -> bytes:
        return b"\x00\x01"

    async with running_pool(kind("tiny", tiny), blobs=blobs) as h:
        job = await h.submit("tiny")
        done = await h.final(job.id)
    assert done.result_ref is not None
    assert done.result_ref.content_type == "application/octet-stream"
    assert (await blobs.get(done.result_ref.key)).data == b"\x00\x01"


@pytest.mark.parametrize(
    ("result", "why"), [(b"abc", "it is bytes"), ("x" * 100, "it is over inline_limit=50")]
)
async def test_a_result_for_the_blob_store_without_one_fails_for_good(
    result: Any, why: str
) -> None:
    async def produce(ctx: JobContext[None]) -> Any:
        return result

    async with running_pool(kind("produce", produce), inline_limit=50) as h:
        job = await h.submit("produce")
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.attempts == 1
    assert done.error is not None
    assert why in done.error
    assert "blobs=" in done.error


async def test_a_result_the_blob_store_refuses_fails_for_good() -> None:
    async def huge(ctx: JobContext[None]) -> bytes:
        return b"x" * 100

    async with running_pool(kind("huge", huge), blobs=MemoryBlobStore(max_size=10)) as h:
        job = await h.submit("huge")
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error == "ConfigurationError: blob of 100 bytes is over max_size=10"


async def test_a_result_that_is_not_json_fails_for_good() -> None:
    async def odd(ctx: JobContext[None]) -> Any:
        return {"when": object()}

    async with running_pool(kind("odd", odd)) as h:
        job = await h.submit("odd")
        done = await h.final(job.id)
    assert done.state is JobState.FAILED
    assert done.error is not None
    assert done.error.startswith("the result of job kind 'odd' is not JSON-serialisable")


async def test_a_pydantic_result_is_kept_as_json() -> None:
    async def model(ctx: JobContext[None]) -> Render:
        return Render(frames=2)

    async with running_pool(kind("model", model)) as h:
        job = await h.submit("model")
        done = await h.final(job.id)
    assert done.result == {"frames": 2, "title": "untitled"}


# -- configuration --------------------------------------------------------------------------


def test_group_names_follow_the_prefix_or_are_derived_for_odd_kinds() -> None:
    assert group_name("jobs", "render.video") == "jobs.render.video"
    odd = group_name("jobs", "render video/ü")
    assert odd.startswith("jobs.render_video__-")
    assert odd == group_name("jobs", "render video/ü")
    assert group_name("jobs", "render video/ü") != group_name("jobs", "render video/u")
    assert len(group_name("jobs", "k" * 200)) <= 128
    with pytest.raises(ConfigurationError, match="group name"):
        group_name("my jobs", "render")


@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_every_kind_gets_a_valid_group_name(kind_name: str) -> None:
    name = group_name("jobs", kind_name)
    assert check_group_name(name) == name
    assert name.startswith("jobs.")


async def test_the_pool_refuses_a_bad_inline_limit() -> None:
    async with running_pool() as h:
        with pytest.raises(ConfigurationError, match="inline_limit"):
            WorkerPool(h.ops, {}, blobs=None, worker_id="w", inline_limit=-1, group_prefix="j")


async def test_attempts_that_ended_leave_the_first_heartbeat_heap() -> None:
    async def work(ctx: JobContext[None]) -> None:
        return None

    async with running_pool(kind("work", work, lease=3600)) as h:
        pool = h.pools[0]
        spec = pool.kinds["work"]
        job = Job.new("j", "work", owner="alice", input=None, now=h.clock.time())
        for _ in range(3000):  # each ended at once, its first heartbeat an hour away
            pool._first_beat(Attempt(h.ops, spec, job, pool.worker_id))
            pool._forget_beat()
        assert len(pool._beats) <= 2 * 1025  # cleaned as it grew, not held for an hour
        done = await h.final((await h.submit("work")).id)
    assert done.state is JobState.SUCCEEDED
