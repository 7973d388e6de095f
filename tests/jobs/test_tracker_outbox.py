"""The Redis job store's opt-in outbox: each change and its event written by one script."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, cast

import anyio
import pytest
import redis.asyncio

from backends.redis.redis_helpers import REDIS_URL, delete_prefix, new_prefix, require_redis
from eventpatterns import EventBus
from eventpatterns.backends.memory import MemoryBlobStore, MemoryBusBackend
from eventpatterns.backends.redis import RedisBusBackend, RedisJobStore
from eventpatterns.bus import ClaimCheck
from eventpatterns.core import Event
from eventpatterns.errors import ConfigurationError, EventTooLarge, JobConflict
from eventpatterns.jobs import Heartbeat, Job, JobContext, JobState, JobTracker, Start, Succeed
from eventpatterns.jobs._events import PENDING, job_event

from .test_tracker import EVERY_JOB_EVENT, act, announced, types

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


@pytest.fixture
def prefix() -> Iterator[str]:
    require_redis()
    value = new_prefix("jobs-outbox")
    yield value
    delete_prefix(value)


@asynccontextmanager
async def outboxed(prefix: str, **bus_options: Any) -> AsyncIterator[JobTracker]:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, **bus_options)
    async with (
        EventBus(backend) as bus,
        RedisJobStore(REDIS_URL, prefix=prefix, outbox=backend) as store,
    ):
        tracker = JobTracker(bus, store, run_reaper=False)
        tracker.declare("echo")

        @tracker.worker("double")
        async def double(ctx: JobContext[Any]) -> int:
            return int(ctx.input) * 2

        async with tracker:
            yield tracker


async def log_length(prefix: str) -> int:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        return int(await client.xlen("{" + prefix + "}:log"))
    finally:
        await client.aclose()


async def test_every_change_is_announced_by_the_store_script(prefix: str) -> None:
    async with outboxed(prefix) as tracker:
        assert tracker.ops._outbox is cast(object, tracker.store)
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            job = await tracker.submit("double", 21, owner="u1")
            done = await tracker.wait(job.id, timeout=10)
            events = await announced(tracker.bus, sub)
        assert (done.state, done.result) == (JobState.SUCCEEDED, 42)
        assert types(events) == ["pending", "running", "succeeded"]
        assert [e.id for e in events] == [f"{job.id}.{v}" for v in (1, 2, 3)]
        assert events[-1].data["result"] == 42
        assert await log_length(prefix) == 3 + 1  # and the sentinel: nothing twice


async def test_a_write_refused_appends_no_event(prefix: str) -> None:
    async with outboxed(prefix) as tracker:
        store = tracker.store
        assert isinstance(store, RedisJobStore)
        job = await tracker.submit("echo", 1, owner="u1", idempotency_key="k")
        again = await tracker.submit("echo", 2, owner="u1", idempotency_key="k")
        assert again.id == job.id  # the same key: the first job, no second event
        assert await log_length(prefix) == 1
        running = await act(tracker, job, Start("w1", lease=30))
        assert await log_length(prefix) == 2
        stale = job_event(running, PENDING, source="/t")
        with pytest.raises(JobConflict):  # the compare-and-swap lost: nothing appended
            await store.replace_announced(running, expected_version=1, event=stale)
        assert await log_length(prefix) == 2
        assert (await tracker.get(job.id)) == running
        beat = await act(tracker, running, Heartbeat("w1", lease=60))  # no event for it
        assert beat.version == running.version + 1
        assert await log_length(prefix) == 2


async def test_an_event_over_the_size_limit_is_refused_as_without_an_outbox(prefix: str) -> None:
    async with outboxed(prefix, max_message_size=2000) as tracker:
        job = await tracker.submit("echo", 1, owner="u1")
        running = await act(tracker, job, Start("w1", lease=30))
        with pytest.raises(EventTooLarge):  # stored, then its event refused
            await act(tracker, running, Succeed("w1", result="x" * 3000))
        stored = await tracker.get(job.id)
        assert stored is not None
        assert stored.state is JobState.SUCCEEDED
    async with outboxed(prefix + "-tiny", max_message_size=10) as tracker:
        with pytest.raises(EventTooLarge):
            await tracker.submit("echo", 1, owner="u1")
        page = await tracker.list("u1")
        assert [j.state for j in page.jobs] == [JobState.PENDING]
    delete_prefix(prefix + "-tiny")


async def test_outbox_options_are_checked(prefix: str) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix)
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisJobStore(REDIS_URL, prefix=prefix + "-other", outbox=backend)
    with pytest.raises(ConfigurationError, match="RedisBusBackend"):
        RedisJobStore(REDIS_URL, prefix=prefix, outbox=MemoryBusBackend())  # type: ignore[arg-type]
    async with RedisJobStore(REDIS_URL, prefix=prefix) as plain:
        job = await plain.create(Job.new(f"{prefix}-j1", "echo", owner="u1", input=1, now=0))
        with pytest.raises(ConfigurationError, match="no outbox"):
            await plain.replace_announced(job, expected_version=1, event=_event(job))
        with pytest.raises(ConfigurationError, match="no outbox"):
            await plain.create_announced(job, _event(job))
    other = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with (
        EventBus(other) as bus,
        RedisJobStore(REDIS_URL, prefix=prefix, outbox=backend) as store,
    ):
        with pytest.raises(ConfigurationError, match="not the tracker's bus backend"):
            JobTracker(bus, store)
    await backend.aclose()
    claims = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with (
        EventBus(claims, claim_check=ClaimCheck(MemoryBlobStore())) as bus,
        RedisJobStore(REDIS_URL, prefix=prefix, outbox=claims) as store,
    ):
        assert JobTracker(bus, store).ops._outbox is None  # a claim check: the bus publishes


def _event(job: Job) -> Event:
    return job_event(job, PENDING, source="/t")


async def test_many_concurrent_jobs_each_announce_every_change(prefix: str) -> None:
    async with outboxed(prefix) as tracker:
        jobs = [await tracker.submit("double", n, owner="u1") for n in range(20)]
        results: dict[str, int] = {}

        async def one(job_id: str) -> None:
            results[job_id] = (await tracker.wait(job_id, timeout=10)).result

        async with anyio.create_task_group() as tg:
            for job in jobs:
                tg.start_soon(one, job.id)
        assert results == {job.id: n * 2 for n, job in enumerate(jobs)}
        assert await log_length(prefix) == 20 * 3


# -- the outbox by default, and what a publish does that it does too ------------------------


async def dedupe_records(prefix: str) -> int:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        return len([key async for key in client.scan_iter(match="{" + prefix + "}:dd:*")])
    finally:
        await client.aclose()


@asynccontextmanager
async def plain_tracker(
    bus_url: str, store_url: str, **store_options: Any
) -> AsyncIterator[JobTracker]:
    async with (
        EventBus.from_url(bus_url) as bus,
        RedisJobStore.from_url(store_url, **store_options) as store,
    ):
        tracker = JobTracker(bus, store, run_reaper=False)

        @tracker.worker("double")
        async def double(ctx: JobContext[Any]) -> int:
            return int(ctx.input) * 2

        async with tracker:
            yield tracker


async def test_the_outbox_is_on_by_default_when_bus_and_store_share_redis_and_prefix(
    prefix: str,
) -> None:
    url = f"{REDIS_URL}?prefix={prefix}"
    async with plain_tracker(url, url) as tracker:
        store = tracker.store
        assert isinstance(store, RedisJobStore)
        assert store.outbox is tracker.bus.backend
        assert tracker.ops._outbox is cast(object, store)
        job = await tracker.submit("double", 4, owner="u1")
        assert (await tracker.wait(job.id, timeout=10)).result == 8
        assert await log_length(prefix) == 3  # every change
        assert await dedupe_records(prefix) == 0  # appended by the store's scripts


@pytest.mark.parametrize(
    ("store_query", "options"),
    [("&outbox=false", {}), ("", {"outbox": False}), ("-other", {}), ("", {"db": 1})],
    ids=["url-opt-out", "keyword-opt-out", "other-prefix", "other-database"],
)
async def test_no_default_outbox_when_opted_out_or_elsewhere(
    prefix: str, store_query: str, options: dict[str, Any]
) -> None:
    bus_url = f"{REDIS_URL}?prefix={prefix}"
    async with plain_tracker(bus_url, bus_url + store_query, **options) as tracker:
        store = tracker.store
        assert isinstance(store, RedisJobStore)
        assert (store.outbox, tracker.ops._outbox) == (None, None)
        job = await tracker.submit("double", 4, owner="u1")
        assert (await tracker.wait(job.id, timeout=10)).result == 8
        assert await log_length(prefix) == 3  # published by the tracker instead
        assert await dedupe_records(prefix) == 0  # each a new version: no dedupe record
        await tracker.bus.publish(Event(type="other", source="/t"))  # others dedupe
        assert await dedupe_records(prefix) == 1
    delete_prefix(prefix + "-other")
    client = redis.asyncio.Redis.from_url(REDIS_URL, db=1)
    try:
        async for key in client.scan_iter(match="{" + prefix + "}*"):
            await client.delete(key)
    finally:
        await client.aclose()


async def test_a_store_shared_by_two_buses_announces_only_the_first_one_itself(
    prefix: str,
) -> None:
    first = RedisBusBackend(REDIS_URL, prefix=prefix)
    second = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with (
        EventBus(first) as bus1,
        EventBus(second) as bus2,
        RedisJobStore(REDIS_URL, prefix=prefix) as store,
    ):
        assert JobTracker(bus1, store).ops._outbox is cast(object, store)
        assert JobTracker(bus2, store).ops._outbox is None  # publishes on its own bus
        assert store.outbox is first


async def test_outbox_events_carry_the_trace_and_count_as_published(prefix: str) -> None:
    from eventpatterns.observability import TraceContext, trace_of, use_trace
    from eventpatterns.observability._metrics import metrics

    incoming = TraceContext.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    async with outboxed(prefix) as tracker:
        async with tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            before = metrics.value("eventpatterns_bus_published_total")
            with use_trace(incoming):
                job = await tracker.submit("double", 1, owner="u1")
            await tracker.wait(job.id, timeout=10)  # its last event is in the log
            published = metrics.value("eventpatterns_bus_published_total") - before
            events = await announced(tracker.bus, sub)
        assert types(events) == ["pending", "running", "succeeded"]
        # the submit's event, and the handler's (it runs in the dispatch's trace)
        traces = [trace_of(events[0]), trace_of(events[2])]
        assert incoming is not None
        assert all(t is not None and t.trace_id == incoming.trace_id for t in traces)
        assert len({t.span_id for t in traces if t is not None} | {incoming.span_id}) == 3
        assert published == 3
        # an idempotent repeat appends nothing and counts nothing
        before = metrics.value("eventpatterns_bus_published_total")
        first = await tracker.submit("echo", 1, owner="u1", idempotency_key="k")
        assert (await tracker.submit("echo", 1, owner="u1", idempotency_key="k")).id == first.id
        assert metrics.value("eventpatterns_bus_published_total") - before == 1


async def test_outbox_events_are_published_in_producer_spans(prefix: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind

    from eventpatterns.observability import set_tracer, trace_of

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    set_tracer(provider.get_tracer("tests"))
    try:
        async with outboxed(prefix) as tracker, tracker.bus.subscribe(EVERY_JOB_EVENT) as sub:
            job = await tracker.submit("echo", 1, owner="u1")
            [event] = await announced(tracker.bus, sub)
    finally:
        set_tracer(None)
    spans = {s.name: s for s in exporter.get_finished_spans() if s.kind is SpanKind.PRODUCER}
    span = spans["publish eventpatterns.job.pending"]
    assert span.attributes is not None
    assert span.attributes["messaging.message.id"] == f"{job.id}.1"
    carried = trace_of(event)
    assert carried is not None
    assert int(carried.span_id, 16) == span.context.span_id
    assert int(carried.trace_id, 16) == span.context.trace_id


async def test_publish_without_dedupe_skips_the_record_where_the_backend_can(
    prefix: str,
) -> None:
    event = Event(type="t", source="/t", id="once")
    async with EventBus(RedisBusBackend(REDIS_URL, prefix=prefix)) as bus:
        assert bus.backend.capabilities.unique_appends
        first = await bus._publish_unique(event)
        second = await bus._publish_unique(event)  # the caller's promise broken
        assert first != second
        assert await dedupe_records(prefix) == 0
        assert await bus.publish(event) == await bus.publish(event)  # the default dedupes
    async with EventBus(MemoryBusBackend()) as memory:
        assert not memory.backend.capabilities.unique_appends
        assert await memory._publish_unique(event) == await memory.publish(event)
