"""Subscriptions and the bus's lifecycle: receive(), gaps, closing, the shared reader."""

from __future__ import annotations

import sys
from collections.abc import Sequence

import anyio
import anyio.lowlevel
import pytest
from anyio import wait_all_tasks_blocked
from anyio.abc import TaskGroup
from anyio.lowlevel import checkpoint
from hypothesis import given
from hypothesis import strategies as st

from eventpatterns import Event, EventBus, Gap
from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.bus import EARLIEST, LogEntry, Position, Subscription
from eventpatterns.bus._matching import event_view
from eventpatterns.bus._reader import INDEX_THRESHOLD, LogReader
from eventpatterns.errors import (
    ArgumentTypeError,
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    EventPatternsError,
    EventsMissed,
    InvalidPattern,
    InvalidPosition,
    InvalidState,
    ResyncRequired,
    StalePosition,
    SubscriberOverflow,
    SubscriptionClosed,
)
from eventpatterns.testing import eventually, make_events
from strategies import events

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


# -- construction and misuse ------------------------------------------------------------


def test_from_url_rejects_unknown_scheme() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown bus URL scheme.*memory://"):
        EventBus.from_url("kafka://localhost:9092")
    with pytest.raises(ConfigurationError, match="unknown bus URL scheme"):
        EventBus.from_url("not a url")


def test_from_url_passes_options_to_the_backend() -> None:
    bus = EventBus.from_url("memory://", max_entries=7, dedupe_window=2.0)
    assert isinstance(bus.backend, MemoryBusBackend)
    assert bus.backend.capabilities.dedupe_window == 2.0


async def test_bus_must_be_entered_and_not_reused() -> None:
    bus = EventBus.from_url("memory://")
    with pytest.raises(InvalidState, match="async context manager") as info:
        await bus.publish(make_events(1)[0])
    assert info.value.state == "new"
    assert isinstance(info.value, RuntimeError)
    async with bus:
        with pytest.raises(InvalidState, match="entered only once"):
            await bus.__aenter__()
    with pytest.raises(BusClosed):
        await bus.publish(make_events(1)[0])
    with pytest.raises(BusClosed):
        bus.subscribe()


async def test_publish_rejects_what_is_not_an_event() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(ArgumentTypeError, match=r"publish\(\) argument 'event'") as info:
            await bus.publish({"type": "x"})  # type: ignore[arg-type]
        assert isinstance(info.value, TypeError)
        assert isinstance(info.value, EventPatternsError)
        assert (info.value.argument, info.value.got) == ("event", "dict")
        good = make_events(1)[0]
        with pytest.raises(ArgumentTypeError, match=r"'events\[1\]' takes an Event, got str"):
            await bus.publish_batch([good, "nope"])  # type: ignore[list-item]
        assert await bus.backend.read(None, limit=10) == []  # nothing of the bad batch landed
        assert await bus.publish_batch([]) == []


async def test_subscribe_validates_its_arguments() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(ConfigurationError, match="pattern must be a dict"):
            bus.subscribe(42)  # type: ignore[call-overload]
        with pytest.raises(InvalidPattern, match=r"\$\.type"):
            bus.subscribe({"type": "not-an-array"})
        with pytest.raises(ConfigurationError, match="buffer must be at least 1"):
            bus.subscribe(buffer=0)
        with pytest.raises(ConfigurationError, match="overflow must be"):
            bus.subscribe(overflow="block")  # type: ignore[call-overload]
        sub = bus.subscribe()
        with pytest.raises(InvalidState, match="enter the subscription first") as info:
            await sub.receive()
        assert info.value.state == "new"
        async with sub:
            with pytest.raises(InvalidState, match="entered only once"):
                await sub.__aenter__()


async def test_pattern_with_mixed_key_types_names_the_path() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(InvalidPattern, match=r"at \$\.data: object keys must be strings"):
            bus.subscribe({"data": {1: ["x"], "b": ["y"]}})
        with pytest.raises(InvalidPattern, match=r"at \$: object keys must be strings"):
            bus.subscribe({2: ["x"]})  # type: ignore[dict-item]


async def test_subscribers_with_equal_patterns_share_one_matcher() -> None:
    async with EventBus.from_url("memory://") as bus:
        a = bus.subscribe({"type": ["x"], "source": ["/s"]})
        b = bus.subscribe({"source": ["/s"], "type": ["x"]})
        c = bus.subscribe({"type": ["y"]})
        assert a._tap.matcher is b._tap.matcher
        assert a._tap.matcher is not c._tap.matcher


# -- receive(), iteration, gaps ---------------------------------------------------------


async def test_iteration_is_typed_event_and_a_gap_raises_events_missed() -> None:
    events = make_events(10)
    async with EventBus.from_url("memory://") as bus, bus.subscribe(buffer=3) as sub:
        await bus.publish_batch(events)
        await eventually(lambda: sub.missed == 7)
        got: list[Event] = []

        async def loop() -> None:
            async for event in sub:
                got.append(event)  # pragma: no cover - the gap comes first

        with pytest.raises(EventsMissed) as info:
            await loop()
        assert (info.value.missed, info.value.after) == (7, None)
        async for event in sub:  # still usable after the gap
            got.append(event)
            if len(got) == 3:
                break
    assert got == events[7:]


async def test_items_yields_gaps_in_band_where_they_happened() -> None:
    events = make_events(8)
    async with EventBus.from_url("memory://") as bus, bus.subscribe(buffer=3) as sub:
        first = await bus.publish(events[0])
        assert await sub.receive() == events[0]
        await bus.publish_batch(events[1:])
        await eventually(lambda: sub.missed == 4)
        items: list[Event | Gap] = []
        async for item in sub.items():
            items.append(item)
            if len(items) == 4:
                break
    assert items == [Gap(4, first), *events[5:]]


async def test_closing_the_subscription_ends_receive_at_once() -> None:
    async with EventBus.from_url("memory://") as bus:
        sub = bus.subscribe()
        async with sub:
            await bus.publish_batch(make_events(3))
            await eventually(lambda: len(sub._merge.buffer) == 3)
        with pytest.raises(SubscriptionClosed) as info:
            await sub.receive()  # what it held is dropped: the owner closed it
        assert isinstance(info.value, BusClosed)
        assert [e async for e in sub] == []


async def test_aclose_from_another_task_wakes_a_waiting_receiver() -> None:
    async with EventBus.from_url("memory://") as bus, bus.subscribe() as sub:
        outcome: list[str] = []

        async def receiver() -> None:
            async for _ in sub:
                outcome.append("event")  # pragma: no cover - nothing is published
            outcome.append("ended")

        async with anyio.create_task_group() as tg:
            tg.start_soon(receiver)
            await wait_all_tasks_blocked()
            with pytest.raises(InvalidState, match="another task is already receiving"):
                await sub.receive()
            await sub.aclose()
        assert outcome == ["ended"]


async def test_nothing_is_delivered_that_does_not_match() -> None:
    async with EventBus.from_url("memory://") as bus, bus.subscribe({"type": ["keep"]}) as sub:
        await bus.publish_batch(make_events(3, type="drop"))
        marker = make_events(1, type="keep")[0]
        await bus.publish(marker)
        # A positive observation instead of sleep-then-assert-nothing: the first event
        # received is the one published after the non-matching ones.
        with anyio.fail_after(5):
            assert await sub.receive() == marker


# -- the shared reader ------------------------------------------------------------------


class FlakyBackend(MemoryBusBackend):
    """The memory backend, whose reads fail while ``down`` is set (an injected fault)."""

    down = False
    failed_reads = 0

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        if self.down:
            self.failed_reads += 1
            await checkpoint()
            raise BackendUnavailable("injected: connection refused")
        return await super().read(after, limit=limit, wait=wait)


async def test_reader_survives_an_unavailable_backend_without_gap() -> None:
    backend = FlakyBackend()
    events = make_events(20)
    async with EventBus(backend) as bus, bus.subscribe() as sub:
        await bus.publish_batch(events[:5])
        first = [await sub.receive() for _ in range(5)]
        backend.down = True
        await bus.publish_batch(events[5:])
        await eventually(lambda: backend.failed_reads >= 2)
        backend.down = False
        rest = [await sub.receive() for _ in range(15)]
    assert first + rest == events


async def test_reader_behind_retention_signals_unknown_gap() -> None:
    events = make_events(50)
    async with (
        EventBus(MemoryBusBackend(max_entries=10)) as bus,
        bus.subscribe() as sub,
        bus.subscribe(overflow="disconnect") as strict,
    ):
        await bus.publish_batch(events)  # 40 are trimmed before the reader runs
        with pytest.raises(EventsMissed) as info:
            await sub.receive()
        rest = [await sub.receive() for _ in range(10)]
        with pytest.raises(SubscriberOverflow):
            await strict.receive()
        with pytest.raises(SubscriberOverflow):  # and again: it stays disconnected
            await strict.receive()
    assert (info.value.missed, info.value.after) == (None, None)
    assert rest == events[40:]


async def test_replay_with_a_tiny_buffer_still_has_no_gap() -> None:
    events = make_events(120)
    async with EventBus.from_url("memory://") as bus:
        await bus.publish_batch(events[:60])
        async with bus.subscribe(since=EARLIEST, buffer=3) as sub:
            got = [await sub.receive() for _ in range(10)]
            # A burst far larger than the buffer arrives while the replay is running:
            # the live buffer overflows, but those events are still in the log.
            await bus.publish_batch(events[60:])
            await eventually(lambda: sub._merge._reread)
            got += [await sub.receive() for _ in range(110)]
            extra = make_events(1, start=120)[0]
            await bus.publish(extra)
            assert await sub.receive() == extra
            assert sub.missed == 0
    assert got == events


async def test_many_distinct_patterns_use_the_shared_index() -> None:
    count = INDEX_THRESHOLD + 36
    async with EventBus.from_url("memory://") as bus:
        subs = [bus.subscribe({"data": {"n": [i]}}) for i in range(count)]
        everything = bus.subscribe()
        prefix = bus.subscribe(
            {"type": [{"prefix": "test."}], "data": {"n": [{"numeric": ["<", 3]}]}}
        )
        for sub in [*subs, everything, prefix]:
            await sub.__aenter__()
        events = make_events(count)
        await bus.publish_batch(events)
        for i, sub in enumerate(subs):
            assert await sub.receive() == events[i]
            assert len(sub._merge.buffer) == 0  # exactly one event each
        assert [await everything.receive() for _ in range(count)] == events
        assert [await prefix.receive() for _ in range(3)] == events[:3]
        reader = bus._reader
        assert reader is not None
        assert len(reader._indexed) == count + 1
        for sub in subs[2:]:  # unsubscribing removes their patterns from the index
            await sub.aclose()
        await bus.publish(make_events(1, start=1)[0])
        await eventually(lambda: len(everything._merge.buffer) == 1)
        assert reader._indexed == {}  # below the threshold again: matched one by one
        assert await subs[1].receive() == (await everything.receive())
        assert len(subs[0]._merge.buffer) == 0


async def test_closed_subscriptions_are_not_kept_by_the_reader() -> None:
    async with EventBus.from_url("memory://") as bus:
        for _ in range(50):
            async with bus.subscribe({"type": ["x"]}):
                pass
        bus.subscribe()  # created, never entered, dropped
        reader = bus._reader
        assert reader is not None
        assert reader.sinks == []
        async with bus.subscribe() as open_one:
            assert reader.sinks == [open_one._tap]


async def test_a_subscription_runs_on_a_reader_without_a_bus() -> None:
    backend = MemoryBusBackend()
    events = make_events(6)
    await backend.append(events[:2])
    async with anyio.create_task_group() as tg:
        reader = LogReader(backend, tg)
        async with Subscription(reader, {"type": ["test.event"]}, since=EARLIEST) as sub:
            await backend.append(events[2:])
            got = [await sub.receive() for _ in range(6)]
            reader.close()  # what the bus does when it closes
            with pytest.raises(SubscriptionClosed):
                await sub.receive()
    assert got == events


# -- lifecycle --------------------------------------------------------------------------


async def test_aclose_inside_the_block_stops_the_bus_not_the_caller() -> None:
    reached_end = False
    async with EventBus.from_url("memory://") as bus:
        sub = bus.subscribe()
        await sub.__aenter__()
        event = make_events(1)[0]
        await bus.publish(event)
        await eventually(lambda: len(sub._merge.buffer) == 1)
        await bus.aclose()
        await checkpoint()  # the caller must not be cancelled here
        with pytest.raises(BusClosed):
            await bus.publish(make_events(1)[0])
        assert await sub.receive() == event  # what was buffered is still delivered
        with pytest.raises(SubscriptionClosed):
            await sub.receive()
        reached_end = True
    assert reached_end


@pytest.mark.parametrize(
    "error",
    [BackendUnavailable("down"), KeyError("k"), ArgumentTypeError("f", "a", expected="x", got=1)],
)
async def test_an_exception_in_the_block_comes_out_as_itself(error: Exception) -> None:
    with pytest.raises(type(error)) as info:
        async with EventBus.from_url("memory://") as bus, bus.subscribe():
            raise error
    assert info.value is error


class DownBackend(MemoryBusBackend):
    """A backend that cannot append (the network is down)."""

    async def append(self, events: Sequence[Event]) -> list[Position]:
        await checkpoint()
        raise BackendUnavailable("injected: connection refused")


async def test_a_bus_call_failing_in_the_block_comes_out_as_itself() -> None:
    with pytest.raises(BackendUnavailable, match="injected") as info:
        async with EventBus(DownBackend()) as bus, bus.subscribe():
            await bus.publish(make_events(1)[0])
    assert not isinstance(info.value, BaseExceptionGroup)


async def test_cancelling_the_block_is_not_an_error() -> None:
    with anyio.move_on_after(0.05) as scope:
        async with EventBus.from_url("memory://") as bus, bus.subscribe() as sub:
            await sub.receive()
    assert scope.cancelled_caught


class CrashingBackend(MemoryBusBackend):
    """A backend whose reads fail with an error the reader does not expect (a bug)."""

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        await checkpoint()
        raise ZeroDivisionError("a bug in the backend")


async def test_a_failing_bus_task_comes_out_as_itself_when_alone() -> None:
    with pytest.raises(ZeroDivisionError, match="a bug"):
        async with EventBus(CrashingBackend()) as bus, bus.subscribe() as sub:
            await sub.receive()


async def test_two_errors_at_once_come_out_grouped() -> None:
    async def fail_in_a_bus_task(tg: TaskGroup) -> None:
        async def crash() -> None:
            raise ZeroDivisionError("bus task")

        tg.start_soon(crash)
        await anyio.lowlevel.checkpoint()

    async def block() -> None:
        async with EventBus.from_url("memory://") as bus:
            assert bus._tg is not None
            with anyio.CancelScope(shield=True):
                await fail_in_a_bus_task(bus._tg)
                await wait_all_tasks_blocked()
            raise KeyError("block")

    with pytest.raises(BaseExceptionGroup) as info:
        await block()
    kinds = sorted(type(e).__name__ for e in info.value.exceptions)
    assert kinds == ["KeyError", "ZeroDivisionError"]


# -- the matcher's field views ----------------------------------------------------------


KEYS = [
    "id",
    "type",
    "source",
    "subject",
    "time",
    "data",
    "data_base64",
    "datacontenttype",
    "dataschema",
    "specversion",
    "tenant",
    "partitionkey",
]


@given(events(), st.sets(st.sampled_from(KEYS)))
def test_event_view_is_the_json_form_restricted_to_keys(event: Event, keys: set[str]) -> None:
    full = event.to_dict()
    assert event_view(event, frozenset(keys)) == {k: v for k, v in full.items() if k in keys}


# -- positions carry the epoch (the memory backend's part; the suite has the rest) ----------


async def test_memory_positions_carry_the_epoch_of_the_backend() -> None:
    backend = MemoryBusBackend(epoch="test")
    assert await backend.append(make_events(2)) == ["test:1", "test:2"]
    assert await backend.last_position() == "test:2"
    assert MemoryBusBackend().epoch != MemoryBusBackend().epoch  # random per instance
    with pytest.raises(StalePosition, match="its epoch is now 'test'"):
        backend.sort_key("other:1")
    with pytest.raises(InvalidPosition, match="not beyond the end"):
        await backend.read("test:3", limit=1)
    for bad in ("x:y", "", "a:b:c"):
        with pytest.raises(ConfigurationError, match="epoch must be"):
            MemoryBusBackend(epoch=bad)


async def test_a_subscription_from_before_a_restart_must_resync() -> None:
    async with EventBus(MemoryBusBackend()) as before:
        remembered = (await before.publish_batch(make_events(50)))[-1]
    async with EventBus(MemoryBusBackend()) as after:  # positions start again at 1
        await after.publish_batch(make_events(60))
        with pytest.raises(ResyncRequired):
            async with after.subscribe(since=remembered):
                pass  # pragma: no cover - entering raises


async def test_a_closed_reader_refuses_new_subscriptions() -> None:
    async with anyio.create_task_group() as tg:
        reader = LogReader(MemoryBusBackend(), tg)
        reader.close()
        sub = Subscription(reader)
        with pytest.raises(BusClosed):
            await sub.__aenter__()
        with pytest.raises(SubscriptionClosed):  # and it is closed, not half-entered
            await sub.receive()


async def test_closing_the_backend_under_the_bus_ends_its_subscriptions() -> None:
    backend = MemoryBusBackend()
    events = make_events(3)
    await backend.append(events)
    async with EventBus(backend) as bus, bus.subscribe() as live:
        assert bus._reader is not None
        async with Subscription(bus._reader, since=EARLIEST, replay_page=2) as replaying:
            assert await replaying.receive() == events[0]
            await backend.aclose()  # the reader and the replay both hear BusClosed
            assert [e async for e in live] == []
            assert await replaying.receive() == events[1]  # the page it had read
            assert [e async for e in replaying] == []  # event 2 was never read
            assert [i async for i in live.items()] == []
