"""The public conformance suite for bus backends: the three role suites, and more.

Subclass :class:`BusBackendSuite` once per backend and implement
:meth:`~BusBackendSuite.make_backend`; pytest collects the inherited tests. The
memory and Redis backends of eventpatterns run exactly these tests, and so can yours::

    class TestMyBackend(BusBackendSuite):
        async def make_backend(self, clock, *, max_entries=None, max_message_size=None):
            return MyBackend(clock=clock, ...)

It composes :class:`EventLogSuite`, :class:`ConsumerGroupSuite` and
:class:`DeadLetterSuite` (one suite per role protocol) and adds what needs the whole
backend: live subscriptions and replay through the bus's reader, positions, closing.
"""

from __future__ import annotations

import anyio
import pytest

from ..bus import EARLIEST, BusBackend, ConsumerGroups, DeadLetters, EventBus, EventLog, Gap
from ..core import Event
from ..errors import (
    BusClosed,
    EventsMissed,
    InvalidPosition,
    PositionExpired,
    ResyncRequired,
    StalePosition,
    SubscriberOverflow,
)
from ._clock import ManualClock
from ._dead_letter_suite import DeadLetterSuite
from ._group_suite import ConsumerGroupSuite
from ._helpers import TypeMatcher, eventually, make_events
from ._log_suite import EventLogSuite

__all__ = ["BusBackendSuite"]


def _in_order(backend: EventLog, got: list[Event], expected: list[Event]) -> bool:
    """``got == expected``, or the same events in any order when order is not total."""
    if backend.capabilities.ordering == "total":
        return got == expected
    return sorted(got, key=lambda e: e.id) == sorted(expected, key=lambda e: e.id)


def _require_history(backend: EventLog) -> None:
    if not backend.capabilities.history:
        pytest.skip("the backend keeps no history (capabilities.history is False)")


class BusBackendSuite(ConsumerGroupSuite, DeadLetterSuite, EventLogSuite):
    """Conformance tests every :class:`~eventpatterns.bus.BusBackend` must pass.

    Runs the tests of :class:`EventLogSuite`, :class:`ConsumerGroupSuite` and
    :class:`DeadLetterSuite`, plus those below.
    """

    async def test_backend_implements_every_role(self, backend: BusBackend) -> None:
        for role in (EventLog, ConsumerGroups, DeadLetters, BusBackend):
            assert isinstance(backend, role), f"{type(backend).__name__} is not a {role.__name__}"
        assert callable(type(backend).from_url)

    async def test_invalid_position_is_rejected(self, bus: EventBus) -> None:
        with pytest.raises(InvalidPosition):
            bus.backend.sort_key("not a position")
        with pytest.raises(InvalidPosition):
            async with bus.subscribe(since="not a position"):
                pass

    # -- live subscriptions and replay ---------------------------------------------------

    async def test_subscribe_receives_live_events_in_order(self, bus: EventBus) -> None:
        events = make_events(50)
        async with bus.subscribe() as sub:
            await bus.publish_batch(events[:20])
            for event in events[20:]:
                await bus.publish(event)
            got = [await sub.__anext__() for _ in range(50)]
        assert _in_order(bus.backend, got, events)

    async def test_subscribe_filters_on_the_server(self, bus: EventBus) -> None:
        async with bus.subscribe(TypeMatcher("wanted")) as sub:
            await bus.publish_batch(make_events(3, type="other") + make_events(2, type="wanted"))
            first = await sub.__anext__()
            second = await sub.__anext__()
        assert isinstance(first, Event)
        assert isinstance(second, Event)
        assert (first.type, second.type) == ("wanted", "wanted")

    async def test_without_history_replay_is_refused(self, bus: EventBus) -> None:
        if bus.backend.capabilities.history:
            pytest.skip("the backend keeps history (the replay tests check it)")
        positions = await bus.publish_batch(make_events(3))
        for since in (EARLIEST, positions[0], positions[-1]):
            with pytest.raises(PositionExpired):
                async with bus.subscribe(since=since):
                    pass  # pragma: no cover - entering raises

    async def test_replay_then_live_without_gap_or_duplicate(self, bus: EventBus) -> None:
        _require_history(bus.backend)
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
        _require_history(bus.backend)
        events = make_events(5)
        await bus.publish_batch(events)
        async with bus.subscribe(since=EARLIEST) as sub:
            got = [await sub.__anext__() for _ in range(5)]
            assert got == events
            assert sub.position is not None

    async def test_resume_from_subscription_position(self, bus: EventBus) -> None:
        _require_history(bus.backend)
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
        async with EventBus(await self.make_backend(clock, max_entries=10)) as bus:
            _require_history(bus.backend)
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
        if bus.backend.capabilities.ordering == "total":
            assert rest == events[15:]
        else:  # the 5 that arrived last, whichever they are
            assert len({e.id for e in rest}) == 5
            assert all(e in events for e in rest)

    async def test_slow_subscriber_disconnect_policy(self, bus: EventBus) -> None:
        events = make_events(20)
        async with bus.subscribe(buffer=5, overflow="disconnect") as sub:
            await bus.publish_batch(events)
            got = [await sub.__anext__() for _ in range(5)]
            with pytest.raises(SubscriberOverflow) as info:
                await sub.__anext__()
        if bus.backend.capabilities.ordering == "total":
            assert got == events[:5]
        else:
            assert len({e.id for e in got}) == 5
            assert all(e in events for e in got)
        assert info.value.position == sub.position

    async def test_subscription_ends_when_bus_closes(self, backend: BusBackend) -> None:
        bus = EventBus(backend)
        async with bus:
            sub = bus.subscribe()
            await sub.__aenter__()
        with pytest.raises(StopAsyncIteration):
            await sub.__anext__()

    # -- closing -------------------------------------------------------------------------

    async def test_aclose_wakes_a_blocked_receive(self, backend: BusBackend) -> None:
        await backend.create_group("g", start="latest")
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def blocked() -> None:
                    # Woken by aclose, a receive raises BusClosed (or returns [], and the
                    # next call raises it).
                    with pytest.raises(BusClosed):  # noqa: PT012
                        for wait in (3600, 0):
                            await backend.receive(
                                "g", "c", max_count=1, visibility_timeout=30, wait=wait
                            )

                tg.start_soon(blocked)
                await anyio.wait_all_tasks_blocked()
                await backend.aclose()
        with pytest.raises(BusClosed):
            await backend.group_stats("g")

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
        _require_history(bus.backend)  # the rest reads the log's history
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
        # sort_key() does no I/O, so only read() (and so subscribe) must catch this.
        with pytest.raises(InvalidPosition, match="not beyond the end of the log"):
            await bus.backend.read(beyond, limit=10)
        with pytest.raises(InvalidPosition, match="not beyond the end of the log"):
            async with bus.subscribe(since=beyond):
                pass  # pragma: no cover - entering raises
        _require_history(bus.backend)  # the rest replays from a published position
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
