"""The EventBus façade: its errors, the shared reader's recovery, replay under pressure."""

from __future__ import annotations

from collections import deque

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventpatterns import Event, EventBus, Gap
from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.bus import EARLIEST, LogEntry, Position
from eventpatterns.bus._matching import event_view
from eventpatterns.errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    InvalidPattern,
    SubscriberOverflow,
)
from eventpatterns.testing import ManualClock, eventually, make_events


@st.composite
def event_strategy(draw: st.DrawFn) -> Event:
    json_value = st.recursive(
        st.none() | st.booleans() | st.integers(-1000, 1000) | st.text("ab\u00e9", max_size=5),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text("xy", max_size=3), inner, max_size=3)
        ),
        max_leaves=5,
    )
    return Event(
        type=draw(st.sampled_from(["a", "b.c"])),
        source="/s",
        subject=draw(st.none() | st.just("subj")),
        data=draw(st.none() | st.binary(max_size=5) | json_value),
        extensions=draw(
            st.dictionaries(
                st.sampled_from(["tenant", "partitionkey"]), st.text("abc", min_size=1, max_size=3)
            )
        ),
    )


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
    with pytest.raises(RuntimeError, match="async context manager"):
        await bus.publish(make_events(1)[0])
    async with bus:
        with pytest.raises(RuntimeError, match="entered only once"):
            await bus.__aenter__()
    with pytest.raises(BusClosed):
        await bus.publish(make_events(1)[0])
    with pytest.raises(BusClosed):
        bus.subscribe()


async def test_publish_rejects_what_is_not_an_event() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(TypeError, match="publish\\(\\) takes an Event, got dict"):
            await bus.publish({"type": "x"})  # type: ignore[arg-type]
        good = make_events(1)[0]
        with pytest.raises(TypeError, match="item 1 is str"):
            await bus.publish_batch([good, "nope"])  # type: ignore[list-item]
        assert await bus.backend.read(None, limit=10) == []  # nothing of the bad batch landed
        assert await bus.publish_batch([]) == []


async def test_subscribe_validates_its_arguments() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(ConfigurationError, match="pattern must be a dict"):
            bus.subscribe(42)  # type: ignore[arg-type]
        with pytest.raises(InvalidPattern, match=r"\$\.type"):
            bus.subscribe({"type": "not-an-array"})
        with pytest.raises(ConfigurationError, match="buffer must be at least 1"):
            bus.subscribe(buffer=0)
        with pytest.raises(ConfigurationError, match="overflow must be"):
            bus.subscribe(overflow="block")  # type: ignore[arg-type]
        sub = bus.subscribe()
        with pytest.raises(RuntimeError, match="enter the subscription first"):
            await sub.__anext__()
        async with sub:
            with pytest.raises(RuntimeError, match="entered only once"):
                await sub.__aenter__()


# -- the shared reader ------------------------------------------------------------------


class FlakyBackend(MemoryBusBackend):
    """The memory backend, whose reads fail while ``down`` is set (an injected fault)."""

    down = False

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        if self.down:
            self.failed_reads = getattr(self, "failed_reads", 0) + 1
            await anyio.lowlevel.checkpoint()
            raise BackendUnavailable("injected: connection refused")
        return await super().read(after, limit=limit, wait=wait)


async def test_reader_survives_an_unavailable_backend_without_gap() -> None:
    backend = FlakyBackend()
    events = make_events(20)
    async with EventBus(backend) as bus, bus.subscribe() as sub:
        await bus.publish_batch(events[:5])
        first = [await sub.__anext__() for _ in range(5)]
        backend.down = True
        await bus.publish_batch(events[5:])
        await eventually(lambda: getattr(backend, "failed_reads", 0) >= 2)
        backend.down = False
        rest = [await sub.__anext__() for _ in range(15)]
    assert first + rest == events


async def test_reader_behind_retention_signals_unknown_gap() -> None:
    events = make_events(50)
    async with (
        EventBus(MemoryBusBackend(max_entries=10)) as bus,
        bus.subscribe() as sub,
        bus.subscribe(overflow="disconnect") as strict,
    ):
        await bus.publish_batch(events)  # 40 are trimmed before the reader runs
        gap = await sub.__anext__()
        rest = [await sub.__anext__() for _ in range(10)]
        with pytest.raises(SubscriberOverflow):
            await strict.__anext__()
    assert gap == Gap(None, None)
    assert rest == events[40:]


async def test_replay_with_a_tiny_buffer_still_has_no_gap() -> None:
    events = make_events(120)
    async with EventBus.from_url("memory://") as bus:
        await bus.publish_batch(events[:60])
        async with bus.subscribe(since=EARLIEST, buffer=3) as sub:
            got = [await sub.__anext__() for _ in range(10)]
            # A burst far larger than the buffer arrives while the replay is running:
            # the live buffer overflows, but those events are still in the log.
            await bus.publish_batch(events[60:])
            await eventually(lambda: sub._replay_dropped)
            got += [await sub.__anext__() for _ in range(110)]
            extra = make_events(1, start=120)[0]
            await bus.publish(extra)
            assert await sub.__anext__() == extra
            assert sub.dropped == 0
    assert got == events


async def test_subscribers_with_equal_patterns_share_one_matcher() -> None:
    async with EventBus.from_url("memory://") as bus:
        a = bus.subscribe({"type": ["x"], "source": ["/s"]})
        b = bus.subscribe({"source": ["/s"], "type": ["x"]})
        c = bus.subscribe({"type": ["y"]})
        assert a._matcher is b._matcher
        assert a._matcher is not c._matcher


def test_manual_clock_rules() -> None:
    clock = ManualClock(start=10)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    clock.advance(0.5)
    assert clock.time() == 10.5


@given(
    event_strategy(),
    st.sets(
        st.sampled_from(
            [
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
        )
    ),
)
def test_event_view_is_the_json_form_restricted_to_keys(event: Event, keys: set[str]) -> None:
    full = event.to_dict()
    assert event_view(event, frozenset(keys)) == {k: v for k, v in full.items() if k in keys}


async def test_many_distinct_patterns_use_the_shared_index() -> None:
    from eventpatterns.bus._hub import INDEX_THRESHOLD

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
            assert await sub.__anext__() == events[i]
            assert sub._buf == deque()  # exactly one event each
        assert [await everything.__anext__() for _ in range(count)] == events
        assert [await prefix.__anext__() for _ in range(3)] == events[:3]
        hub = bus._hub
        assert hub is not None
        assert len(hub._indexed) == count + 1
        for sub in subs[2:]:  # unsubscribing removes their patterns from the index
            await sub.aclose()
        await bus.publish(make_events(1, start=1)[0])
        await eventually(lambda: len(everything._buf) == 1)
        assert hub._indexed == {}  # below the threshold again: matched one by one
        assert await subs[1].__anext__() == (await everything.__anext__())
        assert len(subs[0]._buf) == 0


async def test_closed_subscriptions_are_not_kept_by_the_bus() -> None:
    import gc

    async with EventBus.from_url("memory://") as bus:
        for _ in range(50):
            async with bus.subscribe({"type": ["x"]}):
                pass
        bus.subscribe()  # created, never entered, dropped
        gc.collect()
        assert len(bus._subs) == 0
        hub = bus._hub
        assert hub is not None
        assert hub.subs == []


async def test_aclose_inside_the_block_stops_the_bus_not_the_caller() -> None:
    got: list[Event] = []

    async def handler(event: Event) -> None:
        got.append(event)

    reached_end = False
    async with EventBus.from_url("memory://") as bus:
        consumer = await bus.consume("c", handler)
        sub = bus.subscribe()
        await sub.__aenter__()
        await bus.publish(make_events(1)[0])
        await eventually(lambda: len(got) == 1)
        await bus.aclose()
        await anyio.sleep(0.05)  # a checkpoint: the caller must not be cancelled here
        with pytest.raises(BusClosed):
            await bus.publish(make_events(1)[0])
        assert [await sub.__anext__()]  # what was buffered is still delivered
        with pytest.raises(StopAsyncIteration):
            await sub.__anext__()
        await consumer.aclose()  # already stopped: returns at once
        reached_end = True
    assert reached_end
