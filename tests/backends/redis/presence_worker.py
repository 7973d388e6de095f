"""A gateway-like process for the Redis presence tests (not a test module).

Usage::

    python presence_worker.py hold URL PREFIX NAME COUNT TTL
    python presence_worker.py watch URL PREFIX NAME

``hold`` joins members ``NAME-m<i>`` to channel ``room`` (connection ``NAME-c<i>``,
info ``{"worker": NAME}``), heartbeats them every TTL/4 s of real time, and pushes NAME
to ``{PREFIX}:ready`` once they are joined. ``watch`` runs a sweeper (every 0.05 s)
and a listener on ``room``, pushes NAME to ``{PREFIX}:ready`` once listening, and
appends each event it receives, as JSON, to ``{PREFIX}:seen:NAME``. Both run until
killed.
"""

from __future__ import annotations

import json
import sys

import anyio
import redis.asyncio

from eventpatterns.backends.redis import RedisPresence


async def hold(url: str, prefix: str, name: str, count: int, ttl: float) -> None:
    client = redis.asyncio.Redis.from_url(url)
    async with RedisPresence(url, prefix=prefix, ttl=ttl) as presence:
        for i in range(count):
            await presence.join("room", f"{name}-m{i}", connection=f"{name}-c{i}",
                                info={"worker": name})  # fmt: skip
        await client.rpush("{" + prefix + "}:ready", name)
        while True:
            await anyio.sleep(ttl / 4)
            for i in range(count):
                await presence.heartbeat(f"{name}-c{i}")


async def watch(url: str, prefix: str, name: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    seen = "{" + prefix + "}:seen:" + name
    async with (
        RedisPresence(url, prefix=prefix, sweep_interval=0.05) as presence,
        presence.events("room") as events,
    ):
        await client.rpush("{" + prefix + "}:ready", name)
        async for event in events:
            record = [event.type, event.member, event.connection, event.expired]
            await client.rpush(seen, json.dumps(record))


def main() -> None:
    mode, url, prefix, name, *rest = sys.argv[1:]
    if mode == "hold":
        anyio.run(hold, url, prefix, name, int(rest[0]), float(rest[1]))
    else:
        anyio.run(watch, url, prefix, name)


if __name__ == "__main__":
    main()
