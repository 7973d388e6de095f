"""``"watch": true``: a subscription hears its presence channel's joins and leaves."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest

from eventpatterns import EventBus
from eventpatterns.errors import Forbidden
from eventpatterns.realtime import (
    Gateway,
    Limits,
    MemoryPresence,
    Principal,
    SubscriptionAuthorizer,
    SubscriptionRequest,
)
from eventpatterns.realtime._presence import LISTENER_BUFFER
from eventpatterns.testing import ManualClock

from .conftest import client, subscribe, token_authorizer
from .transport_helpers import order

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def watched(
    clock: ManualClock, hook: SubscriptionAuthorizer | None = None, *, sweeper: bool = True
) -> AsyncIterator[tuple[Gateway, MemoryPresence]]:
    presence = MemoryPresence(clock=clock, ttl=30)
    async with (
        EventBus.from_url("memory://") as bus,
        presence if sweeper else contextlib.nullcontext(presence),
        Gateway(
            bus,
            authorizer=token_authorizer,
            authorize_subscription=hook,
            presence=presence,
            limits=Limits(presence_ttl=30),
            clock=clock,
        ) as gw,
    ):
        yield gw, presence


def presence_frames(frames: list[Any]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "presence"]


async def settled() -> None:
    for _ in range(3):  # the presence loop, then the channel's listener
        await anyio.wait_all_tasks_blocked()


async def test_a_watcher_gets_a_sync_then_joins_and_leaves_of_other_connections() -> None:
    clock = ManualClock(start=1000.0)
    async with watched(clock) as (gw, presence):
        alice, ta = await client(gw, "user:alice")
        watch = {"presence": "room:1", "watch": True}
        assert (await subscribe(alice, ta, "p", **watch))["type"] == "subscribed"
        await settled()
        [sync] = presence_frames(ta.drain())
        assert sync == {"type": "presence", "id": "p", "event": "sync", "channel": "room:1",
                        "members": ["alice"]}  # fmt: skip
        # Bob, on two connections, without watching: one join; he hears nothing.
        bob1, tb1 = await client(gw, "user:bob")
        bob2, tb2 = await client(gw, "user:bob")
        await subscribe(bob1, tb1, "s", presence="room:1")
        await subscribe(bob2, tb2, "s", presence="room:1")
        await subscribe(bob1, tb1, "other", presence="room:2")  # another channel
        await settled()
        assert presence_frames(ta.drain()) == [
            {"type": "presence", "id": "p", "event": "join", "channel": "room:1",
             "member": "bob", "info": {}, "expired": False},
        ]  # fmt: skip
        assert presence_frames(tb1.drain() + tb2.drain()) == []
        # Another gateway process's member (straight into the shared presence), with info.
        await presence.join("room:1", "carol", connection="gw2-1", info={"device": "phone"})
        bob1.disconnected()  # bob is still present through bob2
        await settled()
        [carol] = presence_frames(ta.drain())
        assert (carol["event"], carol["member"], carol["info"]) == (
            "join",
            "carol",
            {"device": "phone"},
        )
        await bob2.receive('{"type":"unsubscribe","id":"s"}')  # bob's last connection
        for _ in range(7):  # carol never heartbeats: she expires; the gateway's do
            clock.advance(5)
            await settled()
        await presence.expire()
        await settled()
        frames = presence_frames(ta.drain())
        assert [(f["event"], f["member"], f["expired"]) for f in frames] == [
            ("leave", "bob", False),
            ("leave", "carol", True),
        ]
        assert gw._watch is not None
        assert gw._watch.channels() == 1
        await alice.receive('{"type":"unsubscribe","id":"p"}')
        await settled()
        assert gw._watch.channels() == 0  # the last watcher stopped the listener
        await presence.join("room:1", "dave", connection="gw2-2")
        await settled()
        assert presence_frames(ta.drain()) == []


async def test_two_watchers_and_a_disconnected_watcher() -> None:
    clock = ManualClock(start=1000.0)
    async with watched(clock) as (gw, _presence):
        alice, ta = await client(gw, "user:alice")
        bob, tb = await client(gw, "user:bob")
        await subscribe(alice, ta, "p", presence="lobby", watch=True)
        await settled()
        await subscribe(bob, tb, "q", presence="lobby", watch=True)
        await settled()
        assert presence_frames(tb.drain())[0]["members"] == ["alice", "bob"]
        frames = presence_frames(ta.drain())
        assert [(f["event"], f.get("member")) for f in frames] == [("sync", None), ("join", "bob")]
        alice.disconnected()
        await settled()
        assert [(f["event"], f["member"]) for f in presence_frames(tb.drain())] == [
            ("leave", "alice")
        ]
        assert gw._watch is not None
        assert gw._watch.channels() == 1
        bob.disconnected()
        await settled()
        assert gw._watch.channels() == 0


async def test_the_subscription_hook_sees_presence_and_may_refuse_or_clear_the_watch() -> None:
    seen: list[SubscriptionRequest] = []

    async def hook(principal: Principal, request: SubscriptionRequest) -> SubscriptionRequest:
        seen.append(request)
        if request.presence == "staff" and principal.id != "boss":
            raise Forbidden("only staff may watch staff", principal=principal.id)
        if request.presence == "quiet":
            return SubscriptionRequest(request.id, request.pattern, presence="quiet", watch=False)
        return request

    clock = ManualClock(start=1000.0)
    async with watched(clock, hook) as (gw, presence):
        alice, ta = await client(gw, "user:alice")
        refused = await subscribe(alice, ta, "p", presence="staff", watch=True)
        assert (refused["type"], refused["code"]) == ("error", "forbidden")
        assert seen[-1].presence == "staff"
        assert seen[-1].watch is True
        assert await subscribe(alice, ta, "q", presence="quiet", watch=True) == {
            "type": "subscribed", "id": "q", "position": None}  # fmt: skip
        await presence.join("quiet", "zed", connection="other-1")
        await settled()
        assert presence_frames(ta.drain()) == []  # the hook turned the watch off
        assert sorted(await presence.members("quiet")) == ["alice", "zed"]  # still listed


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"watch": True}, "'watch' needs 'presence'"),
        ({"presence": "room", "watch": "yes"}, "'watch' must be true or false"),
    ],
)
async def test_bad_watch_fields_are_invalid_frames(fields: dict[str, Any], message: str) -> None:
    async with watched(ManualClock(start=1000.0)) as (gw, _presence):
        alice, ta = await client(gw, "user:alice")
        error = await subscribe(alice, ta, "p", **fields)
        assert (error["type"], error["code"]) == ("error", "invalid_frame")
        assert message in error["message"]
        assert (await subscribe(alice, ta, "p", presence="room", watch=False))["type"] == (
            "subscribed"
        )


async def test_a_resuming_watcher_and_a_listener_that_fell_behind_get_a_sync() -> None:
    clock = ManualClock(start=1000.0)
    async with watched(clock) as (gw, presence):
        alice, ta = await client(gw, "user:alice")
        answer = await subscribe(alice, ta, "p", presence="hall", watch=True, since="earliest")
        assert answer["type"] == "subscribed"
        await settled()
        [sync] = presence_frames(ta.drain())
        assert sync["members"] == ["alice"]
        # More changes at once than a listener buffers: a sweep expires them in one go.
        many = LISTENER_BUFFER + 100
        for n in range(many):
            await presence.join("hall", f"m{n}", connection=f"x-{n}", ttl=5)
        await settled()
        joins = presence_frames(ta.drain())
        assert [f["event"] for f in joins] == ["join"] * many
        clock.advance(6)  # they expire; alice (heartbeated, ttl 30) does not
        assert await presence.expire() == many
        await settled()
        frames = presence_frames(ta.drain())
        leaves = [f for f in frames if f["event"] == "leave"]
        assert 0 < len(leaves) < many  # the listener missed the rest...
        assert frames[-1] == {"type": "presence", "id": "p", "event": "sync", "channel": "hall",
                              "members": ["alice"]}  # fmt: skip
        assert len(frames) == len(leaves) + 1  # ...and the watcher got a fresh list


async def test_a_watch_gone_before_its_turn_and_a_closed_presence_are_harmless(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock(start=1000.0)
    async with watched(clock, sweeper=False) as (gw, presence):  # closed in the middle
        alice, ta = await client(gw, "user:alice")
        await subscribe(alice, ta, "p", presence="room", watch=True)
        await alice.receive('{"type":"unsubscribe","id":"p"}')  # before the worker's turn
        await settled()
        assert presence_frames(ta.drain()) == []
        assert gw._watch is not None
        assert gw._watch.channels() == 0
        await subscribe(alice, ta, "q", presence="room", watch=True)
        await settled()
        assert presence_frames(ta.drain())[0]["event"] == "sync"
        assert gw._watch.channels() == 1
        await presence.aclose()  # the listener's iterator ends
        await settled()
        assert gw._watch.channels() == 0
        answer = await subscribe(alice, ta, "r", presence="other", watch=True)
        assert answer["type"] == "subscribed"  # the subscription itself still works
        await settled()
        assert presence_frames(ta.drain()) == []
        assert "presence sync" in caplog.text
        await subscribe(alice, ta, "s", pattern={"type": ["t"]})
        await gw.bus.publish(order(1).model_copy(update={"type": "t"}))
        await settled()
        assert sorted(f["id"] for f in ta.drain() if f["type"] == "event") == ["q", "r", "s"]
