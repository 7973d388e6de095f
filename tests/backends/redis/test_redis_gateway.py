"""The real-time gateway on the Redis bus: several gateways ("processes") on one log."""

from __future__ import annotations

import json
from collections import Counter
from contextlib import AsyncExitStack
from typing import Any

import anyio
import pytest
from redis_helpers import REDIS_URL

from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.realtime import Credentials, Gateway, MemoryTransport

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


async def connect(gw: Gateway, sid: str, **fields: Any) -> tuple[Any, MemoryTransport]:
    t = MemoryTransport()
    conn = gw.connect(t, Credentials())
    await conn.receive('{"type":"authenticate","token":"t"}')
    await conn.receive(json.dumps({"type": "subscribe", "id": sid, **fields}))
    with anyio.fail_after(5):
        hello, answer = await t.receive(), await t.receive()
    assert (hello["type"], answer["type"]) == ("connected", "subscribed"), answer
    return conn, t


async def events(t: MemoryTransport, count: int) -> list[Any]:
    with anyio.fail_after(10):
        return [await t.receive() for _ in range(count)]


async def test_three_gateways_deliver_exactly_once_and_resume_on_another(prefix: str) -> None:
    async with AsyncExitStack() as stack:
        buses = [
            await stack.enter_async_context(EventBus(RedisBusBackend(REDIS_URL, prefix=prefix)))
            for _ in range(3)
        ]
        gateways = [await stack.enter_async_context(Gateway(bus)) for bus in buses]
        clients = [await connect(gw, "s", pattern={"type": ["t"]}) for gw in gateways]
        # Published from each process in turn: every client gets each once, in order.
        for n in range(60):
            await buses[n % 3].publish(Event(type="t", source="/redis", data={"n": n}))
        for _, t in clients:
            got = await events(t, 60)
            assert [f["event"]["data"]["n"] for f in got] == list(range(60))
        # The client of gateway 2 drops after event 29 ... and comes back on gateway 0.
        conn, t = clients[2]
        last = got[29]["position"]
        conn.disconnected()
        for n in range(60, 90):
            await buses[1].publish(Event(type="t", source="/redis", data={"n": n}))
        _, again = await connect(gateways[0], "s", pattern={"type": ["t"]}, since=last)
        got = await events(again, 60)
        numbers = Counter(f["event"]["data"]["n"] for f in got)
        assert sorted(numbers) == list(range(30, 90))
        assert max(numbers.values()) == 1
        assert again.drain() == []


async def test_revoke_crosses_processes_through_redis(prefix: str) -> None:
    async with AsyncExitStack() as stack:
        buses = [
            await stack.enter_async_context(EventBus(RedisBusBackend(REDIS_URL, prefix=prefix)))
            for _ in range(2)
        ]
        a, b = [await stack.enter_async_context(Gateway(bus)) for bus in buses]
        conn, t = await connect(b, "s")
        assert await a.revoke("anonymous", reason="gone") == 0
        with anyio.fail_after(10):
            await conn.wait_closed()
        assert (t.close_code, t.close_reason) == (4403, "gone")
