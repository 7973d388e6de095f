"""JobTracker on the memory bus and MemoryJobStore: registration, submit, read, cancel, results.

The tests play the worker's part with the same :class:`JobOps` calls a worker makes
(``Start``, ``ReportProgress``, ``Succeed``...), so every step is deterministic.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from pydantic import BaseModel, Field

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryBlobStore, MemoryBusBackend, MemoryJobStore
from eventpatterns.bus import Backoff, Subscription
from eventpatterns.errors import (
    ArgumentTypeError,
    BlobNotFound,
    ConfigurationError,
    InvalidJobInput,
    InvalidState,
    JobNotFound,
    LimitExceeded,
    UnknownJobKind,
)
from eventpatterns.jobs import (
    BlobStore,
    Command,
    Fail,
    Job,
    JobState,
    JobStore,
    JobTracker,
    Progress,
    ReportProgress,
    ResultRef,
    Start,
    Stop,
    Succeed,
    URLSigner,
)
from eventpatterns.jobs._events import JOB_EVENT_PREFIX, KIND_ATTRIBUTE, OWNER_ATTRIBUTE
from eventpatterns.testing import ManualClock

pytestmark = pytest.mark.anyio

SENTINEL = "test.sentinel"
#: Every job event, and the sentinel :func:`announced` ends a recording with.
EVERY_JOB_EVENT: dict[str, Any] = {"type": [{"prefix": JOB_EVENT_PREFIX}, SENTINEL]}


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Render(BaseModel):
    frames: int = Field(ge=1)
    title: str = "untitled"


@asynccontextmanager
async def tracking(
    clock: ManualClock | None = None,
    *,
    blobs: BlobStore | None = None,
    store: JobStore | None = None,
    **options: Any,
) -> AsyncIterator[JobTracker]:
    """A tracker (reaper off unless asked) knowing ``render`` (typed) and ``echo`` (any JSON)."""
    clock = clock if clock is not None else ManualClock()
    options.setdefault("run_reaper", False)
    async with EventBus(MemoryBusBackend(clock=clock)) as bus:
        store = store if store is not None else MemoryJobStore(clock=clock)
        tracker = JobTracker(bus, store, clock=clock, blobs=blobs, **options)
        tracker.declare("render", Render, max_attempts=3, backoff=Backoff(initial=2, jitter=0))
        tracker.declare("echo")
        async with tracker:
            yield tracker


async def act(tracker: JobTracker, job: Job, command: Command) -> Job:
    """Apply one command as a worker would (through JobOps); return the new job."""
    changed = await tracker.ops.apply(job.id, lambda _: command)
    assert changed is not None
    return changed


async def announced(bus: EventBus, sub: Subscription) -> list[Event]:
    """Every job event ``sub`` got so far (log order): read up to a sentinel published now."""
    await bus.publish(Event(type=SENTINEL, source="/tests"))
    got: list[Event] = []
    with anyio.fail_after(5):
        async for event in sub:
            if event.type == SENTINEL:
                return got
            got.append(event)
    raise AssertionError("the subscription ended")  # pragma: no cover


def types(events: list[Event]) -> list[str]:
    return [e.type.removeprefix(JOB_EVENT_PREFIX) for e in events]


# -- registration -------------------------------------------------------------------------


async def test_kinds_are_registered_before_entering_and_refused_after() -> None:
    async with EventBus(MemoryBusBackend()) as bus:
        tracker = JobTracker(bus, MemoryJobStore(), run_workers=False, run_reaper=False)
        declared = tracker.declare("report", Render, max_attempts=5, ttl=60, deadline=600)

        @tracker.worker("resize", concurrency=2, timeout=30)
        async def resize(ctx: Any) -> None:
            return None

        async def fetch(ctx: Any, value: Any) -> Any:
            return value

        durable = tracker.durable("pipeline", [fetch, fetch], lease=10)
        assert list(tracker.kinds) == ["report", "resize", "pipeline"]
        assert (declared.input_type, declared.max_attempts, declared.ttl) == (Render, 5, 60)
        assert not declared.runnable
        assert tracker.kinds["resize"].handler is resize
        assert tracker.kinds["resize"].runnable
        assert tracker.kinds["resize"].concurrency == 2
        assert durable.steps == (fetch, fetch)
        assert durable.lease == 10
        with pytest.raises(TypeError):
            tracker.kinds["x"] = declared  # type: ignore[index]
        async with tracker:
            with pytest.raises(InvalidState, match="before entering"):
                tracker.declare("late")
            with pytest.raises(InvalidState):
                tracker.worker("late")
            with pytest.raises(InvalidState):
                tracker.durable("late", [fetch])
            with pytest.raises(InvalidState, match="only once"):
                await tracker.__aenter__()
        assert "late" not in tracker.kinds
        with pytest.raises(InvalidState, match="closed"):
            await tracker.submit("report", {"frames": 1}, owner="u1")


async def test_bad_registrations_name_what_is_wrong() -> None:
    async with EventBus(MemoryBusBackend()) as bus:
        tracker = JobTracker(bus, MemoryJobStore())
        tracker.declare("report")
        with pytest.raises(ConfigurationError, match="registered already"):
            tracker.declare("report")
        with pytest.raises(ConfigurationError, match="lease"):
            tracker.declare("other", lease=0)
        with pytest.raises(ConfigurationError, match="max_attempts"):
            tracker.declare("other", max_attempts=0)
        with pytest.raises(ConfigurationError, match="job kind"):
            tracker.declare("")

        def blocking(ctx: Any) -> None:
            return None

        with pytest.raises(ArgumentTypeError, match="async function"):
            tracker.worker("sync")(blocking)  # type: ignore[type-var]
        with pytest.raises(ConfigurationError, match="non-empty list"):
            tracker.durable("steps", [])
        with pytest.raises(ArgumentTypeError):
            tracker.durable("steps", [blocking])  # type: ignore[list-item]
        assert list(tracker.kinds) == ["report"]


@pytest.mark.parametrize(
    ("option", "value", "match"),
    [
        ("inline_limit", -1, "inline_limit"),
        ("max_input", 1.5, "max_input"),
        ("worker_id", "", "worker_id"),
        ("group_prefix", "", "group name"),
        ("group_prefix", "jobs of mine", "group name"),
        ("reaper_interval", 0, "reaper_interval"),
        ("dispatch_recheck", float("nan"), "dispatch_recheck"),
    ],
)
async def test_bad_options_are_refused(option: str, value: Any, match: str) -> None:
    async with EventBus(MemoryBusBackend()) as bus:
        with pytest.raises(ConfigurationError, match=match):
            JobTracker(bus, MemoryJobStore(), **{option: value})


async def test_entering_needs_an_entered_bus() -> None:
    bus = EventBus(MemoryBusBackend())
    tracker = JobTracker(bus, MemoryJobStore())
    with pytest.raises(InvalidState, match="async with EventBus"):
        await tracker.__aenter__()
    async with bus:
        with pytest.raises(InvalidState, match="async with tracker"):
            await tracker.get("x")
        async with tracker:  # the refused entry changed nothing
            assert await tracker.state("x") is JobState.UNKNOWN


class BrokenStore(MemoryJobStore):
    """A store with a bug: its lease index raises what no store may raise."""

    async def expired_leases(self, now: float, *, limit: int = 100) -> list[str]:
        raise RuntimeError("a bug in the store")


async def test_a_worker_pool_that_cannot_start_leaves_the_tracker_closed() -> None:
    async def one_parameter(ctx: Any) -> None:
        return None

    async with EventBus(MemoryBusBackend()) as bus:
        tracker = JobTracker(bus, MemoryJobStore())
        tracker.durable("steps", [one_parameter])  # type: ignore[list-item]
        with pytest.raises(ConfigurationError, match="one_parameter"):
            await tracker.__aenter__()
        with pytest.raises(InvalidState, match="closed"):
            await tracker.submit("steps", 1, owner="u1")


async def test_errors_come_out_of_the_tracker_as_themselves() -> None:
    async with EventBus(MemoryBusBackend()) as bus:
        tracker = JobTracker(bus, MemoryJobStore(), run_reaper=False)
        assert await tracker.__aexit__(None, None, None) is None  # never entered: no-op
        with pytest.raises(ValueError, match="mine"):
            async with JobTracker(bus, MemoryJobStore()):
                raise ValueError("mine")
        with pytest.raises(RuntimeError, match="a bug in the store"):
            async with JobTracker(bus, BrokenStore()):
                await anyio.sleep(5)  # the reaper's first sweep fails at once


# -- submitting ---------------------------------------------------------------------------


async def test_submit_stores_a_pending_job_and_announces_it() -> None:
    clock = ManualClock()
    async with tracking(clock, dispatch_recheck=30) as tracker:
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            job = await tracker.submit("render", {"frames": 24}, owner="alice")
            events = await announced(tracker.bus, sub)
        assert job.state is JobState.PENDING
        assert job.version == 1
        assert job.input == {"frames": 24, "title": "untitled"}  # validated, stored as JSON
        assert (job.kind, job.owner, job.max_attempts) == ("render", "alice", 3)
        assert job.created_at == clock.time()
        assert job.run_after == clock.time() + 30
        assert job.deadline is None
        assert job.idempotency_key is None
        assert await tracker.get(job.id) == job
        [event] = events
        assert event.type == JOB_EVENT_PREFIX + "pending"
        assert (event.id, event.subject, event.source) == (
            f"{job.id}.1",
            job.id,
            "/eventpatterns/jobs",
        )
        assert event.extensions[OWNER_ATTRIBUTE] == "alice"
        assert event.extensions[KIND_ATTRIBUTE] == "render"
        assert isinstance(event.data, dict)
        assert event.data["state"] == "pending"
        assert "input" not in event.data  # the owner's view only


async def test_submit_options_override_the_kinds() -> None:
    clock = ManualClock()
    async with EventBus(MemoryBusBackend(clock=clock)) as bus:
        tracker = JobTracker(bus, MemoryJobStore(clock=clock), clock=clock, run_reaper=False)
        tracker.declare("report", ttl=100, deadline=600, max_attempts=2)
        async with tracker:
            default = await tracker.submit("report", [1, 2], owner="u1")
            custom = await tracker.submit(
                "report", None, owner="u1", deadline=5, ttl=7, max_attempts=9
            )
    assert (default.ttl, default.deadline, default.max_attempts) == (100, clock.time() + 600, 2)
    assert (custom.ttl, custom.deadline, custom.max_attempts) == (7, clock.time() + 5, 9)


@pytest.mark.parametrize(
    ("kind", "value", "options", "error", "match"),
    [
        ("paint", {}, {}, UnknownJobKind, "known kinds: 'echo', 'render'"),
        (3, {}, {}, UnknownJobKind, "unknown job kind"),
        ("render", {"frames": 0}, {}, InvalidJobInput, "frames"),
        ("render", "frames", {}, InvalidJobInput, "render"),
        ("echo", {"x": object()}, {}, ArgumentTypeError, "JSON-serialisable"),
        ("echo", float("nan"), {}, ArgumentTypeError, "JSON-serialisable"),
        ("echo", "x" * 300, {}, LimitExceeded, "over max_input=256"),
        ("echo", {}, {"owner": ""}, ConfigurationError, "owner"),
        ("echo", {}, {"owner": "x" * 256}, ConfigurationError, "owner"),
        ("echo", {}, {"owner": "émilie"}, ConfigurationError, "printable ASCII"),
        ("echo", {}, {"owner": "a\nb"}, ConfigurationError, "printable ASCII"),
        ("echo", {}, {"owner": 7}, ArgumentTypeError, "owner"),
        ("echo", {}, {"idempotency_key": ""}, ConfigurationError, "idempotency_key"),
        ("echo", {}, {"idempotency_key": "k\x00"}, ConfigurationError, "idempotency_key"),
        ("echo", {}, {"idempotency_key": b"k"}, ArgumentTypeError, "idempotency_key"),
        ("echo", {}, {"deadline": 0}, ConfigurationError, "deadline"),
        ("echo", {}, {"ttl": -1}, ConfigurationError, "ttl"),
        ("echo", {}, {"max_attempts": 0}, ConfigurationError, "max_attempts"),
    ],
)
async def test_a_refused_submit_writes_nothing(
    kind: Any, value: Any, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    store = MemoryJobStore()
    async with tracking(store=store, max_input=256) as tracker:
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            with pytest.raises(error, match=match):
                await tracker.submit(kind, value, **{"owner": "alice", **options})
            assert await announced(tracker.bus, sub) == []
        assert (await store.list("alice")).jobs == []
        ok = await tracker.submit("echo", "x" * 250, owner="alice")  # 252 bytes: accepted
        assert [j.id for j in (await store.list("alice")).jobs] == [ok.id]


async def test_invalid_input_lists_where_and_why() -> None:
    async with tracking() as tracker:
        with pytest.raises(InvalidJobInput) as caught:
            await tracker.submit("render", {"frames": "many", "title": 3}, owner="u1")
    locs = sorted(str(e["loc"]) for e in caught.value.errors)
    assert locs == ["('frames',)", "('title',)"]


async def test_the_same_key_from_the_same_owner_returns_the_same_job() -> None:
    async with tracking() as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
        first = await tracker.submit("echo", 1, owner="alice", idempotency_key="k-1")
        again = await tracker.submit("echo", 2, owner="alice", idempotency_key="k-1")
        other = await tracker.submit("echo", 1, owner="bob", idempotency_key="k-1")
        fresh = await tracker.submit("echo", 1, owner="alice", idempotency_key="k-2")
        events = await announced(tracker.bus, sub)
    assert again == first
    assert again.input == 1
    assert len({first.id, other.id, fresh.id}) == 3
    assert sorted(e.subject or "" for e in events) == sorted([first.id, other.id, fresh.id])


async def test_a_thousand_concurrent_submits_with_one_key_make_one_job() -> None:
    store = MemoryJobStore()
    async with tracking(store=store) as tracker:
        ids: list[str] = []

        async def submit() -> None:
            job = await tracker.submit("echo", {"n": 1}, owner="alice", idempotency_key="once")
            ids.append(job.id)

        async with tracker.bus.subscribe(EVERY_JOB_EVENT, buffer=2000) as sub:
            async with anyio.create_task_group() as tg:
                for _ in range(1000):
                    tg.start_soon(submit)
            events = await announced(tracker.bus, sub)
        assert len(ids) == 1000
        assert len(set(ids)) == 1
        assert [(e.type, e.subject) for e in events] == [(JOB_EVENT_PREFIX + "pending", ids[0])]
        assert [j.id for j in (await store.list("alice")).jobs] == [ids[0]]


# -- reading ------------------------------------------------------------------------------


async def test_get_and_state_answer_unknown_for_ids_never_seen_and_other_owners() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", {}, owner="alice")
        assert await tracker.get("no-such-id") is None
        assert await tracker.state("no-such-id") is JobState.UNKNOWN
        assert await tracker.get(job.id, owner="bob") is None
        assert await tracker.state(job.id, owner="bob") is JobState.UNKNOWN
        assert await tracker.get(job.id, owner="alice") == job
        assert await tracker.state(job.id) is JobState.PENDING
        with pytest.raises(ArgumentTypeError, match="job_id"):
            await tracker.get(42)  # type: ignore[arg-type]


async def test_list_is_owner_scoped_newest_first_and_paginated() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker:
        mine = []
        for n in range(5):
            mine.append(await tracker.submit("echo", n, owner="alice"))
            await tracker.submit("echo", n, owner="bob")
            clock.advance(1)
        await act(tracker, mine[1], Start("w1", lease=30))
        pages, cursor = [], None
        while True:
            page = await tracker.list("alice", limit=2, cursor=cursor)
            pages.append([j.input for j in page.jobs])
            if page.cursor is None:
                break
            cursor = page.cursor
        assert pages == [[4, 3], [2, 1], [0]]
        running = await tracker.list("alice", state=JobState.RUNNING)
        assert [j.id for j in running.jobs] == [mine[1].id]
        assert (await tracker.list("carol")).jobs == []
        with pytest.raises(ConfigurationError, match="owner"):
            await tracker.list("")
        with pytest.raises(ArgumentTypeError, match="state"):
            await tracker.list("alice", state="running")  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="limit"):
            await tracker.list("alice", limit=0)


# -- cancelling ---------------------------------------------------------------------------


async def test_cancel_a_pending_job_ends_it_at_once() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", {}, owner="alice")
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            cancelled = await tracker.cancel(job.id, owner="alice", reason="changed my mind")
            again = await tracker.cancel(job.id)
            events = await announced(tracker.bus, sub)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.error == "changed my mind"
    assert again == cancelled  # a final job is returned unchanged
    assert types(events) == ["cancelled"]


async def test_cancel_a_running_job_asks_its_worker_to_stop() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", {}, owner="alice")
        running = await act(tracker, job, Start("w1", lease=30))
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            asked = await tracker.cancel(job.id, reason="x" * 5000)
            twice = await tracker.cancel(job.id)
            assert asked.state is JobState.RUNNING
            assert asked.cancel_requested
            assert asked.version == running.version + 1
            assert asked.error == "x" * 1000
            assert twice == asked  # asked already: unchanged
            stopped = await act(tracker, asked, Stop("w1"))
            events = await announced(tracker.bus, sub)
    assert stopped.state is JobState.CANCELLED
    assert types(events) == ["cancelling", "cancelled"]


async def test_cancel_refuses_unknown_jobs_and_other_owners() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", {}, owner="alice")
        with pytest.raises(JobNotFound, match="no-such"):
            await tracker.cancel("no-such")
        with pytest.raises(JobNotFound):
            await tracker.cancel(job.id, owner="bob")
        with pytest.raises(ArgumentTypeError, match="reason"):
            await tracker.cancel(job.id, reason=None)  # type: ignore[arg-type]
        assert await tracker.state(job.id) is JobState.PENDING


class FinishingStore(MemoryJobStore):
    """A memory store where the job's worker finishes it right after the next read."""

    finish: Any = None

    async def get(self, job_id: str) -> Job | None:
        seen = await super().get(job_id)
        finish, self.finish = self.finish, None
        if finish is not None:
            await finish()
        return seen


async def test_cancel_of_a_job_finished_meanwhile_returns_it_finished() -> None:
    clock = ManualClock()
    store = FinishingStore(clock=clock)
    async with tracking(clock, store=store) as tracker:
        job = await tracker.submit("echo", {}, owner="alice")
        running = await act(tracker, job, Start("w1", lease=30))

        async def finish() -> None:
            await act(tracker, running, Succeed("w1", result=1))

        store.finish = finish  # the cancel reads the job; then the worker wins the race
        done = await tracker.cancel(job.id)
    assert done.state is JobState.SUCCEEDED
    assert not done.cancel_requested


# -- results ------------------------------------------------------------------------------


async def test_results_inline_and_from_the_blob_store() -> None:
    signer = URLSigner(b"s" * 32, base_url="https://api.example/blobs")
    clock = ManualClock()
    blobs = MemoryBlobStore(signer=signer, clock=clock)
    async with tracking(clock, blobs=blobs) as tracker:
        small = await act(
            tracker, await tracker.submit("echo", 1, owner="u1"), Start("w1", lease=30)
        )
        small = await act(tracker, small, Succeed("w1", result={"ok": True}))
        assert await tracker.result(small) == {"ok": True}
        assert await tracker.result_url(small) is None

        outcomes: list[tuple[Any, str | None]] = []
        for data, content_type in ((b'{"rows": [1, 2]}', "application/json"), (b"\x00\x01", "")):
            key = f"results/{len(outcomes)}"
            await blobs.put(key, data, content_type=content_type or "application/octet-stream")
            job = await act(tracker, await tracker.submit("echo", 1, owner="u1"), Start("w1", 30))
            ref = ResultRef(key, len(data), content_type or "application/octet-stream")
            job = await act(tracker, job, Succeed("w1", result_ref=ref))
            url = await tracker.result_url(job, expires_in=60)
            outcomes.append((await tracker.result(job), url))
        assert outcomes[0][0] == {"rows": [1, 2]}
        assert outcomes[1][0] == b"\x00\x01"
        url = outcomes[0][1]
        assert url is not None
        assert url.startswith("https://api.example/blobs/results/0?")
        expires = int(url.split("expires=")[1].split("&")[0])
        assert expires == int(clock.time()) + 60
        await blobs.delete("results/1")
        with pytest.raises(BlobNotFound):
            await tracker.result(job)


async def test_result_refuses_unfinished_jobs_and_missing_blob_stores() -> None:
    async with tracking() as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        with pytest.raises(InvalidState, match="is pending"):
            await tracker.result(job)
        with pytest.raises(InvalidState):
            await tracker.result_url(job)
        with pytest.raises(ArgumentTypeError, match="a Job"):
            await tracker.result(job.id)  # type: ignore[arg-type]
        running = await act(tracker, job, Start("w1", lease=30))
        done = await act(tracker, running, Succeed("w1", result_ref=ResultRef("k", 3)))
        with pytest.raises(ConfigurationError, match="blobs="):
            await tracker.result(done)
        with pytest.raises(ConfigurationError, match="blobs="):
            await tracker.result_url(done)


# -- what a watcher of the bus sees -------------------------------------------------------


async def test_events_of_a_job_that_succeeds() -> None:
    async with tracking() as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
        job = await tracker.submit("render", {"frames": 2}, owner="u1")
        job = await act(tracker, job, Start("w1", lease=30))
        job = await act(tracker, job, ReportProgress("w1", Progress(0.5, "half")))
        job = await act(tracker, job, Succeed("w1", result=1))
        events = await announced(tracker.bus, sub)
    assert types(events) == ["pending", "running", "progress", "succeeded"]
    assert [e.id for e in events] == [f"{job.id}.{v}" for v in (1, 2, 3, 4)]
    assert json.loads(events[2].to_json())["data"]["progress"]["message"] == "half"


async def test_events_of_a_job_that_fails_after_its_retries() -> None:
    clock = ManualClock()
    async with tracking(clock) as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
        job = await tracker.submit("render", {"frames": 2}, owner="u1")
        for attempt in (1, 2, 3):
            job = await act(tracker, job, Start("w1", lease=30))
            job = await act(tracker, job, Fail("w1", f"boom {attempt}"))
            if attempt < 3:
                assert job.state is JobState.RETRYING
                clock.advance(2 * 2 ** (attempt - 1))  # the kind's backoff: 2 s, then 4 s
                assert (await tracker.reaper.sweep()).dispatched == 1
                job = await tracker.get(job.id) or job
        events = await announced(tracker.bus, sub)
    assert job.state is JobState.FAILED
    assert job.error == "boom 3"
    assert job.attempts == 3
    assert types(events) == [
        *["pending", "running", "retrying"],
        *["pending", "running", "retrying"],
        *["pending", "running", "failed"],
    ]


async def test_events_of_a_job_cancelled_while_pending_and_while_running() -> None:
    async with tracking() as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
        waiting = await tracker.submit("echo", 1, owner="u1")
        await tracker.cancel(waiting.id)
        running = await act(tracker, await tracker.submit("echo", 2, owner="u1"), Start("w", 9))
        await tracker.cancel(running.id)
        await act(tracker, running, Stop("w"))
        events = await announced(tracker.bus, sub)
    by_job: dict[str | None, list[str]] = {}
    for event in events:
        by_job.setdefault(event.subject, []).append(types([event])[0])
    assert by_job == {
        waiting.id: ["pending", "cancelled"],
        running.id: ["pending", "running", "cancelling", "cancelled"],
    }
