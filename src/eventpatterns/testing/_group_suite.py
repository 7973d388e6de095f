"""The conformance suite of the :class:`~eventpatterns.bus.ConsumerGroups` role.

The first half calls the backend directly (receive, ack, release, visibility
timeouts, group_stats); the second runs consumers through the
:class:`~eventpatterns.bus.EventBus` façade (retries, timeouts, batches, ``drain``),
which is where a backend's group bookkeeping meets real handlers.
"""

from __future__ import annotations

import anyio
import pytest

from ..bus import (
    Backoff,
    BatchFailure,
    BusBackend,
    Delivery,
    EventBus,
    GroupStats,
    Retry,
    Timeouts,
)
from ..core import Event
from ..errors import BusClosed, ConfigurationError, GroupNotFound
from ._clock import ManualClock
from ._helpers import TypeMatcher, eventually, make_events
from ._suite_base import BackendSuiteBase

__all__ = ["ConsumerGroupSuite"]

NO_JITTER = Backoff(initial=10, multiplier=2, jitter=0)


async def _take(
    backend: BusBackend,
    group: str,
    consumer: str = "c1",
    *,
    count: int = 10,
    visibility: float = 30,
) -> list[Delivery]:
    return await backend.receive(
        group, consumer, max_count=count, visibility_timeout=visibility, wait=0
    )


def _numbers(backend: BusBackend, deliveries: list[Delivery]) -> list[int]:
    """The deliveries' ``data["n"]``, sorted unless the backend promises a total order."""
    numbers = [d.event.data["n"] for d in deliveries]
    return numbers if backend.capabilities.ordering == "total" else sorted(numbers)


class ConsumerGroupSuite(BackendSuiteBase):
    """Conformance tests of consumer groups: delivery, acks, redelivery, consumers."""

    # -- the backend: groups, receive, ack, release ------------------------------------

    async def test_group_start_earliest_gets_history(self, backend: BusBackend) -> None:
        if not backend.capabilities.history:
            pytest.skip("the backend keeps no history")
        await backend.append(make_events(5))
        assert await backend.create_group("late", start="earliest") is True
        assert await backend.create_group("late", start="latest") is False
        deliveries = await _take(backend, "late")
        assert [d.event.data["n"] for d in deliveries] == [0, 1, 2, 3, 4]
        assert all(d.attempt == 1 and d.last_error is None for d in deliveries)

    async def test_group_start_latest_skips_history(self, backend: BusBackend) -> None:
        await backend.append(make_events(5))
        assert await backend.create_group("new", start="latest") is True
        await backend.append(make_events(2, start=5))
        deliveries = await _take(backend, "new")
        assert _numbers(backend, deliveries) == [5, 6]

    async def test_group_names_and_start_are_checked(self, bus: EventBus) -> None:
        for bad in ("", "has space", "colon:inside", "x" * 129, "brace{", "ünïcode"):
            with pytest.raises(ConfigurationError, match="group name"):
                await bus.backend.create_group(bad, start="latest")
            with pytest.raises(ConfigurationError, match="group name"):
                await bus.create_group(bad)
        with pytest.raises(ConfigurationError, match="start"):
            await bus.backend.create_group("g", start="middle")  # type: ignore[arg-type]
        assert await bus.backend.create_group("Orders.v2_fulfil-1", start="latest") is True

    async def test_unknown_group_raises(self, backend: BusBackend) -> None:
        with pytest.raises(GroupNotFound):
            await _take(backend, "nope")
        with pytest.raises(GroupNotFound):
            await backend.group_stats("nope")

    async def test_ack_removes_and_visibility_timeout_redelivers(
        self, backend: BusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(2))
        first = await _take(backend, "g")
        assert [d.attempt for d in first] == [1, 1]
        await backend.ack("g", [first[0].receipt])
        assert await _take(backend, "g", "c2") == []
        await self.advance(clock, 29)
        assert await _take(backend, "g", "c2") == []
        await self.advance(clock, 2)
        again = await _take(backend, "g", "c2")
        assert [(d.event.id, d.attempt) for d in again] == [(first[1].event.id, 2)]

    async def test_release_delays_redelivery_and_keeps_error(
        self, backend: BusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(1))
        (delivery,) = await _take(backend, "g", count=1)
        await backend.release("g", delivery.receipt, delay=10, error="ValueError: boom")
        assert await _take(backend, "g", count=1) == []
        await self.advance(clock, 10.5)
        (again,) = await _take(backend, "g", count=1)
        assert again.attempt == 2
        assert again.last_error == "ValueError: boom"

    async def test_unknown_receipts_are_ignored(self, backend: BusBackend) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(1))
        (delivery,) = await _take(backend, "g")
        await backend.ack("g", ["no-such-receipt"])
        await backend.release("g", "no-such-receipt", delay=0, error="x")
        assert (await backend.group_stats("g")).pending == 1  # the real one is untouched
        await backend.ack("g", [delivery.receipt])
        await backend.ack("g", [delivery.receipt])  # twice: still harmless
        await backend.release("g", delivery.receipt, delay=0, error="late")  # after the ack
        assert (await backend.group_stats("g")).pending == 0
        assert await _take(backend, "g") == []  # the late release did not bring it back

    async def test_group_stats_count_lag_pending_and_dead_letters(
        self, backend: BusBackend
    ) -> None:
        await backend.create_group("g", start="latest")
        assert await backend.group_stats("g") == GroupStats()
        await backend.append(make_events(5))
        stats = await backend.group_stats("g")
        assert (stats.lag, stats.pending, stats.dead_letters) == (5, 0, 0)
        taken = await _take(backend, "g", count=3)
        stats = await backend.group_stats("g")
        assert (stats.lag, stats.pending) == (2, 3)
        await backend.ack("g", [taken[0].receipt])
        await backend.dead_letter("g", taken[1].receipt, error="manual")
        stats = await backend.group_stats("g")
        assert (stats.lag, stats.pending, stats.dead_letters) == (2, 1, 1)
        assert (stats.trimmed_unread, stats.lost) == (0, 0)

    async def test_blocked_receive_wakes_on_append(self, backend: BusBackend) -> None:
        await backend.create_group("g", start="latest")
        got: list[Delivery] = []
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def consumer() -> None:
                    got.extend(
                        await backend.receive(
                            "g", "c", max_count=5, visibility_timeout=30, wait=3600
                        )
                    )

                tg.start_soon(consumer)
                await anyio.wait_all_tasks_blocked()
                await backend.append(make_events(1))
        assert [d.event.data["n"] for d in got] == [0]

    async def test_cancelled_receive_takes_nothing(self, backend: BusBackend) -> None:
        await backend.create_group("idle", start="latest")
        with anyio.fail_after(5):
            with anyio.move_on_after(0.1) as scope:
                await backend.receive("idle", "c", max_count=1, visibility_timeout=30, wait=3600)
        assert scope.cancelled_caught
        await backend.append(make_events(1))
        (delivery,) = await _take(backend, "idle", "other")
        assert delivery.attempt == 1  # nobody holds it: the cancelled receive left nothing

    # -- consumers through the façade ----------------------------------------------------

    async def test_group_delivers_each_event_once_across_consumers(self, bus: EventBus) -> None:
        seen: list[int] = []

        async def handler(event: Event) -> None:
            seen.append(event.data["n"])

        await bus.create_group("workers")
        a = await bus.consume("workers", handler)
        b = await bus.consume("workers", handler)
        await bus.publish_batch(make_events(200))
        with anyio.fail_after(10):
            await a.drain()
        # Each once: no failure, no redelivery (the message says which way it failed).
        twice = sorted({n for n in seen if seen.count(n) > 1})
        missing = sorted(set(range(200)) - set(seen))
        assert sorted(seen) == list(range(200)), (
            f"handled {len(seen)}; twice: {twice[:20]}; missing: {missing[:20]};"
            f" stats a={a.stats} b={b.stats}"
        )
        assert a.stats.succeeded + b.stats.succeeded == 200

    async def test_single_consumer_sees_log_order(self, bus: EventBus) -> None:
        seen: list[int] = []

        async def handler(event: Event) -> None:
            seen.append(event.data["n"])

        consumer = await bus.consume("ordered", handler, prefetch=7)
        await bus.publish_batch(make_events(100))
        with anyio.fail_after(10):
            await consumer.drain()
        if bus.backend.capabilities.ordering == "total":
            assert seen == list(range(100))
        else:  # no order promised: each once
            assert sorted(seen) == list(range(100))

    async def test_two_groups_each_get_every_event(self, bus: EventBus) -> None:
        seen: dict[str, list[int]] = {"a": [], "b": []}
        consumers = []
        for name in seen:

            async def handler(event: Event, name: str = name) -> None:
                seen[name].append(event.data["n"])

            consumers.append(await bus.consume(name, handler))
        await bus.publish_batch(make_events(50))
        with anyio.fail_after(10):
            for consumer in consumers:
                await consumer.drain()
        if bus.backend.capabilities.ordering == "total":
            assert seen["a"] == seen["b"] == list(range(50))
        else:
            assert sorted(seen["a"]) == sorted(seen["b"]) == list(range(50))

    async def test_failed_handler_is_retried_with_backoff(
        self, bus: EventBus, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        attempts: list[float] = []
        delays: list[float] = []
        release = bus.backend.release

        async def spy(group: str, receipt: str, *, delay: float, error: str) -> None:
            delays.append(delay)
            await release(group, receipt, delay=delay, error=error)

        monkeypatch.setattr(bus.backend, "release", spy)

        async def flaky(event: Event) -> None:
            attempts.append(clock.time())
            if len(attempts) < 3:
                raise RuntimeError(f"failure {len(attempts)}")

        consumer = await bus.consume("retry", flaky, retry=Retry(max_attempts=5, backoff=NO_JITTER))
        await bus.publish(make_events(1)[0])
        await eventually(lambda: consumer.stats.retried == 1)
        await self.advance(clock, 10.5)
        await eventually(lambda: consumer.stats.retried == 2)
        await self.advance(clock, 20.5)
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.succeeded == 1
        assert delays == [10.0, 20.0]
        assert len(attempts) == 3
        # Each attempt waited for its delay on the backend's clock, not less:
        assert attempts[1] - attempts[0] >= 10
        assert attempts[2] - attempts[1] >= 20

    async def test_crashed_consumer_message_is_redelivered_then_dead_lettered(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        backend = bus.backend
        await bus.create_group("crashy")
        await bus.publish(make_events(1)[0])
        for attempt in (1, 2):  # two consumers take it and "crash" without acking
            (d,) = await _take(backend, "crashy", f"c{attempt}", count=1, visibility=5)
            assert d.attempt == attempt
            await self.advance(clock, 6)
        calls: list[Event] = []

        async def handler(e: Event) -> None:
            calls.append(e)

        consumer = await bus.consume(
            "crashy", handler, retry=Retry(max_attempts=2), timeouts=Timeouts(visibility=5)
        )
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.dead_lettered == 1
        assert calls == []  # the poison message is not run a third time
        (letter,) = await bus.dead_letters("crashy")
        assert letter.attempts == 3
        assert "max_attempts=2" in letter.error

    async def test_hung_handler_times_out_and_is_retried(self, bus: EventBus) -> None:
        calls = 0

        async def handler(event: Event) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                await anyio.sleep_forever()

        consumer = await bus.consume(
            "hung",
            handler,
            retry=Retry(backoff=Backoff(initial=0, jitter=0)),
            timeouts=Timeouts(handler=0.05),
        )
        await bus.publish(make_events(1)[0])
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.succeeded == 1
        assert calls == 2
        assert consumer.stats.last_error is not None
        assert "did not finish" in consumer.stats.last_error

    async def test_partial_batch_failure_retries_only_failed(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        batches: list[list[int]] = []

        async def handler(events: list[Event]) -> list[str]:
            batches.append([e.data["n"] for e in events])
            if len(batches) == 1:
                return [e.id for e in events if e.data["n"] % 2]
            return []

        consumer = await bus.consume_batches(
            "batch", handler, batch_size=10, retry=Retry(backoff=Backoff(initial=1, jitter=0))
        )
        await bus.publish_batch(make_events(6))
        await eventually(lambda: consumer.stats.retried == 3)
        await self.advance(clock, 2)
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.succeeded == 6
        assert batches[0] == [0, 1, 2, 3, 4, 5]
        assert sorted(n for batch in batches[1:] for n in batch) == [1, 3, 5]

    async def test_batch_failure_exception(self, bus: EventBus, clock: ManualClock) -> None:
        batches: list[list[int]] = []

        async def handler(events: list[Event]) -> None:
            batches.append([e.data["n"] for e in events])
            if len(batches) == 1:
                raise BatchFailure([events[0].id], "first one broke")

        consumer = await bus.consume_batches(
            "batch2", handler, batch_size=10, retry=Retry(backoff=Backoff(initial=1, jitter=0))
        )
        await bus.publish_batch(make_events(3))
        await eventually(lambda: consumer.stats.retried == 1)
        assert consumer.stats.last_error == "first one broke"
        await self.advance(clock, 2)
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.succeeded == 3
        assert batches[1:] == [[0]]

    async def test_consumer_pattern_acks_unwanted(self, bus: EventBus) -> None:
        seen: list[str] = []

        async def handler(event: Event) -> None:
            seen.append(event.type)

        consumer = await bus.consume("picky", handler, pattern=TypeMatcher("keep"))
        await bus.publish_batch(make_events(3, type="drop") + make_events(2, type="keep"))
        with anyio.fail_after(10):
            await consumer.drain()
        assert seen == ["keep", "keep"]
        assert (consumer.stats.succeeded, consumer.stats.filtered_out) == (2, 3)
        assert await _take(bus.backend, "picky", "x") == []

    async def test_stopped_consumer_leaves_delivery_for_others(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        started = anyio.Event()

        async def stuck(event: Event) -> None:
            started.set()
            await anyio.sleep_forever()

        async with await bus.consume(
            "handover", stuck, timeouts=Timeouts(visibility=30, handler=1000)
        ) as first:
            await bus.publish(make_events(1)[0])
            with anyio.fail_after(10):
                await started.wait()
        assert not first.running
        assert await _take(bus.backend, "handover", "probe") == []  # still invisible
        got: list[Event] = []

        async def ok(event: Event) -> None:
            got.append(event)

        second = await bus.consume("handover", ok)
        await self.advance(clock, 31)
        with anyio.fail_after(10):
            await second.drain()
        assert len(got) == 1

    # -- drain -------------------------------------------------------------------------

    async def test_drain_waits_for_pending_retries(
        self, bus: EventBus, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        calls = 0

        async def fails_once(event: Event) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise ValueError("not yet")

        consumer = await bus.consume(
            "patient", fails_once, retry=Retry(backoff=Backoff(initial=60, jitter=0))
        )
        checks = 0
        stats = bus.backend.group_stats

        async def counted(group: str) -> object:
            nonlocal checks
            checks += 1
            return await stats(group)

        monkeypatch.setattr(bus.backend, "group_stats", counted)
        drained = False
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def drain() -> None:
                    nonlocal drained
                    await consumer.drain()
                    drained = True

                await bus.publish(make_events(1)[0])
                tg.start_soon(drain)
                await eventually(lambda: consumer.stats.retried == 1)
                seen = checks
                await eventually(lambda: checks >= seen + 2)  # it looked, twice, after the retry
                assert not drained  # the retry waiting out its delay is still pending
                await self.advance(clock, 61)
        assert drained
        assert calls == 2
        assert consumer.stats.succeeded == 1

    async def test_drain_counts_dead_letters_and_filtered_events(self, bus: EventBus) -> None:
        async def picky(event: Event) -> None:
            if event.data["n"] % 2:
                raise ValueError("odd")

        consumer = await bus.consume(
            "mixed", picky, pattern=TypeMatcher("test.event"), retry=Retry(max_attempts=1)
        )
        await bus.publish_batch(make_events(6) + make_events(3, type="other"))
        with anyio.fail_after(10):
            await consumer.drain()
        assert consumer.stats.succeeded == 3
        assert consumer.stats.dead_lettered == 3
        assert consumer.stats.filtered_out == 3
        stats = await bus.group_stats("mixed")
        assert (stats.lag, stats.pending, stats.dead_letters) == (0, 0, 3)

    async def test_drain_of_a_stopped_consumer_raises(self, bus: EventBus) -> None:
        async def handler(event: Event) -> None:
            pass

        consumer = await bus.consume("gone", handler)
        await consumer.aclose()
        await bus.publish(make_events(1)[0])
        with pytest.raises(BusClosed, match="stopped"):
            await consumer.drain()
        assert (await bus.group_stats("gone")).lag == 1  # nobody took it after the close
