"""The public conformance suite of the :class:`~eventpatterns.realtime.Presence` contract.

Subclass :class:`PresenceSuite` once per implementation and implement
:meth:`~PresenceSuite.make_presence`; pytest collects the inherited tests.
``MemoryPresence`` and ``RedisPresence`` run exactly these tests, and so can yours::

    class TestMyPresence(PresenceSuite):
        async def make_presence(self, clock, *, ttl=10.0, sweep_interval=1.0,
                                max_info_size=4096):
            return MyPresence(clock=clock, ttl=ttl, ...)

An implementation shared by several processes also overrides :meth:`make_peer`, so
that the tests of "another gateway process" run against a second, separately
connected instance.

To tell that something emitted *no* event, the tests make a marker change afterwards
and check that the marker's event is the next one (events of a channel arrive in the
order the changes were applied), rather than waiting for nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.abc
import pytest

from ..errors import ArgumentTypeError, BusClosed, ConfigurationError, LimitExceeded
from ..realtime import Presence, PresenceEvent
from ._clock import ManualClock
from ._suite_base import SuiteBase, close

__all__ = ["PresenceSuite"]


async def next_event(events: AsyncIterator[PresenceEvent]) -> PresenceEvent:
    """Return the next event, failing the test if none comes within 10 s."""
    with anyio.fail_after(10):
        return await events.__anext__()


def joined(channel: str, member: str, connection: str, **info: Any) -> PresenceEvent:
    return PresenceEvent("join", channel, member, connection, info)


def left(channel: str, member: str, connection: str, *, expired: bool = False) -> PresenceEvent:
    return PresenceEvent("leave", channel, member, connection, {}, expired)


class PresenceSuite(SuiteBase):
    """Conformance tests every :class:`~eventpatterns.realtime.Presence` must pass.

    Runs each test per async library in ``anyio_backends``, with a
    :class:`ManualClock` that deadlines and the background sweeper must follow.
    """

    async def make_presence(
        self,
        clock: ManualClock,
        *,
        ttl: float = 10.0,
        sweep_interval: float = 1.0,
        max_info_size: int = 4096,
    ) -> Presence:
        """Return a fresh, empty presence reading time from ``clock``.

        It must also be an async context manager that runs a background sweeper
        (every ``sweep_interval`` seconds of ``clock``) while entered, and have an
        ``aclose()``.

        Args:
            clock: The test's clock; deadlines and the sweeper follow it.
            ttl: The default TTL of a membership.
            sweep_interval: Seconds between the background sweeper's sweeps.
            max_info_size: Largest ``info`` accepted, in bytes of JSON.
        """
        raise NotImplementedError("subclasses return their presence here")

    async def make_peer(self, presence: Presence, clock: ManualClock) -> Presence:
        """Return another handle on ``presence``'s state, as another process would have.

        The default returns ``presence`` itself (an in-process implementation); a
        shared one returns a new instance with its own connections. The suite closes
        what this returns (closing ``presence`` itself twice is fine).
        """
        return presence

    @pytest.fixture
    async def presence(self, clock: ManualClock) -> AsyncIterator[Presence]:
        presence = await self.make_presence(clock)
        yield presence
        await close(presence)

    @pytest.fixture
    async def peer(self, presence: Presence, clock: ManualClock) -> AsyncIterator[Presence]:
        peer = await self.make_peer(presence, clock)
        yield peer
        await close(peer)

    # -- membership ------------------------------------------------------------------------

    async def test_implements_the_protocol(self, presence: Presence) -> None:
        assert isinstance(presence, Presence)

    async def test_join_lists_the_member_with_its_info(self, presence: Presence) -> None:
        async with presence.events("room") as events:
            assert await presence.join("room", "alice", connection="c1", info={"tab": 1})
            assert await next_event(events) == joined("room", "alice", "c1", tab=1)
        assert await presence.members("room") == {"alice": {"c1": {"tab": 1}}}
        assert await presence.count("room") == 1
        assert await presence.members("other") == {}
        assert await presence.count("other") == 0

    async def test_a_member_with_two_connections_joins_and_leaves_once(
        self, presence: Presence
    ) -> None:
        async with presence.events("room") as events:
            assert await presence.join("room", "alice", connection="tab1", info={"n": 1})
            assert not await presence.join("room", "alice", connection="tab2", info={"n": 2})
            assert await presence.members("room") == {"alice": {"tab1": {"n": 1}, "tab2": {"n": 2}}}
            assert await presence.count("room") == 1  # members, not connections
            assert not await presence.leave("room", "alice", connection="tab1")
            assert await presence.members("room") == {"alice": {"tab2": {"n": 2}}}
            assert await presence.leave("room", "alice", connection="tab2")
            assert await next_event(events) == joined("room", "alice", "tab1", n=1)
            # Nothing for tab2's join nor tab1's leave: the next event is the last leave.
            assert await next_event(events) == PresenceEvent(
                "leave", "room", "alice", "tab2", {"n": 2}
            )
        assert await presence.count("room") == 0

    async def test_joining_again_updates_info_without_an_event(self, presence: Presence) -> None:
        async with presence.events("room") as events:
            assert await presence.join("room", "alice", connection="c1", info={"v": 1})
            assert not await presence.join("room", "alice", connection="c1", info={"v": 2})
            assert await presence.members("room") == {"alice": {"c1": {"v": 2}}}
            await presence.join("room", "marker", connection="m")
            assert await next_event(events) == joined("room", "alice", "c1", v=1)
            assert await next_event(events) == joined("room", "marker", "m")

    async def test_leaving_what_was_not_joined_is_a_no_op(self, presence: Presence) -> None:
        await presence.join("room", "alice", connection="c1")
        async with presence.events("room") as events:
            assert not await presence.leave("room", "bob", connection="c1")
            assert not await presence.leave("room", "alice", connection="c2")
            assert not await presence.leave("elsewhere", "alice", connection="c1")
            assert await presence.leave_all("unknown") == 0
            assert await presence.leave("room", "alice", connection="c1")
            assert not await presence.leave("room", "alice", connection="c1")  # twice
            assert await next_event(events) == left("room", "alice", "c1")

    async def test_leave_all_leaves_every_channel_of_a_connection(self, presence: Presence) -> None:
        for channel in ("a", "b", "c"):
            await presence.join(channel, "alice", connection="c1")
        await presence.join("b", "alice", connection="c2")  # still there on another tab
        await presence.join("c", "bob", connection="c3")
        async with presence.events("a") as a, presence.events("b") as b:
            assert await presence.leave_all("c1") == 2  # a and c; b keeps c2
            assert await next_event(a) == left("a", "alice", "c1")
            await presence.join("b", "marker", connection="m")
            assert await next_event(b) == joined("b", "marker", "m")
        assert await presence.members("a") == {}
        assert await presence.members("b") == {"alice": {"c2": {}}, "marker": {"m": {}}}
        assert await presence.members("c") == {"bob": {"c3": {}}}
        assert await presence.heartbeat("c1") == 0

    async def test_events_are_per_channel_and_in_order(self, presence: Presence) -> None:
        async with presence.events("a") as events:
            await presence.join("b", "x", connection="c1")
            await presence.join("a", "alice", connection="c1")
            await presence.leave_all("c1")
            await presence.join("a", "alice", connection="c2")
            got = [await next_event(events) for _ in range(3)]
        assert got == [
            joined("a", "alice", "c1"),
            left("a", "alice", "c1"),
            joined("a", "alice", "c2"),
        ]

    async def test_several_listeners_each_get_every_event(self, presence: Presence) -> None:
        async with presence.events("room") as one, presence.events("room") as two:
            await presence.join("room", "alice", connection="c1")
            assert await next_event(one) == await next_event(two) == joined("room", "alice", "c1")

    async def test_info_round_trips_through_json(self, presence: Presence) -> None:
        info = {"name": "Zoë ✓", "tags": ("a", "b"), "n": 1.5, "ok": True, "none": None}
        await presence.join("room", "alice", connection="c1", info=info)
        members = await presence.members("room")
        assert members["alice"]["c1"] == {
            "name": "Zoë ✓", "tags": ["a", "b"], "n": 1.5, "ok": True, "none": None
        }  # fmt: skip

    async def test_names_at_the_limits_are_accepted(self, presence: Presence) -> None:
        channel = "a" * 200
        member = "auth0|user@example.com 🙂" + "m" * 230
        connection = "gw-1:" + "c" * 123
        assert await presence.join(channel, member, connection=connection)
        assert await presence.members(channel) == {member: {connection: {}}}
        assert await presence.join("tenant/room_1.x:y@z+w=v-u", "ü", connection="c")

    async def test_many_members_join_concurrently(self, presence: Presence) -> None:

        async def join(i: int) -> None:
            await presence.join("room", f"u{i % 20}", connection=f"c{i}")

        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(join, i)
        assert await presence.count("room") == 20
        members = await presence.members("room")
        assert {m: len(c) for m, c in members.items()} == {f"u{i}": 2 for i in range(20)}

    # -- expiry ----------------------------------------------------------------------------

    async def test_a_connection_expires_after_its_ttl(
        self, presence: Presence, clock: ManualClock
    ) -> None:
        await presence.join("room", "alice", connection="c1", ttl=5)
        await self.advance(clock, 4.9)
        assert await presence.count("room") == 1
        async with presence.events("room") as events:
            await self.advance(clock, 0.2)
            assert await presence.members("room") == {}  # never listed past its deadline
            assert await next_event(events) == left("room", "alice", "c1", expired=True)
            assert await presence.expire() == 0  # already swept, by members()
            await presence.join("room", "marker", connection="m")
            assert await next_event(events) == joined("room", "marker", "m")
        assert await presence.heartbeat("c1") == 0  # expired: join again

    async def test_heartbeat_extends_every_membership_of_the_connection(
        self, presence: Presence, clock: ManualClock
    ) -> None:
        await presence.join("a", "alice", connection="c1", ttl=10)
        await presence.join("b", "alice", connection="c1", ttl=10)
        await presence.join("a", "bob", connection="c2", ttl=10)
        for _ in range(3):
            await self.advance(clock, 8)
            assert await presence.heartbeat("c1", ttl=10) == 2
        assert await presence.members("a") == {"alice": {"c1": {}}}  # bob expired
        assert await presence.count("b") == 1
        await self.advance(clock, 10.5)
        assert await presence.expire() == 2
        assert await presence.count("a") == await presence.count("b") == 0

    async def test_default_ttl_applies_to_join_and_heartbeat(self, clock: ManualClock) -> None:
        presence = await self.make_presence(clock, ttl=3)
        try:
            await presence.join("room", "alice", connection="c1")
            await self.advance(clock, 2)
            assert await presence.heartbeat("c1") == 1
            await self.advance(clock, 2)
            assert await presence.count("room") == 1
            await self.advance(clock, 1.5)
            assert await presence.count("room") == 0
        finally:
            await close(presence)

    async def test_one_expired_tab_of_two_is_not_a_leave(
        self, presence: Presence, clock: ManualClock
    ) -> None:
        await presence.join("room", "alice", connection="old", ttl=5)
        await presence.join("room", "alice", connection="new", ttl=50)
        async with presence.events("room") as events:
            await self.advance(clock, 6)
            assert await presence.expire() == 0
            assert await presence.members("room") == {"alice": {"new": {}}}
            await presence.join("room", "marker", connection="m")
            assert await next_event(events) == joined("room", "marker", "m")

    async def test_expire_emits_each_leave_once(
        self, presence: Presence, clock: ManualClock
    ) -> None:
        for i in range(5):
            await presence.join("room", f"u{i}", connection=f"c{i}", ttl=1 + i)
        async with presence.events("room") as events:
            await self.advance(clock, 3.5)  # u0, u1, u2 are past their deadline
            assert await presence.expire() == 3
            assert await presence.expire() == 0
            got = {(await next_event(events)).member for _ in range(3)}
            assert got == {"u0", "u1", "u2"}
            await presence.join("room", "marker", connection="m")
            assert await next_event(events) == joined("room", "marker", "m")
        assert set(await presence.members("room")) == {"u3", "u4", "marker"}

    async def test_expiry_is_applied_before_a_later_change(
        self, presence: Presence, clock: ManualClock
    ) -> None:
        await presence.join("room", "alice", connection="c1", ttl=5)
        async with presence.events("room") as events:
            await self.advance(clock, 6)
            # The old connection expires first, so this is a new join, not a 2nd tab.
            assert await presence.join("room", "alice", connection="c2")
            assert await next_event(events) == left("room", "alice", "c1", expired=True)
            assert await next_event(events) == joined("room", "alice", "c2")

    async def test_the_background_sweeper_expires_without_any_call(
        self, clock: ManualClock
    ) -> None:
        presence: Any = await self.make_presence(clock, sweep_interval=1)
        async with presence:
            await presence.join("room", "alice", connection="c1", ttl=5)
            async with presence.events("room") as events:
                for _ in range(7):  # the sweeper sleeps on the clock: wake it
                    await self.advance(clock, 1)
                    await anyio.wait_all_tasks_blocked()
                assert await next_event(events) == left("room", "alice", "c1", expired=True)

    # -- several processes -----------------------------------------------------------------

    async def test_peers_agree_on_members(self, presence: Presence, peer: Presence) -> None:
        await presence.join("room", "alice", connection="gw1-c1", info={"gw": 1})
        await peer.join("room", "alice", connection="gw2-c1", info={"gw": 2})
        await peer.join("room", "bob", connection="gw2-c2")
        expected = {"alice": {"gw1-c1": {"gw": 1}, "gw2-c1": {"gw": 2}}, "bob": {"gw2-c2": {}}}
        assert await presence.members("room") == await peer.members("room") == expected
        assert await presence.count("room") == await peer.count("room") == 2
        assert not await presence.leave("room", "alice", connection="gw1-c1")
        assert await peer.members("room") == {"alice": {"gw2-c1": {"gw": 2}}, "bob": {"gw2-c2": {}}}

    async def test_listeners_of_every_peer_see_each_change_once(
        self, presence: Presence, peer: Presence, clock: ManualClock
    ) -> None:
        await presence.join("room", "alice", connection="c1", ttl=5)
        async with presence.events("room") as mine, peer.events("room") as theirs:
            await self.advance(clock, 6)
            # Both sweep at once; the expired connection is removed by one of them.
            counts: list[int] = []

            async def sweep(handle: Presence) -> None:
                counts.append(await handle.expire())

            async with anyio.create_task_group() as tg:
                for handle in (presence, peer, presence, peer):
                    tg.start_soon(sweep, handle)
            assert sum(counts) == 1
            await peer.join("room", "marker", connection="m")
            for events in (mine, theirs):
                assert await next_event(events) == left("room", "alice", "c1", expired=True)
                assert await next_event(events) == joined("room", "marker", "m")

    async def test_a_peer_heartbeat_keeps_a_connection(
        self, presence: Presence, peer: Presence, clock: ManualClock
    ) -> None:
        await presence.join("room", "alice", connection="c1", ttl=5)
        await self.advance(clock, 4)
        assert await peer.heartbeat("c1", ttl=5) == 1
        await self.advance(clock, 4)
        assert await presence.expire() == 0
        assert await peer.leave_all("c1") == 1
        assert await presence.count("room") == 0

    # -- bad input -------------------------------------------------------------------------

    @pytest.mark.parametrize(
        "channel", ["", "a" * 201, "room 1", "room\n", "{room}", "röom", "a#b", "*"]
    )
    async def test_bad_channels_are_refused(self, presence: Presence, channel: str) -> None:
        with pytest.raises(ConfigurationError, match="presence channel must be"):
            await presence.join(channel, "alice", connection="c1")
        for call in (presence.members, presence.count):
            with pytest.raises(ConfigurationError):
                await call(channel)
        with pytest.raises(ConfigurationError):
            await presence.leave(channel, "alice", connection="c1")
        with pytest.raises(ConfigurationError):
            presence.events(channel)

    @pytest.mark.parametrize("name", ["", "x" * 257, "line\nbreak", "tab\there", "nul\x00"])
    async def test_bad_members_are_refused(self, presence: Presence, name: str) -> None:
        with pytest.raises(ConfigurationError, match="presence member must be 1-256"):
            await presence.join("room", name, connection="c1")
        with pytest.raises(ConfigurationError):
            await presence.leave("room", name, connection="c1")
        assert await presence.members("room") == {}

    @pytest.mark.parametrize("name", ["", "x" * 129, "a\nb", "\x7f"])
    async def test_bad_connections_are_refused(self, presence: Presence, name: str) -> None:
        with pytest.raises(ConfigurationError, match="presence connection must be 1-128"):
            await presence.join("room", "alice", connection=name)
        for call in (presence.leave_all, presence.heartbeat):
            with pytest.raises(ConfigurationError):
                await call(name)

    async def test_names_of_the_wrong_type_are_refused(self, presence: Presence) -> None:
        bad: Any = 42
        with pytest.raises(ArgumentTypeError, match="'channel' takes a str, got int"):
            await presence.join(bad, "alice", connection="c1")
        with pytest.raises(ArgumentTypeError, match="'member'"):
            await presence.join("room", bad, connection="c1")
        with pytest.raises(ArgumentTypeError, match="'connection'"):
            await presence.leave_all(bad)
        with pytest.raises(ArgumentTypeError):
            presence.events(bad)

    async def test_bad_info_is_refused(self, presence: Presence) -> None:
        bad: Any
        for bad in (["a list"], "text", {"x": object()}, {"n": float("nan")}):
            with pytest.raises(ArgumentTypeError, match="'info'"):
                await presence.join("room", "alice", connection="c1", info=bad)
        assert await presence.members("room") == {}

    async def test_info_size_is_bounded(self, clock: ManualClock) -> None:
        presence = await self.make_presence(clock, max_info_size=100)
        try:
            fits = {"k": "x" * 92}  # {"k":"..."} is 100 bytes
            assert await presence.join("room", "alice", connection="c1", info=fits)
            with pytest.raises(LimitExceeded, match="101 bytes") as info:
                await presence.join("room", "bob", connection="c2", info={"k": "x" * 93})
            assert (info.value.limit, info.value.value) == ("max_info_size", 100)
            with pytest.raises(LimitExceeded):  # bytes, not characters
                await presence.join("room", "bob", connection="c2", info={"k": "é" * 47})
            assert set(await presence.members("room")) == {"alice"}
        finally:
            await close(presence)

    @pytest.mark.parametrize("ttl", [0, -1, float("inf"), float("nan")])
    async def test_bad_ttls_are_refused(self, presence: Presence, ttl: float) -> None:
        with pytest.raises(ConfigurationError, match="ttl must be"):
            await presence.join("room", "alice", connection="c1", ttl=ttl)
        with pytest.raises(ConfigurationError, match="ttl must be"):
            await presence.heartbeat("c1", ttl=ttl)
        bad: Any = "10"
        with pytest.raises(ArgumentTypeError):
            await presence.join("room", "alice", connection="c1", ttl=bad)
        assert await presence.count("room") == 0

    # -- closing ---------------------------------------------------------------------------

    async def test_aclose_ends_listeners_and_later_calls_raise(self, clock: ManualClock) -> None:
        presence: Any = await self.make_presence(clock)
        async with presence.events("room") as events:
            await presence.join("room", "alice", connection="c1")
            assert await next_event(events) == joined("room", "alice", "c1")
            await presence.aclose()
            with anyio.fail_after(10), pytest.raises(StopAsyncIteration):
                await events.__anext__()
        await presence.aclose()  # idempotent
        with pytest.raises(BusClosed):
            await presence.join("room", "alice", connection="c1")
        with pytest.raises(BusClosed):
            await presence.expire()
        with pytest.raises(BusClosed):
            async with presence.events("room"):
                pass  # pragma: no cover - entering raises

    async def test_aclose_wakes_a_blocked_listener(self, clock: ManualClock) -> None:
        presence: Any = await self.make_presence(clock)
        ended = anyio.Event()
        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:

                async def listen(*, task_status: anyio.abc.TaskStatus[None]) -> None:
                    async with presence.events("room") as events:
                        task_status.started()
                        async for _ in events:
                            pass  # pragma: no cover - nothing is published
                    ended.set()

                await tg.start(listen)
                await anyio.wait_all_tasks_blocked()
                await presence.aclose()
        assert ended.is_set()

    async def test_leaving_the_context_stops_the_sweeper(self, clock: ManualClock) -> None:
        presence: Any = await self.make_presence(clock, sweep_interval=1)
        async with presence:
            await presence.join("room", "alice", connection="c1")
        with pytest.raises(BusClosed):
            await presence.count("room")
