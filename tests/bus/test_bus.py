"""The EventBus façade's consumers (subscriptions and lifecycle: test_subscription.py)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence

import anyio
import pytest

from eventpatterns import Backoff, Event, EventBus
from eventpatterns.errors import ConfigurationError
from eventpatterns.testing import ManualClock, eventually, make_events

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- construction -----------------------------------------------------------------------


async def test_consume_validates_its_arguments() -> None:
    async def handler(event: Event) -> None:
        pass

    async with EventBus.from_url("memory://") as bus:
        for options, message in [
            ({"max_attempts": 0}, "max_attempts must be at least 1"),
            ({"visibility_timeout": 0}, "visibility_timeout must be > 0"),
            ({"prefetch": 0}, "prefetch must be at least 1"),
        ]:
            with pytest.raises(ConfigurationError, match=message):
                await bus.consume("g", handler, **options)
        with pytest.raises(ConfigurationError, match="batch_size must be at least 1"):
            await bus.consume("g", handler, batch_size=0)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="group name"):
            await bus.consume("", handler)


def test_backoff_grows_caps_and_jitters() -> None:
    plain = Backoff(initial=1, multiplier=3, maximum=20, jitter=0)
    assert [plain.delay(n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 20.0]
    jittered = Backoff(initial=8, multiplier=2, jitter=0.25)
    rng = random.Random(7)
    delays = [jittered.delay(2, rng) for _ in range(200)]
    assert all(12.0 <= d <= 16.0 for d in delays)
    assert len(set(delays)) > 100  # really random, not a constant
    for bad in ({"multiplier": 0.5}, {"jitter": 1.5}, {"initial": -1}):
        with pytest.raises(ConfigurationError):
            Backoff(**bad)  # type: ignore[arg-type]


# -- consumers ------------------------------------------------------------------------


async def test_batch_handler_reporting_unknown_ids_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done = anyio.Event()

    async def handler(events: list[Event]) -> Sequence[str]:
        done.set()
        return ["not-in-this-batch"]

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("b", handler, batch_size=5, poll=0.05)
        with caplog.at_level(logging.WARNING, logger="eventpatterns.bus"):
            await bus.publish_batch(make_events(3))
            with anyio.fail_after(5):
                await done.wait()
            await eventually(lambda: consumer.stats.succeeded == 3)
    assert "unknown event ids ['not-in-this-batch']" in caplog.text


async def test_consumer_aclose_is_idempotent_and_stops_delivery() -> None:
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("c", handler, poll=0.05)
        await bus.publish(make_events(1)[0])
        await eventually(lambda: len(got) == 1)
        await consumer.aclose()
        await consumer.aclose()
        await bus.publish(make_events(1, start=1)[0])
        await anyio.sleep(0.1)
        assert len(got) == 1


def test_manual_clock_rules() -> None:
    clock = ManualClock(start=10)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    clock.advance(0.5)
    assert clock.time() == 10.5


async def test_handler_timeout_is_per_handler_not_per_batch() -> None:
    done: list[int] = []

    async def slowish(event: Event) -> None:
        await anyio.sleep(0.06)  # under the timeout alone; five of them are not
        done.append(event.data["n"])

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("slow", slowish, prefetch=5, handler_timeout=0.1, poll=0.05)
        await bus.publish_batch(make_events(5))
        await eventually(lambda: len(done) == 5)
        assert consumer.stats.failed == 0
        assert done == [0, 1, 2, 3, 4]


async def test_concurrency_runs_handlers_side_by_side() -> None:
    running = 0
    peak = 0
    done: list[int] = []

    async def handler(event: Event) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await anyio.sleep(0.02)
        running -= 1
        done.append(event.data["n"])

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("pool", handler, concurrency=4, prefetch=1, poll=0.05)
        await bus.publish_batch(make_events(12))
        await eventually(lambda: len(done) == 12)
        assert sorted(done) == list(range(12))
        assert peak == 4
        assert consumer.stats.succeeded == 12
        with pytest.raises(ConfigurationError, match="concurrency must be at least 1"):
            await bus.consume("pool", handler, concurrency=0)
