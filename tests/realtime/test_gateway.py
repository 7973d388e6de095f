"""The gateway through MemoryTransport on a real memory bus (asyncio and trio)."""

from __future__ import annotations

import json

import anyio
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.errors import Forbidden, InvalidState, ProtocolViolation
from eventpatterns.realtime import (
    CloseCode,
    Credentials,
    Gateway,
    Limits,
    MemoryTransport,
    Principal,
    SubscriptionRequest,
)
from eventpatterns.testing import ManualClock

from .conftest import client, frames_until, subscribe, token_authorizer

pytestmark = pytest.mark.anyio


async def test_subscribe_and_receive_only_matching_events() -> None:
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gateway:
        conn, t = await client(gateway)
        ok = await subscribe(conn, t, "s1", pattern={"type": ["order.created"]})
        assert ok == {"type": "subscribed", "id": "s1", "position": None}
        everything = await subscribe(conn, t, "all")
        assert everything["type"] == "subscribed"
        await bus.publish(Event(type="other", source="/t", data=0))
        position = await bus.publish(Event(type="order.created", source="/t", data={"n": 1}))
        got = await frames_until(t, 3)
        assert [(f["id"], f["event"]["type"]) for f in got] == [
            ("all", "other"),
            ("s1", "order.created"),
            ("all", "order.created"),
        ]
        assert got[1]["position"] == position
        assert got[1]["event"]["data"] == {"n": 1}
        # The head position after events is announced to a new subscription.
        again = await subscribe(conn, t, "s2", filter={"filterGroup": [{"filters": [
            {"fieldName": "data.n", "operator": "eq", "value": 2}]}]})  # fmt: skip
        assert again == {"type": "subscribed", "id": "s2", "position": position}
        await bus.publish(Event(type="x", source="/t", data={"n": 2}))
        got = await frames_until(t, 2)
        assert sorted(f["id"] for f in got) == ["all", "s2"]
        await conn.receive('{"type":"unsubscribe","id":"all"}')
        assert await frames_until(t, 1) == [{"type": "unsubscribed", "id": "all"}]
        await bus.publish(Event(type="order.created", source="/t", data={"n": 3}))
        [only] = await frames_until(t, 1)
        assert only["id"] == "s1"
        assert only["event"]["data"] == {"n": 3}
        stats = gateway.stats()
        assert (stats.connections, stats.subscriptions, stats.delivered) == (1, 2, 6)


async def test_one_event_is_encoded_once_per_subscription_id() -> None:
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gateway:
        clients = [await client(gateway, f"user:u{n}") for n in range(20)]
        for conn, t in clients:
            await subscribe(conn, t, "same", pattern={"source": ["/x"]})
        assert gateway.stats().patterns == 1  # twenty subscriptions, one indexed pattern
        await bus.publish(Event(type="t", source="/x", data=1))
        texts = []
        for _, t in clients:
            with anyio.fail_after(5):
                while (text := t.receive_text()) is None:  # noqa: ASYNC110
                    await anyio.sleep(0.001)
            texts.append(text)
        assert len({id(text) for text in texts}) == 1  # the very same str object


async def test_authentication_errors_close_4401_and_others_are_unaffected() -> None:
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, authorizer=token_authorizer) as gateway,
    ):
        good, gt = await client(gateway, "user:bob")
        await subscribe(good, gt, "s")
        t = MemoryTransport()
        conn = gateway.connect(t)
        await conn.receive('{"type":"subscribe","id":"s"}')
        await conn.receive('{"type":"authenticate","token":"forged"}')
        first, second = t.drain()
        assert first["code"] == "not_authenticated"
        assert second == {
            "type": "error",
            "code": "authentication_failed",
            "message": "unknown token",
        }
        assert (t.close_code, conn.closed) == (CloseCode.AUTHENTICATION_FAILED, True)
        # From the transport's credentials (a header): refused the same way.
        t2 = MemoryTransport()
        conn2 = gateway.connect(t2, Credentials(api_key="nope"))
        assert await conn2.authenticate_from() is None
        assert t2.close_code == 4401
        t3 = MemoryTransport()
        conn3 = gateway.connect(t3, Credentials(api_key="user:carol"))
        principal = await conn3.authenticate_from()
        assert principal is not None
        assert principal.id == "carol"
        await bus.publish(Event(type="t", source="/t"))
        [event] = await frames_until(gt, 1)
        assert event["type"] == "event"
        assert gateway.stats().connections == 2


async def test_auth_timeout_and_token_expiry_close() -> None:
    clock = ManualClock(start=1000.0)
    limits = Limits(auth_timeout=5)
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, authorizer=token_authorizer, limits=limits, clock=clock) as gw,
    ):
        idle = MemoryTransport()
        idle_conn = gw.connect(idle)
        conn, t = await client(gw, "user:dan:1060")
        clock.advance(4.9)
        await anyio.wait_all_tasks_blocked()
        assert not idle.closed
        clock.advance(0.2)
        with anyio.fail_after(5):
            await idle_conn.wait_closed()
        assert idle.close_code == CloseCode.AUTHENTICATION_TIMEOUT
        assert not conn.closed
        clock.advance(60)
        with anyio.fail_after(5):
            await conn.wait_closed()
        assert (t.close_code, t.close_reason) == (4401, "the credentials expired")
        # An already expired token is refused at once.
        t2 = MemoryTransport()
        c2 = gw.connect(t2)
        await c2.receive('{"type":"authenticate","token":"user:dan:1000"}')
        assert t2.drain()[0]["message"] == "the credentials have expired"


async def test_token_refresh() -> None:
    clock = ManualClock(start=1000.0)
    limits = Limits(on_token_expiry="refresh", refresh_window=30)
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, authorizer=token_authorizer, limits=limits, clock=clock) as gw,
    ):
        conn, t = await client(gw, "user:erin:1100")
        clock.advance(75)
        [warning] = await frames_until(t, 1)
        assert warning == {"type": "token-expiring", "expires_at": 1100.0}
        await conn.receive('{"type":"authenticate","token":"user:erin:1200"}')
        clock.advance(30)  # past the first expiry: the refreshed token holds
        await anyio.wait_all_tasks_blocked()
        assert conn.close_code is None
        await conn.receive('{"type":"authenticate","token":"user:mallory:1300"}')
        assert conn.closed
        assert t.close_code == 4401
        assert t.drain()[-1]["code"] == "authentication_failed"


async def test_subscription_errors() -> None:
    async def hook(principal: Principal, request: SubscriptionRequest) -> SubscriptionRequest:
        if request.id.startswith("admin"):
            raise Forbidden("admins only", principal=principal.id)
        if request.id == "boom":
            raise RuntimeError("a bug in the hook")
        return request

    limits = Limits(max_subscriptions=3)
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, authorize_subscription=hook, limits=limits) as gw,
    ):
        conn, t = await client(gw)
        bad = await subscribe(conn, t, "p", pattern={"type": [{"numeric": ["<"]}]})
        assert bad["code"] == "invalid_pattern"
        assert "$.type" in bad["message"]
        forbidden = await subscribe(conn, t, "admin1")
        assert forbidden == {
            "type": "error", "code": "forbidden", "message": "admins only", "id": "admin1",
        }  # fmt: skip
        boom = await subscribe(conn, t, "boom")
        assert boom["code"] == "internal_error"
        for n in range(3):
            assert (await subscribe(conn, t, f"s{n}"))["type"] == "subscribed"
        too_many = await subscribe(conn, t, "s9")
        assert too_many["code"] == "too_many_subscriptions"
        assert gw.stats().subscriptions == 3
        assert not conn.closed
        await conn.receive(b"\x00binary")
        assert (await frames_until(t, 1))[0]["code"] == "unsupported_data"
        await conn.receive("x" * (limits.max_frame_bytes + 1))
        assert (await frames_until(t, 1))[0]["code"] == "frame_too_large"
        assert t.close_code == CloseCode.MESSAGE_TOO_BIG
        assert gw.stats().subscriptions == 0  # a closed connection's routes are gone


async def test_connections_per_principal() -> None:
    limits = Limits(max_connections_per_principal=2)
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, authorizer=token_authorizer, limits=limits) as gw,
    ):
        first, _ = await client(gw, "user:fay")
        await client(gw, "user:fay")
        t = MemoryTransport()
        conn = gw.connect(t)
        await conn.receive('{"type":"authenticate","token":"user:fay"}')
        assert t.close_code == CloseCode.TOO_MANY
        assert "at most 2" in t.drain()[0]["message"]
        first.disconnected()
        await client(gw, "user:fay")  # a place is free again
        assert gw.stats().connections == 2


async def test_revoke_reaches_every_gateway_on_the_bus() -> None:
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, authorizer=token_authorizer) as a,
        Gateway(bus, authorizer=token_authorizer) as b,
    ):
        _ca, ta = await client(a, "user:gus")
        cb, tb = await client(b, "user:gus")
        other, to = await client(b, "user:hal")
        await subscribe(other, to, "all")
        assert await a.revoke("gus", reason="permissions changed") == 1
        assert ta.close_code == CloseCode.REVOKED
        with anyio.fail_after(5):
            await cb.wait_closed()
        assert (tb.close_code, tb.close_reason) == (4403, "permissions changed")
        assert not other.closed
        await bus.publish(Event(type="t", source="/t"))
        [frame] = await frames_until(to, 1)
        assert frame["event"]["type"] == "t"  # the control event never reached it
        assert b.stats().revoked == 1


async def test_sse_dialect() -> None:
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gw:
        t = MemoryTransport("sse")
        conn = gw.connect(t)
        with pytest.raises(ProtocolViolation):
            await conn.subscribe_sse()
        assert await conn.authenticate_from() is not None
        with pytest.raises(Exception, match="numeric"):
            await conn.subscribe_sse(pattern={"data": [{"numeric": [1]}]})
        watcher, wt = await client(gw)
        await subscribe(watcher, wt, "all")
        first = await bus.publish(Event(type="t", source="/t", data=0))
        await frames_until(wt, 1)  # the gateway has routed it: its head is `first`
        await conn.subscribe_sse(pattern={"type": ["t"]})
        position = await bus.publish(Event(type="t", source="/t", data={"x": "\u00e9\n"}))
        texts = await frames_until(t, 4)
        assert texts[0].startswith("event: connected\n")
        assert texts[2].startswith(f"id: {first}\nevent: subscribed\n")
        head, data = texts[3].split("data: ")
        assert head == f"id: {position}\nevent: event\n"
        assert json.loads(data)["data"] == {"x": "\u00e9\n"}
        assert data.endswith("}\n\n")


async def test_ping_connect_after_close_and_going_away() -> None:
    async with EventBus.from_url("memory://") as bus:
        gw = Gateway(bus)
        with pytest.raises(InvalidState):
            gw.connect(MemoryTransport())
        async with gw:
            conn, t = await client(gw)
            await conn.receive('{"type":"ping","payload":{"n":1}}')
            assert await frames_until(t, 1) == [{"type": "pong", "payload": {"n": 1}}]
        assert t.close_code == CloseCode.GOING_AWAY
        assert conn.closed
