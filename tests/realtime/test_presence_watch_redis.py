"""Presence frames across gateways: RedisPresence shared by two gateways, real Redis.

Each gateway has its own bus and its own separately connected ``RedisPresence`` on one
prefix, as two gateway processes would: a watcher on one hears the joins and leaves
made through the other.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
import redis

from eventpatterns import EventBus
from eventpatterns.backends.redis import RedisPresence
from eventpatterns.realtime import Gateway, MemoryTransport

from .conftest import client, subscribe, token_authorizer

pytestmark = [pytest.mark.anyio, pytest.mark.redis]

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client


@pytest.fixture
def prefix() -> Iterator[str]:
    """A prefix of this test's own on the shared Redis, its keys deleted afterwards."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI requires Redis: {exc}")
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    value = f"eptest-watch-{uuid.uuid4().hex[:12]}"
    yield value
    keys = list(client.scan_iter(match=f"{value}:*"))
    if keys:
        client.delete(*keys)
    client.close()


async def next_presence(transport: MemoryTransport, within: float = 10) -> dict[str, Any]:
    with anyio.fail_after(within):
        while True:
            frame = await transport.receive()
            if frame["type"] == "presence":
                return dict(frame)


async def test_a_watcher_hears_what_happens_through_another_gateway(prefix: str) -> None:
    channel = "room:7"
    async with (
        RedisPresence(REDIS_URL, prefix=prefix, sweep_interval=0.2) as one,
        RedisPresence(REDIS_URL, prefix=prefix, sweep_interval=0.2) as two,
        EventBus.from_url("memory://") as bus1,
        EventBus.from_url("memory://") as bus2,
        Gateway(bus1, authorizer=token_authorizer, presence=one) as gw1,
        Gateway(bus2, authorizer=token_authorizer, presence=two) as gw2,
    ):
        alice, ta = await client(gw1, "user:alice")
        await subscribe(alice, ta, "p", presence=channel, watch=True)
        sync = await next_presence(ta)
        assert (sync["event"], sync["members"]) == ("sync", ["alice"])
        bob, tb = await client(gw2, "user:bob")
        await subscribe(bob, tb, "q", presence=channel, watch=True)
        assert (await next_presence(tb))["members"] == ["alice", "bob"]
        join = await next_presence(ta)
        assert (join["event"], join["member"], join["channel"]) == ("join", "bob", channel)
        carol, tc = await client(gw2, "user:carol")
        await subscribe(carol, tc, "s", presence=channel)  # listed, not watching
        for transport in (ta, tb):
            assert (await next_presence(transport))["member"] == "carol"
        bob.disconnected()
        leave = await next_presence(ta)
        assert (leave["event"], leave["member"], leave["expired"]) == ("leave", "bob", False)
        carol.disconnected()
        assert (await next_presence(ta))["member"] == "carol"
        assert sorted(await one.members(channel)) == ["alice"]
