"""Trace context across bus hops: traceparent parsing, inheritance, OpenTelemetry spans."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryJobStore
from eventpatterns.jobs import JobContext, JobTracker
from eventpatterns.observability import TraceContext, current_trace, set_tracer, trace_of, use_trace

W3C = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
pytestmark = pytest.mark.anyio
PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- the parser ------------------------------------------------------------------------


def test_valid_traceparents_parse_and_round_trip() -> None:
    ctx = TraceContext.parse(PARENT, "congo=t61rcWkgMzE")
    assert ctx == TraceContext(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1, "congo=t61rcWkgMzE"
    )
    assert ctx.traceparent == PARENT
    future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-comes-later"
    assert TraceContext.parse(future) == TraceContext(
        "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 9
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        17,
        "",
        PARENT.upper(),
        PARENT + "-extra",  # version 00 has exactly four fields
        "ff" + PARENT[2:],  # version ff is forbidden
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",  # all-zero parent
        PARENT.replace("-", "_"),
        PARENT[:-1],
        "cc" + PARENT[2:] + "x",  # a later version's extra fields start with "-"
    ],
)
def test_malformed_traceparents_are_none(value: object) -> None:
    assert TraceContext.parse(value) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.from_regex(W3C, fullmatch=True), st.binary()))
def test_parse_never_raises_and_accepts_only_the_w3c_form(value: object) -> None:
    ctx = TraceContext.parse(value)
    if ctx is not None:
        assert isinstance(value, str)
        assert W3C.fullmatch(ctx.traceparent)
        assert value.startswith(ctx.traceparent)  # version 00: exactly it
        child = ctx.child()
        assert (child.trace_id, W3C.fullmatch(child.traceparent) is not None) == (
            ctx.trace_id,
            True,
        )


def test_new_traces_are_valid_and_distinct() -> None:
    a, b = TraceContext.new(), TraceContext.new()
    assert W3C.fullmatch(a.traceparent)
    assert a.trace_id != b.trace_id
    assert TraceContext.parse(a.traceparent) == a


# -- across bus hops --------------------------------------------------------------------


async def _child_of(parent: Event, *, batch: bool = False, foreign: bool = False) -> Event:
    """Publish ``parent``; a consumer publishes a child while handling it; return the child.

    ``foreign``: ``parent`` goes straight into the log, as from a producer that is not
    this library (nothing checks its ``traceparent`` on the way in).
    """
    async with EventBus.from_url("memory://") as bus:

        async def handle(event: Event) -> None:
            child = Event(type="child", source="/tests")
            if batch:
                await bus.publish_batch([child])
            else:
                await bus.publish(child)

        consumer = await bus.consume("tracing", handle, pattern={"type": ["parent"]})
        async with bus.subscribe({"type": ["child"]}) as sub:
            if foreign:
                await bus.backend.append((parent,))
            else:
                await bus.publish(parent)
            with anyio.fail_after(5):
                await consumer.drain()
                return await sub.receive()


@pytest.mark.parametrize("batch", [False, True])
async def test_an_event_published_while_handling_continues_the_trace(batch: bool) -> None:
    parent = Event(type="parent", source="/tests", extensions={"traceparent": PARENT})
    child = await _child_of(parent, batch=batch)
    ctx = trace_of(child)
    assert ctx is not None
    assert W3C.fullmatch(str(child.extensions["traceparent"]))
    assert ctx.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ctx.span_id != "00f067aa0ba902b7"


@pytest.mark.parametrize("bad", ["garbage", "00-xyz", PARENT.upper(), "0" * 55])
async def test_a_malformed_incoming_traceparent_is_replaced(bad: str) -> None:
    parent = Event(type="parent", source="/tests", extensions={"traceparent": bad})
    child = await _child_of(parent, foreign=True)
    ctx = trace_of(child)
    assert ctx is not None
    assert W3C.fullmatch(ctx.traceparent)
    # The replacement is derived from the handled event: its children share one trace.
    again = trace_of(await _child_of(parent, foreign=True))
    assert again is not None
    assert (again.trace_id, again.span_id != ctx.span_id) == (
        ctx.trace_id,
        True,
    )
    published = trace_of(await _child_of(parent))  # through publish: replaced on the way in
    assert published is not None
    assert published.trace_id != ctx.trace_id


async def test_a_malformed_traceparent_published_outside_a_handler_is_replaced() -> None:
    async with EventBus.from_url("memory://") as bus, bus.subscribe() as sub:
        await bus.publish(Event(type="t", source="/s", extensions={"traceparent": "nope"}))
        await bus.publish(Event(type="t", source="/s"))
        replaced, plain = await sub.receive(), await sub.receive()
    assert W3C.fullmatch(str(replaced.extensions["traceparent"]))
    assert plain.extensions == {}  # no context: nothing added


async def test_use_trace_sets_the_context_of_what_is_published() -> None:
    incoming = TraceContext.parse(PARENT)
    assert incoming is not None
    async with EventBus.from_url("memory://") as bus, bus.subscribe() as sub:
        with use_trace(incoming):
            assert current_trace() == incoming
            await bus.publish(Event(type="t", source="/s"))
        assert current_trace() is None
        event = await sub.receive()
    ctx = trace_of(event)
    assert ctx is not None
    assert ctx.trace_id == incoming.trace_id


async def test_an_event_published_by_a_job_handler_continues_the_submitters_trace() -> None:
    async with EventBus.from_url("memory://") as bus:

        async def work(ctx: JobContext[Any]) -> None:
            await bus.publish(Event(type="from.job", source="/tests"))

        tracker = JobTracker(bus, MemoryJobStore())
        tracker.worker("traced")(work)
        async with tracker, bus.subscribe({"type": ["from.job"]}) as sub:
            with use_trace(TraceContext.parse(PARENT)):
                job = await tracker.submit("traced", None, owner="u1")
            await tracker.wait(job.id, timeout=10)
            with anyio.fail_after(5):
                event = await sub.receive()
    ctx = trace_of(event)
    assert ctx is not None
    assert ctx.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert ctx.span_id != "00f067aa0ba902b7"


# -- OpenTelemetry ------------------------------------------------------------------------


@pytest.fixture
def spans() -> Iterator[Any]:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    set_tracer(provider.get_tracer("tests"))
    try:
        yield exporter
    finally:
        set_tracer(None)


async def test_opentelemetry_spans_follow_the_event_across_a_hop(spans: Any) -> None:
    from opentelemetry.trace import SpanKind

    parent = Event(type="parent", source="/tests", extensions={"traceparent": PARENT})
    child = await _child_of(parent)
    finished = {(s.name, s.kind): s for s in spans.get_finished_spans()}
    publish_parent = finished[("publish parent", SpanKind.PRODUCER)]
    process = finished[("process parent", SpanKind.CONSUMER)]
    publish_child = finished[("publish child", SpanKind.PRODUCER)]
    trace_id = int("4bf92f3577b34da6a3ce929d0e0e4736", 16)
    assert {s.context.trace_id for s in (publish_parent, process, publish_child)} == {trace_id}
    assert process.parent is not None
    assert process.parent.span_id == int("00f067aa0ba902b7", 16)
    assert publish_child.parent is not None
    assert publish_child.parent.span_id == process.context.span_id
    ctx = trace_of(child)  # the child carries its publish span as parent
    assert ctx is not None
    assert int(ctx.span_id, 16) == publish_child.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.consumer.group.name"] == "tracing"


async def test_a_failing_handler_records_its_error_on_the_span(spans: Any) -> None:
    from opentelemetry.trace import StatusCode

    from eventpatterns.bus import Retry

    async with EventBus.from_url("memory://") as bus:

        async def fail(event: Event) -> None:
            raise RuntimeError("boom")

        consumer = await bus.consume("failing", fail, retry=Retry(max_attempts=1))
        await bus.publish(Event(type="t", source="/s"))
        with anyio.fail_after(5):
            await consumer.drain()
    [process] = [s for s in spans.get_finished_spans() if s.name == "process t"]
    assert process.status.status_code is StatusCode.ERROR
    assert [e.name for e in process.events] == ["exception"]


def test_without_opentelemetry_nothing_is_imported_and_context_still_flows() -> None:
    code = """
import sys
sys.modules["opentelemetry"] = None  # as if not installed
import anyio
from eventpatterns import Event, EventBus
from eventpatterns.observability import _trace

async def main():
    async with EventBus.from_url("memory://") as bus, bus.subscribe({"type": ["child"]}) as sub:
        async def handle(event):
            await bus.publish(Event(type="child", source="/s"))
        consumer = await bus.consume("g", handle, pattern={"type": ["parent"]})
        tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        await bus.publish(Event(type="parent", source="/s", extensions={"traceparent": tp}))
        await consumer.drain()
        child = await sub.receive()
        print(_trace._otel, child.extensions["traceparent"][:35])

anyio.run(main)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "00-4bf92f3577b34da6a3ce929d0e0e4736"]


async def test_no_trace_in_means_no_trace_out() -> None:
    child = await _child_of(Event(type="parent", source="/tests"))
    assert "traceparent" not in child.extensions
