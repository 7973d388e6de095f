"""The gateway feeds the Presence contract: join, heartbeat, leave, leave on disconnect."""

from __future__ import annotations

import anyio
import pytest

from eventpatterns import EventBus
from eventpatterns.realtime import Gateway, Limits, MemoryPresence, PresenceEvent
from eventpatterns.testing import ManualClock

from .conftest import client, subscribe, token_authorizer

pytestmark = pytest.mark.anyio


async def test_subscriptions_with_a_presence_channel_join_and_leave() -> None:
    clock = ManualClock(start=1000.0)
    limits = Limits(presence_ttl=30)
    async with (
        EventBus.from_url("memory://") as bus,
        MemoryPresence(clock=clock, ttl=30) as presence,
        presence.events("room:1") as changes,
        Gateway(
            bus, authorizer=token_authorizer, presence=presence, limits=limits, clock=clock
        ) as gw,
    ):
        a, ta = await client(gw, "user:alice")
        b, tb = await client(gw, "user:alice")
        bob, tbob = await client(gw, "user:bob")
        await subscribe(a, ta, "s1", presence="room:1")
        await subscribe(a, ta, "s2", presence="room:1")  # the same channel twice: one join
        await subscribe(b, tb, "s1", presence="room:1")
        await subscribe(bob, tbob, "s", presence="room:1")
        bad = await subscribe(bob, tbob, "t", presence="not a channel!")
        assert bad["code"] == "invalid_frame"
        assert "'presence'" in bad["message"]
        await anyio.wait_all_tasks_blocked()
        members = await presence.members("room:1")
        assert sorted(members) == ["alice", "bob"]
        assert sorted(members["alice"]) == sorted([a.id, b.id])
        # Heartbeats keep them present long past the TTL.
        for _ in range(20):
            clock.advance(5)
            await anyio.wait_all_tasks_blocked()
        assert await presence.count("room:1") == 2
        await a.receive('{"type":"unsubscribe","id":"s1"}')
        await anyio.wait_all_tasks_blocked()
        assert sorted((await presence.members("room:1"))["alice"]) == sorted([a.id, b.id])
        await a.receive('{"type":"unsubscribe","id":"s2"}')
        await anyio.wait_all_tasks_blocked()
        assert list((await presence.members("room:1"))["alice"]) == [b.id]
        b.disconnected()
        await bob.receive('{"type":"unsubscribe","id":"s"}')
        await anyio.wait_all_tasks_blocked()
        assert await presence.count("room:1") == 0
        seen: list[PresenceEvent] = []
        with anyio.fail_after(5):
            async for event in changes:
                seen.append(event)
                if len(seen) == 4:
                    break
        assert [(e.type, e.member, e.expired) for e in seen] == [
            ("join", "alice", False),
            ("join", "bob", False),
            ("leave", "alice", False),
            ("leave", "bob", False),
        ]
