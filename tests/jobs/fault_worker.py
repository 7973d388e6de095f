"""A worker process for the jobs fault tests (not a test module).

Usage::

    python fault_worker.py URL PREFIX NAME MARKS [--slow SECONDS]

Runs a :class:`JobTracker` (workers and reaper, lease 1 s, reaper every 0.2 s) on the
Redis bus and job store of ``PREFIX``, with two kinds:

* ``nap``: writes ``MARKS/<job>.<NAME>.started``, sleeps ``--slow`` seconds (default:
  the input's ``seconds``), then increments ``{PREFIX}:done:<job>`` and returns
  ``{"worker": NAME}``; a cancelled handler writes ``MARKS/<job>.<NAME>.cancelled``;
* ``two-steps``: step ``one`` increments ``{PREFIX}:step1:<job>``; step ``two``
  writes ``MARKS/<job>.<NAME>.step2``, sleeps ``--slow`` seconds (default 0), then
  increments ``{PREFIX}:step2:<job>``.

It writes ``MARKS/<NAME>.ready`` once its consumers listen, then runs until killed.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import anyio
import redis.asyncio
from pydantic import BaseModel

from eventpatterns import Backoff, EventBus
from eventpatterns.backends.redis import RedisJobStore
from eventpatterns.jobs import JobContext, JobTracker

#: Retries come due at once, so the tests wait for leases, not for backoff.
FAST = Backoff(initial=0.05, maximum=0.05, jitter=0.0)
LEASE = 1.0
REAPER_INTERVAL = 0.2


class Nap(BaseModel):
    seconds: float


def register(
    tracker: JobTracker, client: Any, tag: str, name: str, marks: Path, slow: float | None
) -> None:
    @tracker.worker("nap", lease=LEASE, backoff=FAST)
    async def nap(ctx: JobContext[Nap]) -> dict[str, str]:
        (marks / f"{ctx.job.id}.{name}.started").touch()
        try:
            await anyio.sleep(ctx.input.seconds if slow is None else slow)
        except anyio.get_cancelled_exc_class():
            (marks / f"{ctx.job.id}.{name}.cancelled").touch()
            raise
        await client.incr(f"{tag}:done:{ctx.job.id}")
        return {"worker": name}

    async def one(ctx: JobContext[dict[str, Any]], value: dict[str, Any]) -> dict[str, Any]:
        await client.incr(f"{tag}:step1:{ctx.job.id}")
        return {"n": 1, "by": name}

    async def two(ctx: JobContext[dict[str, Any]], value: dict[str, Any]) -> dict[str, Any]:
        (marks / f"{ctx.job.id}.{name}.step2").touch()
        await anyio.sleep(slow or 0)
        await client.incr(f"{tag}:step2:{ctx.job.id}")
        return {"n": value["n"] + 1, "step1_by": value["by"], "step2_by": name}

    tracker.durable("two-steps", [one, two], lease=LEASE, backoff=FAST)


async def main(url: str, prefix: str, name: str, marks: Path, slow: float | None) -> None:
    tag = "{" + prefix + "}"
    client = redis.asyncio.Redis.from_url(url)
    async with (
        EventBus.from_url(f"{url}?prefix={prefix}") as bus,
        RedisJobStore(url, prefix=prefix) as store,
    ):
        tracker = JobTracker(
            bus, store, worker_id=name, reaper_interval=REAPER_INTERVAL, dispatch_recheck=1.0
        )
        register(tracker, client, tag, name, marks, slow)
        async with tracker:
            (marks / f"{name}.ready").touch()
            await anyio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("prefix")
    parser.add_argument("name")
    parser.add_argument("marks", type=Path)
    parser.add_argument("--slow", type=float, default=None)
    args = parser.parse_args()
    anyio.run(main, args.url, args.prefix, args.name, args.marks, args.slow)
