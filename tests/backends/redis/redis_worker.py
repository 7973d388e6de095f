"""A worker process for the Redis fault and multi-process tests (not a test module).

Usage::

    python redis_worker.py consume URL PREFIX NAME [--delay SECONDS] [--visibility S]
    python redis_worker.py publish URL PREFIX NAME COUNT

``consume`` joins group ``g`` and handles batches of up to 100 events; for each
handled event it increments ``{PREFIX}:results`` field ``<event id>`` and appends
``<key>:<seq>`` to ``{PREFIX}:order:<NAME>`` (its processing order), in one
pipeline per batch, before the batch is acknowledged. ``publish`` appends COUNT
events numbered ``seq`` 0.. with partition keys ``<NAME>-<seq % 7>`` in batches of
100, then exits.
"""

from __future__ import annotations

import argparse

import anyio
import redis.asyncio

from eventpatterns import Event, EventBus, Timeouts
from eventpatterns.errors import BackendUnavailable


async def consume(url: str, prefix: str, name: str, delay: float, visibility: float) -> None:
    tag = "{" + prefix + "}"
    client = redis.asyncio.Redis.from_url(url.partition("?")[0])

    async def handler(events: list[Event]) -> None:
        async with client.pipeline(transaction=True) as pipe:
            for event in events:
                pipe.hincrby(f"{tag}:results", event.id, 1)
                pipe.rpush(f"{tag}:order:{name}", f"{event.data['key']}:{event.data['seq']}")
            await pipe.execute()
        if delay:
            await anyio.sleep(delay)

    async with EventBus.from_url(url) as bus:
        await bus.consume_batches(
            "g",
            handler,
            batch_size=100,
            start="earliest",
            name=name,
            timeouts=Timeouts(visibility=visibility),
        )
        await client.rpush(f"{tag}:ready", name)
        await anyio.sleep_forever()


async def publish(url: str, name: str, count: int) -> None:
    async with EventBus.from_url(url) as bus:
        for start in range(0, count, 100):
            batch = [
                Event(type="mp.test", source=f"/{name}", data={"key": f"{name}-{i % 7}", "seq": i})
                for i in range(start, min(start + 100, count))
            ]
            while True:
                try:
                    await bus.publish_batch(batch)
                    break
                except BackendUnavailable:  # retried safely: dedupe on event ids
                    await anyio.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["consume", "publish"])
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("name")
    parser.add_argument("count", nargs="?", type=int, default=0)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--visibility", type=float, default=30.0)
    args = parser.parse_args()
    url = f"{args.url}?prefix={args.prefix}"
    if args.mode == "consume":
        anyio.run(consume, url, args.prefix, args.name, args.delay, args.visibility)
    else:
        anyio.run(publish, url, args.name, args.count)


if __name__ == "__main__":
    main()
