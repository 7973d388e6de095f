"""Benchmark: what tracing costs on the memory bus, against the same bus without it.

Run: ``python benchmarks/observability.py [--events 20000] [--repeat 3]``

Scenarios, each measured in the same run and reported as a ratio to its untraced row:

* publish: ``bus.publish`` of events with no trace context (the default: one context
  variable read), inside ``use_trace`` (each event stamped with a child span id), and
  with OpenTelemetry spans (an SDK tracer provider without exporters: the span cost);
* hop (the weakest case: every event is stamped and every handler call traced): a
  consumer handles each event and publishes one child, parents without a
  ``traceparent``, with one, and with OpenTelemetry spans;
* instrumented: publish to one filtered subscriber and consume through a group (the
  bus_memory.py paths) with the metrics and trace hooks as shipped, against the same
  code with every hook swapped for a no-op (counters' ``inc``, ``stamp``,
  ``otel_tracer``, the current-event variable): the cost of the instrumentation
  itself, less the calls of the no-ops;
* scrape: rendering ``/metrics`` for a registry with 100 consumer groups of counters,
  against ``prometheus_client``'s own counters of the same series.

"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).parent))

from _common import now, print_table, write_results

from eventpatterns import Event, EventBus
from eventpatterns.observability import Metrics, TraceContext, set_tracer, use_trace

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def events(n: int, *, traced: bool = False) -> list[Event]:
    ext = {"traceparent": TRACEPARENT} if traced else None
    return [Event(type="bench", source="/bench", data=i, extensions=ext) for i in range(n)]


def otel_on() -> None:
    from opentelemetry.sdk.trace import TracerProvider

    set_tracer(TracerProvider().get_tracer("bench"))


async def publish(n: int, mode: str) -> float:
    batch = events(n)
    if mode == "otel":
        otel_on()
    try:
        async with EventBus.from_url("memory://") as bus:
            context = TraceContext.parse(TRACEPARENT) if mode == "use_trace" else None
            with use_trace(context):
                t0 = now()
                for event in batch:
                    await bus.publish(event)
                return now() - t0
    finally:
        set_tracer(None)


async def hop(n: int, mode: str) -> float:
    batch = events(n, traced=mode != "untraced")
    if mode == "otel":
        otel_on()
    try:
        async with EventBus.from_url("memory://") as bus:
            done = anyio.Event()
            count = 0

            async def handle(event: Event) -> None:
                nonlocal count
                await bus.publish(Event(type="child", source="/bench", data=event.data))
                count += 1
                if count == n:
                    done.set()

            await bus.consume("hop", handle, pattern={"type": ["bench"]}, prefetch=100)
            t0 = now()
            await bus.publish_batch(batch)
            await done.wait()
            return now() - t0
    finally:
        set_tracer(None)


async def scrape(n: int, mode: str) -> float:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client import Counter as PromCounter

    registry = CollectorRegistry(auto_describe=False)
    groups = [f"group-{i}" for i in range(100)]
    if mode == "eventpatterns":
        from eventpatterns.observability.asgi import MetricsCollector

        ours = Metrics()
        for group in groups:
            for name in ("delivered", "retried", "dead_lettered"):
                ours.inc(f"eventpatterns_bus_{name}_total", 3, group=group)
        registry.register(MetricsCollector(ours))
    else:
        for name in ("delivered", "retried", "dead_lettered"):
            counter = PromCounter(f"eventpatterns_bus_{name}", "help", ["group"], registry=registry)
            for group in groups:
                counter.labels(group=group).inc(3)
    rounds = max(n // 1000, 1)
    t0 = now()
    for _ in range(rounds):
        generate_latest(registry)
    return (now() - t0) / rounds * n  # normalised: "n scrapes' worth" of one scrape


class _Off:
    """Swap every observability hook of the bus for a no-op, for the "off" rows."""

    def __enter__(self) -> None:
        from eventpatterns.observability import _metrics, _trace

        self.saved = (_metrics.Counter.inc, _trace.stamp, _trace.otel_tracer, _trace.CURRENT)
        _metrics.Counter.inc = lambda self, amount=1.0, /: None  # type: ignore[method-assign]
        _trace.stamp = lambda event: event
        _trace.otel_tracer = lambda: None
        _trace.CURRENT = _NoVar()  # type: ignore[assignment]

    def __exit__(self, *exc: object) -> None:
        from eventpatterns.observability import _metrics, _trace

        inc, _trace.stamp, _trace.otel_tracer, _trace.CURRENT = self.saved
        _metrics.Counter.inc = inc  # type: ignore[method-assign]


class _NoVar:
    def set(self, value: object) -> None:
        return None

    def get(self) -> None:
        return None


async def instrumented(n: int, mode: str) -> float:
    batch = events(n)

    async def run() -> float:
        async with EventBus.from_url("memory://") as bus:
            done = anyio.Event()
            count = 0

            async def handle(event: Event) -> None:
                nonlocal count
                count += 1
                if count == n:
                    done.set()

            await bus.consume("bench", handle, prefetch=100)
            async with bus.subscribe({"type": ["bench"]}, buffer=n + 1) as sub:
                t0 = now()
                for event in batch:
                    await bus.publish(event)
                for _ in range(n):
                    await sub.receive()
                await done.wait()
                return now() - t0

    if mode == "hooks off":
        with _Off():
            return await run()
    return await run()


SCENARIOS: list[tuple[str, Callable[[int, str], Awaitable[float]], list[str], str]] = [
    ("publish", publish, ["untraced", "use_trace", "otel"], "events/s"),
    ("hop", hop, ["untraced", "traceparent", "otel"], "events/s"),
    ("publish + subscribe + consume", instrumented, ["hooks off", "hooks on"], "events/s"),
    ("scrape (100 groups)", scrape, ["prometheus_client", "eventpatterns"], "x1000 scrapes"),
]


async def main(n: int, repeat: int) -> None:
    rows: list[dict[str, Any]] = []
    for scenario, run, modes, _unit in SCENARIOS:
        best: dict[str, float] = {}
        rounds = repeat * 3 if run is instrumented else repeat  # the smallest difference
        for _ in range(rounds):  # interleaved, so drifting load hits every mode alike
            for mode in modes:
                seconds = await run(n, mode)
                best[mode] = min(best.get(mode, seconds), seconds)
        base = best[modes[0]]
        for mode in modes:
            rows.append(
                {
                    "scenario": scenario,
                    "mode": mode,
                    "per second": n / best[mode],
                    f"vs {modes[0]}": base / best[mode],
                }
            )
    columns = ["scenario", "mode", "per second", "vs untraced", "vs hooks off"]
    columns.append("vs prometheus_client")
    print(f"{n:,} events, best of {repeat}, interleaved")
    print()
    print_table(rows, columns)
    path = write_results("observability", rows, {"events": n, "repeat": repeat})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    anyio.run(main, args.events, args.repeat)
