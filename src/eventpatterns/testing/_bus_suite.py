"""The public conformance suite for bus backends.

Subclass :class:`BusBackendSuite` once per backend and implement
:meth:`~BusBackendSuite.make_backend`; pytest collects the inherited tests. The
memory, Redis and AWS backends of eventpatterns run exactly these tests, and so
can yours::

    class TestMyBackend(BusBackendSuite):
        async def make_backend(self, clock, *, retention=None, max_message_size=None):
            return MyBackend(clock=clock, ...)
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from ..bus import EARLIEST, Backoff, BatchFailure, BusBackend, Consumer, EventBus, Gap
from ..core import Event
from ..errors import (
    BusClosed,
    ConfigurationError,
    DeadLetterNotFound,
    EventsMissed,
    EventTooLarge,
    GroupNotFound,
    InvalidPosition,
    PositionExpired,
    ResyncRequired,
    StalePosition,
    SubscriberOverflow,
)
from ._clock import ManualClock

__all__ = ["BusBackendSuite", "TypeIs", "eventually", "make_events"]


class TypeIs:
    """A minimal matcher (``matches(event_json)``) selecting one event type."""

    def __init__(self, event_type: str) -> None:
        self.event_type = event_type

    def matches(self, event: dict[str, Any]) -> bool:
        """Tell whether the event has this type."""
        return bool(event.get("type") == self.event_type)


async def eventually(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Wait (in real time, bounded) until ``predicate()`` holds; fail the test if it never does.

    It polls because the states tests wait for (counters, stats) have no event to
    wait on; the bound turns a hang into a failure.
    """
    with anyio.fail_after(timeout):
        while not predicate():  # noqa: ASYNC110 - see above
            await anyio.sleep(0.002)


def _retried(consumer: Consumer, count: int) -> bool:
    return consumer.stats.retried == count


def make_events(count: int, *, type: str = "test.event", start: int = 0) -> list[Event]:  # noqa: A002
    """Build ``count`` small events numbered in ``data["n"]``."""
    return [Event(type=type, source="/conformance", data={"n": start + i}) for i in range(count)]


class BusBackendSuite:
    """Conformance tests every :class:`~eventpatterns.bus.BusBackend` must pass."""

    pytestmark = pytest.mark.anyio

    #: Subclasses narrow this to the async libraries their client supports.
    anyio_backends: tuple[str, ...] = ("asyncio", "trio")

    @classmethod
    def pytest_generate_tests(cls, metafunc: pytest.Metafunc) -> None:
        """Run each test once per async library in :attr:`anyio_backends`."""
        if "anyio_backend" in metafunc.fixturenames:
            metafunc.parametrize("anyio_backend", cls.anyio_backends)

    async def make_backend(
        self,
        clock: ManualClock,
        *,
        retention: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        """Return a fresh, empty backend that reads time from ``clock``.

        Args:
            clock: The test's clock; visibility timeouts and delays must follow it.
            retention: When given, keep at most this many entries in the log.
            max_message_size: When given, reject larger events with ``EventTooLarge``.
        """
        raise NotImplementedError("subclasses return their backend here")

    async def advance(self, clock: ManualClock, seconds: float) -> None:
        """Move time forward (override if the backend also needs real time to pass)."""
        clock.advance(seconds)

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def backend(self, clock: ManualClock) -> AsyncIterator[BusBackend]:
        backend = await self.make_backend(clock)
        yield backend
        await backend.aclose()

    @pytest.fixture
    async def bus(self, backend: BusBackend) -> AsyncIterator[EventBus]:
        async with EventBus(backend) as bus:
            yield bus

    # -- log: order, positions, dedupe ---------------------------------------------------

    async def test_positions_increase_in_publish_order(self, bus: EventBus) -> None:
        single = [await bus.publish(e) for e in make_events(5)]
        batch = await bus.publish_batch(make_events(5, start=5))
        keys = [bus.backend.sort_key(p) for p in single + batch]
        assert keys == sorted(keys)
        assert len(set(keys)) == 10

    async def test_read_returns_entries_in_order(self, bus: EventBus) -> None:
        events = make_events(30)
        await bus.publish_batch(events)
        entries = await bus.backend.read(None, limit=100)
        assert [e.event.id for e in entries] == [e.id for e in events]
        assert [e.event for e in entries] == events
        page = await bus.backend.read(entries[9].position, limit=5)
        assert [e.event.id for e in page] == [e.id for e in events[10:15]]

    async def test_publish_same_id_is_deduplicated(self, bus: EventBus) -> None:
        event = make_events(1)[0]
        first = await bus.publish(event)
        await bus.publish(make_events(1, start=1)[0])
        again = await bus.publish(event)
        in_batch = await bus.publish_batch([event, make_events(1, start=2)[0]])
        assert again == first
        assert in_batch[0] == first
        entries = await bus.backend.read(None, limit=100)
        assert [e.event.data["n"] for e in entries] == [0, 1, 2]

    async def test_dedupe_window_expires(self, bus: EventBus, clock: ManualClock) -> None:
        event = make_events(1)[0]
        first = await bus.publish(event)
        await self.advance(clock, bus.backend.capabilities.dedupe_window + 1)
        second = await bus.publish(event)
        assert bus.backend.sort_key(second) > bus.backend.sort_key(first)

    async def test_invalid_position_is_rejected(self, bus: EventBus) -> None:
        with pytest.raises(InvalidPosition):
            bus.backend.sort_key("not a position")
        with pytest.raises(InvalidPosition):
            async with bus.subscribe(since="not a position"):
                pass

    async def test_event_too_large_is_rejected_whole(self, clock: ManualClock) -> None:
        async with EventBus(await self.make_backend(clock, max_message_size=2048)) as bus:
            small = make_events(1)[0]
            big = Event(type="big", source="/conformance", data="x" * 4096)
            with pytest.raises(EventTooLarge) as info:
                await bus.publish_batch([small, big])
            assert info.value.event_id == big.id
            assert await bus.backend.read(None, limit=10) == []  # nothing of the batch landed

    # -- live subscriptions and replay ---------------------------------------------------

    async def test_subscribe_receives_live_events_in_order(self, bus: EventBus) -> None:
        events = make_events(50)
        async with bus.subscribe() as sub:
            await bus.publish_batch(events[:20])
            for event in events[20:]:
                await bus.publish(event)
            got = [await sub.__anext__() for _ in range(50)]
        assert got == events

    async def test_subscribe_filters_on_the_server(self, bus: EventBus) -> None:
        async with bus.subscribe(TypeIs("wanted")) as sub:
            await bus.publish_batch(make_events(3, type="other") + make_events(2, type="wanted"))
            first = await sub.__anext__()
            second = await sub.__anext__()
        assert isinstance(first, Event)
        assert isinstance(second, Event)
        assert (first.type, second.type) == ("wanted", "wanted")

    async def test_replay_then_live_without_gap_or_duplicate(self, bus: EventBus) -> None:
        events = make_events(60)
        positions = await bus.publish_batch(events[:30])
        got: list[Event | Gap] = []
        async with bus.subscribe(since=positions[9]) as sub, anyio.create_task_group() as tg:

            async def publish_more() -> None:
                for event in events[30:]:
                    await bus.publish(event)

            tg.start_soon(publish_more)
            with anyio.fail_after(10):
                while len(got) < 50:
                    got.append(await sub.__anext__())
        assert got == events[10:]

    async def test_replay_from_earliest(self, bus: EventBus) -> None:
        events = make_events(5)
        await bus.publish_batch(events)
        async with bus.subscribe(since=EARLIEST) as sub:
            got = [await sub.__anext__() for _ in range(5)]
            assert got == events
            assert sub.position is not None

    async def test_resume_from_subscription_position(self, bus: EventBus) -> None:
        events = make_events(10)
        async with bus.subscribe() as sub:
            await bus.publish_batch(events)
            for _ in range(4):
                await sub.__anext__()
            resume_at = sub.position
        async with bus.subscribe(since=resume_at) as sub:
            rest = [await sub.__anext__() for _ in range(6)]
        assert rest == events[4:]

    async def test_replay_older_than_retention_requires_resync(self, clock: ManualClock) -> None:
        async with EventBus(await self.make_backend(clock, retention=10)) as bus:
            positions = await bus.publish_batch(make_events(100))
            with pytest.raises(PositionExpired) as info:
                async with bus.subscribe(since=positions[0]):
                    pass
            assert info.value.position == positions[0]

    async def test_slow_subscriber_drop_oldest_yields_counted_gap(self, bus: EventBus) -> None:
        events = make_events(20)
        async with bus.subscribe(buffer=5) as sub:
            await bus.publish_batch(events)
            await eventually(lambda: sub.missed == 15)
            with pytest.raises(EventsMissed) as gap:
                await sub.receive()
            rest = [await sub.receive() for _ in range(5)]
        assert (gap.value.missed, gap.value.after) == (15, None)
        assert rest == events[15:]

    async def test_slow_subscriber_disconnect_policy(self, bus: EventBus) -> None:
        events = make_events(20)
        async with bus.subscribe(buffer=5, overflow="disconnect") as sub:
            await bus.publish_batch(events)
            got = [await sub.__anext__() for _ in range(5)]
            with pytest.raises(SubscriberOverflow) as info:
                await sub.__anext__()
        assert got == events[:5]
        assert info.value.position == sub.position

    async def test_subscription_ends_when_bus_closes(self, backend: BusBackend) -> None:
        bus = EventBus(backend)
        async with bus:
            sub = bus.subscribe()
            await sub.__aenter__()
        with pytest.raises(StopAsyncIteration):
            await sub.__anext__()

    # -- consumer groups --------------------------------------------------------------------

    async def test_group_delivers_each_event_once_across_consumers(self, bus: EventBus) -> None:
        seen: list[int] = []

        async def handler(event: Event) -> None:
            seen.append(event.data["n"])

        await bus.create_group("workers")
        a = await bus.consume("workers", handler, poll=0.05)
        b = await bus.consume("workers", handler, poll=0.05)
        await bus.publish_batch(make_events(200))
        await eventually(lambda: len(seen) >= 200)
        await anyio.sleep(0.05)
        assert sorted(seen) == list(range(200))
        assert a.stats.succeeded + b.stats.succeeded == 200

    async def test_single_consumer_sees_log_order(self, bus: EventBus) -> None:
        seen: list[int] = []

        async def handler(event: Event) -> None:
            seen.append(event.data["n"])

        await bus.consume("ordered", handler, poll=0.05, prefetch=7)
        await bus.publish_batch(make_events(100))
        await eventually(lambda: len(seen) == 100)
        assert seen == list(range(100))

    async def test_two_groups_each_get_every_event(self, bus: EventBus) -> None:
        seen: dict[str, list[int]] = {"a": [], "b": []}
        for name in seen:

            async def handler(event: Event, name: str = name) -> None:
                seen[name].append(event.data["n"])

            await bus.consume(name, handler, poll=0.05)
        await bus.publish_batch(make_events(50))
        await eventually(lambda: len(seen["a"]) == 50 and len(seen["b"]) == 50)
        assert seen["a"] == seen["b"] == list(range(50))

    async def test_group_start_earliest_gets_history(self, bus: EventBus) -> None:
        await bus.publish_batch(make_events(5))
        assert await bus.create_group("late", start="earliest") is True
        assert await bus.create_group("late", start="latest") is False
        deliveries = await bus.backend.receive(
            "late", "c1", max_count=10, visibility_timeout=30, wait=0
        )
        assert [d.event.data["n"] for d in deliveries] == [0, 1, 2, 3, 4]
        assert all(d.attempt == 1 for d in deliveries)

    async def test_group_start_latest_skips_history(self, bus: EventBus) -> None:
        await bus.publish_batch(make_events(5))
        await bus.create_group("new")
        await bus.publish_batch(make_events(2, start=5))
        deliveries = await bus.backend.receive(
            "new", "c1", max_count=10, visibility_timeout=30, wait=0
        )
        assert [d.event.data["n"] for d in deliveries] == [5, 6]

    async def test_group_names_are_checked(self, bus: EventBus) -> None:
        for bad in ("", "has space", "colon:inside", "x" * 129, "brace{", "ünïcode"):
            with pytest.raises(ConfigurationError, match="group name"):
                await bus.backend.create_group(bad, start="latest")
            with pytest.raises(ConfigurationError, match="group name"):
                await bus.create_group(bad)
        assert await bus.backend.create_group("Orders.v2_fulfil-1", start="latest") is True

    async def test_unknown_group_raises(self, backend: BusBackend) -> None:
        with pytest.raises(GroupNotFound):
            await backend.receive("nope", "c1", max_count=1, visibility_timeout=1, wait=0)

    async def test_ack_removes_and_visibility_timeout_redelivers(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        backend = bus.backend
        await bus.create_group("g")
        await bus.publish_batch(make_events(2))
        first = await backend.receive("g", "c1", max_count=10, visibility_timeout=30, wait=0)
        assert [d.attempt for d in first] == [1, 1]
        await backend.ack("g", [first[0].receipt])
        assert await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0) == []
        await self.advance(clock, 29)
        assert await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0) == []
        await self.advance(clock, 2)
        again = await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0)
        assert [(d.event.id, d.attempt) for d in again] == [(first[1].event.id, 2)]

    async def test_release_delays_redelivery_and_keeps_error(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        backend = bus.backend
        await bus.create_group("g")
        await bus.publish(make_events(1)[0])
        (delivery,) = await backend.receive("g", "c1", max_count=1, visibility_timeout=30, wait=0)
        await backend.release("g", delivery.receipt, delay=10, error="ValueError: boom")
        assert await backend.receive("g", "c1", max_count=1, visibility_timeout=30, wait=0) == []
        await self.advance(clock, 10.5)
        (again,) = await backend.receive("g", "c1", max_count=1, visibility_timeout=30, wait=0)
        assert again.attempt == 2
        assert again.last_error == "ValueError: boom"

    async def test_failed_handler_is_retried_with_backoff(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        attempts: list[float] = []

        async def flaky(event: Event) -> None:
            attempts.append(clock.time())
            if len(attempts) < 3:
                raise RuntimeError(f"failure {len(attempts)}")

        consumer = await bus.consume(
            "retry",
            flaky,
            poll=0.05,
            max_attempts=5,
            backoff=Backoff(initial=10, multiplier=2, jitter=0),
        )
        await bus.publish(make_events(1)[0])
        await eventually(lambda: consumer.stats.retried == 1)
        await self.advance(clock, 9)
        await anyio.sleep(0.1)
        assert len(attempts) == 1  # not before the backoff delay
        await self.advance(clock, 1.5)
        await eventually(lambda: consumer.stats.retried == 2)
        await self.advance(clock, 20.5)
        await eventually(lambda: consumer.stats.succeeded == 1)
        assert len(attempts) == 3
        assert attempts[1] - attempts[0] >= 10
        assert attempts[2] - attempts[1] >= 20

    async def test_dead_letter_after_max_attempts_then_redrive(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        calls: list[int] = []
        healthy = False

        async def handler(event: Event) -> None:
            calls.append(event.data["n"])
            if not healthy:
                raise ValueError("cannot handle this")

        consumer = await bus.consume(
            "dlq", handler, poll=0.05, max_attempts=3, backoff=Backoff(initial=1, jitter=0)
        )
        event = make_events(1)[0]
        await bus.publish(event)
        for expected in (1, 2):
            await eventually(functools.partial(_retried, consumer, expected))
            await self.advance(clock, 10)
        await eventually(lambda: consumer.stats.dead_lettered == 1)
        assert len(calls) == 3  # exactly max_attempts
        (letter,) = await bus.dead_letters("dlq")
        assert letter.event == event
        assert letter.attempts == 3
        assert letter.error == "ValueError: cannot handle this"
        assert letter.group == "dlq"
        assert await bus.get_dead_letter("dlq", letter.id) == letter
        healthy = True
        assert await bus.redrive("dlq", [letter.id]) == 1
        await eventually(lambda: consumer.stats.succeeded == 1)
        assert await bus.dead_letters("dlq") == []
        assert len(calls) == 4

    async def test_dead_letter_ids_are_checked(self, bus: EventBus) -> None:
        await bus.create_group("g")
        await bus.publish(make_events(1)[0])
        (delivery,) = await bus.backend.receive(
            "g", "c", max_count=1, visibility_timeout=30, wait=0
        )
        letter = await bus.backend.dead_letter("g", delivery.receipt, error="manual")
        with pytest.raises(DeadLetterNotFound):
            await bus.get_dead_letter("g", "no-such-id")
        with pytest.raises(DeadLetterNotFound):
            await bus.redrive("g", [letter.id, "no-such-id"])
        assert [d.id for d in await bus.dead_letters("g")] == [letter.id]  # nothing redriven
        assert await bus.discard_dead_letters("g") == 1
        assert await bus.dead_letters("g") == []

    async def test_crashed_consumer_message_is_redelivered_then_dead_lettered(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        backend = bus.backend
        await bus.create_group("crashy")
        event = make_events(1)[0]
        await bus.publish(event)
        for attempt in (1, 2):  # two consumers take it and "crash" without acking
            (d,) = await backend.receive(
                "crashy", f"c{attempt}", max_count=1, visibility_timeout=5, wait=0
            )
            assert d.attempt == attempt
            await self.advance(clock, 6)
        calls: list[Event] = []

        async def handler(e: Event) -> None:
            calls.append(e)

        consumer = await bus.consume(
            "crashy", handler, poll=0.05, max_attempts=2, visibility_timeout=5
        )
        await eventually(lambda: consumer.stats.dead_lettered == 1)
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
            "hung", handler, poll=0.05, handler_timeout=0.05, backoff=Backoff(initial=0, jitter=0)
        )
        await bus.publish(make_events(1)[0])
        await eventually(lambda: consumer.stats.succeeded == 1)
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

        consumer = await bus.consume(
            "batch", handler, batch_size=10, poll=0.05, backoff=Backoff(initial=1, jitter=0)
        )
        await bus.publish_batch(make_events(6))
        await eventually(lambda: consumer.stats.retried == 3)
        await self.advance(clock, 2)
        await eventually(lambda: consumer.stats.succeeded == 6)
        assert batches[0] == [0, 1, 2, 3, 4, 5]
        assert sorted(n for batch in batches[1:] for n in batch) == [1, 3, 5]

    async def test_batch_failure_exception(self, bus: EventBus, clock: ManualClock) -> None:
        batches: list[list[int]] = []

        async def handler(events: list[Event]) -> None:
            batches.append([e.data["n"] for e in events])
            if len(batches) == 1:
                raise BatchFailure([events[0].id], "first one broke")

        consumer = await bus.consume(
            "batch2", handler, batch_size=10, poll=0.05, backoff=Backoff(initial=1, jitter=0)
        )
        await bus.publish_batch(make_events(3))
        await eventually(lambda: consumer.stats.retried == 1)
        assert consumer.stats.last_error == "first one broke"
        await self.advance(clock, 2)
        await eventually(lambda: consumer.stats.succeeded == 3)
        assert batches[1:] == [[0]]

    async def test_consumer_pattern_acks_unwanted(self, bus: EventBus) -> None:
        seen: list[str] = []

        async def handler(event: Event) -> None:
            seen.append(event.type)

        consumer = await bus.consume("picky", handler, TypeIs("keep"), poll=0.05)
        await bus.publish_batch(make_events(3, type="drop") + make_events(2, type="keep"))
        await eventually(lambda: consumer.stats.succeeded == 2 and consumer.stats.filtered_out == 3)
        assert seen == ["keep", "keep"]
        assert (
            await bus.backend.receive("picky", "x", max_count=10, visibility_timeout=1, wait=0)
            == []
        )

    async def test_stopped_consumer_leaves_delivery_for_others(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        started = anyio.Event()

        async def stuck(event: Event) -> None:
            started.set()
            await anyio.sleep_forever()

        first = await bus.consume(
            "handover", stuck, poll=0.05, visibility_timeout=30, handler_timeout=1000
        )
        await bus.publish(make_events(1)[0])
        with anyio.fail_after(10):
            await started.wait()
        await first.aclose()
        got: list[Event] = []

        async def ok(event: Event) -> None:
            got.append(event)

        await bus.consume("handover", ok, poll=0.05)
        await anyio.sleep(0.1)
        assert got == []  # still invisible
        await self.advance(clock, 31)
        await eventually(lambda: len(got) == 1)

    # -- cancellation and closing --------------------------------------------------------

    async def test_blocked_receive_is_cancellable(self, bus: EventBus) -> None:
        await bus.create_group("idle")
        with anyio.fail_after(5):
            with anyio.move_on_after(0.1) as scope:
                await bus.backend.receive("idle", "c", max_count=1, visibility_timeout=1, wait=3600)
        assert scope.cancelled_caught

    async def test_blocked_read_is_cancellable(self, bus: EventBus) -> None:
        last = await bus.backend.last_position()
        with anyio.fail_after(5):
            with anyio.move_on_after(0.1) as scope:
                await bus.backend.read(last, limit=1, wait=3600)
        assert scope.cancelled_caught

    async def test_blocked_read_wakes_on_append(self, bus: EventBus) -> None:
        position = await bus.publish(make_events(1)[0])
        got = []
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                got.extend(await bus.backend.read(position, limit=10, wait=3600))

            tg.start_soon(reader)
            await anyio.sleep(0.05)
            await bus.publish(make_events(1, start=1)[0])
        assert [e.event.data["n"] for e in got] == [1]

    async def test_double_aclose_and_use_after_close(self, clock: ManualClock) -> None:
        backend = await self.make_backend(clock)
        bus = EventBus(backend)
        async with bus:
            await bus.publish(make_events(1)[0])
        await bus.aclose()
        await backend.aclose()
        with pytest.raises(BusClosed):
            await bus.publish(make_events(1)[0])
        with pytest.raises(BusClosed):
            await backend.append(make_events(1))

    # == positions carry the log's epoch (SPEC-7, bug 2) ================================
    # One block, kept apart from the rest of the suite on purpose: the subscription
    # work added it, and it moves as a whole into the EventLog role's suite.

    def position_beyond(self, position: str) -> str:
        """Return a well-formed position of the same epoch after the end of the log.

        ``position`` is the newest position of the log. The default understands the
        local parts of the memory (``"42"``) and Redis (``"1700000000000-0"``)
        backends; override it for another form.
        """
        epoch, _, local = position.partition(":")
        head, dash, seq = local.rpartition("-")
        if dash:
            return f"{epoch}:{head}-{int(seq) + 1000}"
        return f"{epoch}:{int(local) + 1000}"

    async def test_positions_carry_the_epoch_of_the_log(self, bus: EventBus) -> None:
        positions = await bus.publish_batch(make_events(3))
        epochs = {p.partition(":")[0] for p in positions}
        assert len(epochs) == 1
        (epoch,) = epochs
        assert epoch
        assert all(p.count(":") >= 1 and p.partition(":")[2] for p in positions)
        assert await bus.backend.last_position() == positions[-1]
        entries = await bus.backend.read(None, limit=10)
        assert [e.position for e in entries] == positions
        await bus.create_group("epoch")
        await bus.create_group("epoch-all", start="earliest")
        (delivery, *_) = await bus.backend.receive(
            "epoch-all", "c", max_count=10, visibility_timeout=30, wait=0
        )
        assert delivery.position == positions[0]

    async def test_a_position_of_another_incarnation_is_stale(
        self, bus: EventBus, clock: ManualClock
    ) -> None:
        # The log restarted (a new memory bus; deleted Redis keys): positions start
        # again, and an old one must not silently skip the new log's events.
        old = await bus.publish_batch(make_events(20))
        async with EventBus(await self.make_backend(clock)) as restarted:
            fresh = await restarted.publish_batch(make_events(3))
            epoch = fresh[0].partition(":")[0]
            assert old[0].partition(":")[0] != epoch
            for stale in (old[0], old[-1]):
                with pytest.raises(StalePosition) as info:
                    restarted.backend.sort_key(stale)
                assert info.value.epoch == epoch
                assert info.value.position == stale
                with pytest.raises(StalePosition):
                    await restarted.backend.read(stale, limit=10)
                with pytest.raises(ResyncRequired):  # what a resuming client catches
                    async with restarted.subscribe(since=stale):
                        pass  # pragma: no cover - entering raises

    async def test_a_position_beyond_the_end_of_the_log_is_invalid(self, bus: EventBus) -> None:
        positions = await bus.publish_batch(make_events(3))
        beyond = self.position_beyond(positions[-1])
        with pytest.raises(InvalidPosition, match="not beyond the end of the log"):
            bus.backend.sort_key(beyond)
        with pytest.raises(InvalidPosition, match="not beyond the end of the log"):
            await bus.backend.read(beyond, limit=10)
        with pytest.raises(InvalidPosition, match="not beyond the end of the log"):
            async with bus.subscribe(since=beyond):
                pass  # pragma: no cover - entering raises
        async with bus.subscribe(since=positions[-1]) as sub:  # the end itself is fine
            late = make_events(1, start=3)[0]
            await bus.publish(late)
            assert await sub.receive() == late

    async def test_malformed_positions_are_invalid(self, bus: EventBus) -> None:
        await bus.publish_batch(make_events(2))
        for bad in ("", "42", ":", "no-epoch-here", "epoch:", "a:b:c:d"):
            with pytest.raises(InvalidPosition):
                bus.backend.sort_key(bad)
            with pytest.raises(InvalidPosition):
                await bus.backend.read(bad, limit=1)
