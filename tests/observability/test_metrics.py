"""The Metrics registry, EventBus.explain, and the log records' event ids."""

from __future__ import annotations

import logging

import anyio
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.bus import Backoff, Retry
from eventpatterns.errors import ConfigurationError
from eventpatterns.observability import METRICS, Metrics, metrics
from eventpatterns.observability.asgi import MetricsCollector

from .helpers import parse

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_counters_add_up_and_refuse_unknown_names_and_labels() -> None:
    registry = Metrics()
    registry.inc("eventpatterns_bus_retried_total", group="a")
    registry.counter("eventpatterns_bus_retried_total", group="a").inc(2)
    assert registry.value("eventpatterns_bus_retried_total", group="a") == 3
    assert registry.value("eventpatterns_bus_retried_total", group="b") == 0
    with pytest.raises(ConfigurationError, match="unknown metric 'nope_total'"):
        registry.inc("nope_total")
    with pytest.raises(ConfigurationError, match=r"takes labels \['group'\], got \['grp'\]"):
        registry.inc("eventpatterns_bus_retried_total", grp="a")
    with pytest.raises(ConfigurationError, match="is a gauge"):
        registry.counter("eventpatterns_gateway_connections")


def test_gauge_callbacks_sum_and_a_counter_callback_keeps_its_count() -> None:
    registry = Metrics()
    one = registry.gauge("eventpatterns_gateway_connections", lambda: 2)
    registry.gauge("eventpatterns_gateway_connections", lambda: 3)
    assert registry.value("eventpatterns_gateway_connections") == 5
    one()
    assert registry.value("eventpatterns_gateway_connections") == 3
    frames = registry.gauge("eventpatterns_gateway_frames_dropped_total", lambda: 7)
    frames()  # unregistered: the 7 it counted stay
    assert registry.value("eventpatterns_gateway_frames_dropped_total") == 7

    def broken() -> float:
        raise RuntimeError("boom")

    registry.gauge("eventpatterns_gateway_subscriptions", broken)
    assert registry.value("eventpatterns_gateway_subscriptions") == 0  # logged, not raised


async def test_sources_are_cached_between_refreshes_and_a_failure_keeps_the_last() -> None:
    registry = Metrics()
    lag = [4.0]
    fail = [False]

    async def source() -> list[tuple[str, dict[str, str], float]]:
        if fail[0]:
            raise ConnectionError("backend down")
        return [("eventpatterns_bus_group_lag", {"group": "g"}, lag[0])]

    unregister = registry.source(source)
    assert registry.value("eventpatterns_bus_group_lag", group="g") == 0  # not refreshed yet
    await registry.refresh()
    lag[0], fail[0] = 9.0, True
    await registry.refresh()
    assert registry.value("eventpatterns_bus_group_lag", group="g") == 4
    unregister()
    assert registry.value("eventpatterns_bus_group_lag", group="g") == 0


def test_the_collector_renders_every_metric_of_the_table_with_help() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    registry = Metrics()
    registry.inc("eventpatterns_push_results_total", provider="fcm", outcome="delivered")
    prometheus = CollectorRegistry(auto_describe=False)
    prometheus.register(MetricsCollector(registry))
    text = generate_latest(prometheus).decode()
    for spec in METRICS:
        assert f"# HELP {spec.name} {spec.help}" in text
    samples = parse(text)
    key = frozenset({("provider", "fcm"), ("outcome", "delivered")})
    assert samples[("eventpatterns_push_results_total", key)] == 1


async def test_explain_says_why_a_group_or_a_pattern_did_not_fire() -> None:
    async with EventBus.from_url("memory://") as bus:

        async def bill(event: Event) -> None: ...

        await bus.consume("explained", bill, pattern={"type": ["order.paid"]})
        await bus.consume("everything", bill)
        event = Event(type="order.created", source="/shop", data={"total": 5})
        why = bus.explain(event, group="explained")
        assert (why.matched, why.failures[0].path, why.failures[0].seen) == (
            False,
            "$.type",
            ("order.created",),
        )
        assert bus.explain(event, group="everything").matched
        hit = bus.explain(event, pattern={"data": {"total": [{"numeric": [">", 1]}]}})
        assert hit.matched
        with pytest.raises(ConfigurationError, match="no consumer of group 'other'"):
            bus.explain(event, group="other")
        with pytest.raises(ConfigurationError, match="either group= or pattern="):
            bus.explain(event)


async def test_retries_dead_letters_and_publish_failures_log_the_event_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from eventpatterns.backends.memory import MemoryBusBackend
    from eventpatterns.errors import EventTooLarge

    async def fail(event: Event) -> None:
        raise RuntimeError("boom")

    retry = Retry(max_attempts=2, backoff=Backoff(initial=0.001, maximum=0.001, jitter=0))
    caplog.set_level(logging.INFO, logger="eventpatterns.bus")
    before = metrics.value("eventpatterns_bus_publish_failures_total", error="EventTooLarge")
    async with EventBus(MemoryBusBackend(max_message_size=1000)) as bus:
        consumer = await bus.consume("logged", fail, retry=retry)
        event = Event(type="t", source="/s")
        await bus.publish(event)
        with anyio.fail_after(5):
            await consumer.drain()
        big = Event(type="t", source="/s", data="x" * 2000)
        with pytest.raises(EventTooLarge):
            await bus.publish(big)
    retried = [r for r in caplog.records if "retrying in" in r.getMessage()]
    dead = [r for r in caplog.records if "dead-lettered" in r.getMessage()]
    failed = [r for r in caplog.records if r.getMessage().startswith("publishing event")]
    assert [(r.event_id, r.group, r.attempt) for r in retried] == [(event.id, "logged", 1)]  # type: ignore[attr-defined]
    assert [(r.event_id, r.attempt) for r in dead] == [(event.id, 2)]  # type: ignore[attr-defined]
    assert [r.event_id for r in failed] == [big.id]  # type: ignore[attr-defined]
    after = metrics.value("eventpatterns_bus_publish_failures_total", error="EventTooLarge")
    assert after - before == 1


def test_the_docs_table_lists_every_metric_as_the_code_does() -> None:
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
    rows = [line for line in page.read_text().splitlines() if line.startswith("| `eventpatterns_")]
    documented = [row.split("|")[1].strip().strip("`") for row in rows]
    assert documented == [spec.name for spec in METRICS]
    for row, spec in zip(rows, METRICS, strict=True):
        assert spec.help in row
        assert spec.kind in row


async def test_subscriber_overflow_and_invalid_typed_data_count_as_drops() -> None:
    from eventpatterns.core import EventModel, EventRegistry

    class Paid(EventModel, type="obs.paid", source="/tests", registry=EventRegistry("obs")):
        total: int

    def dropped(reason: str) -> float:
        return metrics.value("eventpatterns_bus_dropped_total", reason=reason)

    overflow, invalid = dropped("overflow"), dropped("invalid_data")
    matched = metrics.value("eventpatterns_bus_matched_total")
    async with EventBus.from_url("memory://") as bus:
        async with bus.subscribe({"type": ["obs.tick"]}, buffer=2) as sub:
            await bus.publish_batch([Event(type="obs.tick", source="/s", data=n) for n in range(5)])
            with anyio.fail_after(5):
                while sub.missed < 3:  # noqa: ASYNC110 - the reader's task pushes the batch
                    await anyio.sleep(0.001)
        async with bus.subscribe(Paid) as typed:
            await bus.publish(Event(type="obs.paid", source="/tests", data={"total": "many"}))
            await bus.publish(Paid(total=3))
            with anyio.fail_after(5):
                assert (await typed.receive()).total == 3
    assert dropped("overflow") - overflow == 3
    assert dropped("invalid_data") - invalid == 1
    assert metrics.value("eventpatterns_bus_matched_total") - matched == 5 + 2
