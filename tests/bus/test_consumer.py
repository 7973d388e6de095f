"""The consumer façade: its arguments, value objects, lifecycle, drain, concurrency."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from eventpatterns import Backoff, Event, EventBus, Retry, Timeouts
from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.bus import Consumer
from eventpatterns.errors import ArgumentTypeError, BusClosed, ConfigurationError
from eventpatterns.testing import ManualClock, eventually, make_events

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def nothing(event: Event) -> None:
    pass


def running(consumer: Consumer) -> bool:
    """``consumer.running`` read afresh: mypy keeps it narrowed across awaits."""
    return consumer.running


# -- the signature ------------------------------------------------------------------------


def test_consume_takes_two_positional_parameters_at_most() -> None:
    for method in (EventBus.consume, EventBus.consume_batches):
        params = list(inspect.signature(method).parameters.values())[1:]  # after self
        positional = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional == ["group", "handler"]
        assert all(p.kind is p.KEYWORD_ONLY for p in params[2:])
        assert "poll" not in {p.name for p in params}


async def test_consume_validates_its_arguments() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(ArgumentTypeError, match="'handler' takes an async callable, got str"):
            await bus.consume("g", "not callable")  # type: ignore[call-overload]
        with pytest.raises(ArgumentTypeError, match=r"consume_batches\(\) argument 'handler'"):
            await bus.consume_batches("g", None)  # type: ignore[arg-type]
        with pytest.raises(ArgumentTypeError, match="'retry' takes a Retry, got int"):
            await bus.consume("g", nothing, retry=5)  # type: ignore[call-overload]
        with pytest.raises(ArgumentTypeError, match="'timeouts' takes a Timeouts"):
            await bus.consume("g", nothing, timeouts=30.0)  # type: ignore[call-overload]
        bad_options: list[tuple[dict[str, Any], str]] = [
            ({"prefetch": 0}, "prefetch must be at least 1"),
            ({"concurrency": 0}, "concurrency must be at least 1"),
            ({"start": "middle"}, "start must be"),
        ]
        for options, message in bad_options:
            with pytest.raises(ConfigurationError, match=message):
                await bus.consume("g", nothing, **options)
        with pytest.raises(ConfigurationError, match="batch_size must be at least 1"):
            await bus.consume_batches("g", nothing, batch_size=0)  # type: ignore[arg-type]
        with pytest.raises(ConfigurationError, match="group name"):
            await bus.consume("", nothing)
        with pytest.raises(TypeError):
            await bus.consume("g", nothing, {"type": ["x"]})  # type: ignore[call-overload]
        # None of the bad calls created the group:
        assert await bus.create_group("g") is True


def test_value_objects_check_their_fields() -> None:
    assert Timeouts().handler_seconds == 30.0
    assert Timeouts(visibility=5, handler=2).handler_seconds == 2.0
    assert Retry().max_attempts == 5
    assert Retry().backoff == Backoff()
    for bad_timeouts in ({"visibility": 0}, {"handler": -1}):
        with pytest.raises(ConfigurationError, match="timeout must be > 0"):
            Timeouts(**bad_timeouts)
    bad_retries: list[tuple[dict[str, Any], str]] = [
        ({"max_attempts": 0}, "at least 1"),
        ({"max_attempts": 2.5}, "must be an int"),
        ({"max_attempts": True}, "must be an int"),
        ({"backoff": 3}, "must be a Backoff"),
    ]
    for bad_retry, message in bad_retries:
        with pytest.raises(ConfigurationError, match=message):
            Retry(**bad_retry)
    with pytest.raises(AttributeError):
        Retry().max_attempts = 3  # type: ignore[misc]  # frozen


# -- lifecycle and drain ------------------------------------------------------------------


async def test_consumer_is_an_async_context_manager() -> None:
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    async with EventBus.from_url("memory://") as bus:
        async with await bus.consume("c", handler) as consumer:
            assert consumer.running
            await bus.publish(make_events(1)[0])
            await consumer.drain()
            assert len(got) == 1
        assert not running(consumer)
        await consumer.aclose()  # idempotent
        await bus.publish(make_events(1, start=1)[0])
        stats = await bus.group_stats("c")
        assert (stats.lag, stats.pending) == (1, 0)  # nobody took it: the consumer stopped
        assert len(got) == 1


async def test_consumer_stops_with_the_bus() -> None:
    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("c", nothing)
        assert consumer.running
    assert not running(consumer)


async def test_close_callbacks_run_once_last_first_and_a_failing_one_stops_no_other(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def closer(name: str, *, fail: bool = False) -> Any:
        async def close() -> None:
            calls.append(name)
            if fail:
                raise RuntimeError(f"{name} failed")

        return close

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("c", nothing)
        consumer.on_close(closer("first"))
        consumer.on_close(closer("second", fail=True))
        consumer.on_close(closer("third"))
        assert calls == []
        await consumer.aclose()
        assert calls == ["third", "second", "first"]
        await consumer.aclose()
        stopped_with_bus = await bus.consume("d", nothing)
        stopped_with_bus.on_close(closer("with the bus"))
    assert calls == ["third", "second", "first", "with the bus"]
    assert "a close callback failed" in caplog.text
    assert "second failed" in caplog.text


async def test_drain_returns_at_once_when_idle_and_after_many_events() -> None:
    done: list[int] = []

    async def handler(event: Event) -> None:
        await anyio.lowlevel.checkpoint()
        done.append(event.data["n"])

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("c", handler, prefetch=3)
        with anyio.fail_after(5):
            await consumer.drain()  # nothing published: idle already
            await bus.publish_batch(make_events(1000))
            await consumer.drain()
        assert done == list(range(1000))
        assert consumer.stats.succeeded == 1000


async def test_drain_sees_other_consumers_of_the_group() -> None:
    async with EventBus.from_url("memory://") as bus:
        await bus.create_group("g")
        await bus.publish(make_events(1)[0])
        # Another member of the group (a raw receive) holds the only delivery.
        (held,) = await bus.backend.receive(
            "g", "other", max_count=1, visibility_timeout=30, wait=0
        )
        idle = await bus.consume("g", nothing, name="idle")
        drained = anyio.Event()
        async with anyio.create_task_group() as tg:

            async def drain() -> None:
                await idle.drain()
                drained.set()

            tg.start_soon(drain)
            await anyio.wait_all_tasks_blocked()
            assert not drained.is_set()  # the delivery held elsewhere is pending
            assert (await bus.group_stats("g")).pending == 1
            await bus.backend.ack("g", [held.receipt])
            with anyio.fail_after(5):
                await drained.wait()
        assert idle.stats.received == 0  # it was the other member's to finish


async def test_drain_with_a_manual_clock_waits_for_the_retry_delay() -> None:
    clock = ManualClock()
    calls: list[float] = []

    async def fails_once(event: Event) -> None:
        calls.append(clock.time())
        if len(calls) == 1:
            raise ValueError("first time")

    async with EventBus(MemoryBusBackend(clock=clock)) as bus:
        consumer = await bus.consume(
            "g", fails_once, retry=Retry(backoff=Backoff(initial=30, jitter=0))
        )
        await bus.publish(make_events(1)[0])
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(consumer.drain)
                await eventually(lambda: consumer.stats.retried == 1)
                await anyio.wait_all_tasks_blocked()
                assert len(calls) == 1
                clock.advance(30)
        assert calls[1] - calls[0] == 30
        assert consumer.stats.succeeded == 1


async def test_drain_raises_if_the_consumer_stops_meanwhile() -> None:
    started = anyio.Event()

    async def stuck(event: Event) -> None:
        started.set()
        await anyio.sleep_forever()

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("g", stuck)
        await bus.publish(make_events(1)[0])
        failure: list[BaseException] = []
        async with anyio.create_task_group() as tg:

            async def drain() -> None:
                try:
                    await consumer.drain()
                except BusClosed as exc:
                    failure.append(exc)

            tg.start_soon(drain)
            with anyio.fail_after(5):
                await started.wait()
            await consumer.aclose()
        assert len(failure) == 1


# -- handling details -----------------------------------------------------------------------


async def test_batch_handler_reporting_unknown_ids_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(events: list[Event]) -> Sequence[str]:
        return ["not-in-this-batch"]

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume_batches("b", handler, batch_size=5)
        with caplog.at_level(logging.WARNING, logger="eventpatterns.bus"):
            await bus.publish_batch(make_events(3))
            with anyio.fail_after(5):
                await consumer.drain()
        assert consumer.stats.succeeded == 3
    assert "unknown event ids ['not-in-this-batch']" in caplog.text


async def test_batch_handler_timeout_fails_the_whole_batch() -> None:
    calls = 0

    async def handler(events: list[Event]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await anyio.sleep_forever()

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume_batches(
            "b",
            handler,
            batch_size=5,
            timeouts=Timeouts(handler=0.05),
            retry=Retry(backoff=Backoff(initial=0, jitter=0)),
        )
        await bus.publish_batch(make_events(3))
        with anyio.fail_after(5):
            await consumer.drain()
        assert (consumer.stats.retried, consumer.stats.succeeded) == (3, 3)
        assert consumer.stats.last_error == (
            "TimeoutError: batch handler did not finish within 0.05s"
        )


async def test_handler_timeout_is_per_handler_not_per_batch() -> None:
    done: list[int] = []

    async def slowish(event: Event) -> None:
        await anyio.sleep(0.06)  # under the timeout alone; five of them are not
        done.append(event.data["n"])

    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("slow", slowish, prefetch=5, timeouts=Timeouts(handler=0.1))
        await bus.publish_batch(make_events(5))
        with anyio.fail_after(5):
            await consumer.drain()
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
        consumer = await bus.consume("pool", handler, concurrency=4, prefetch=1)
        await bus.publish_batch(make_events(12))
        with anyio.fail_after(5):
            await consumer.drain()
        assert sorted(done) == list(range(12))
        assert peak == 4
        assert consumer.stats.succeeded == 12


async def test_group_stats_is_awaited_on_the_bus_and_typed() -> None:
    async with EventBus.from_url("memory://") as bus:
        await bus.create_group("g")
        await bus.publish_batch(make_events(3))
        stats: Any = await bus.group_stats("g")
        assert (stats.lag, stats.pending, stats.dead_letters) == (3, 0, 0)
        assert stats == await bus.backend.group_stats("g")
