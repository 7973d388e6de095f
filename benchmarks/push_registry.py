"""Benchmark: the device registry against raw redis-py writes of the same keys, in one run.

Run: ``python benchmarks/push_registry.py [--url redis://127.0.0.1:6379/0] [--n 5000]``

Rows (each on keys of its own, deleted afterwards; ``--concurrency`` tasks at once):

* **raw-register** — a redis-py pipeline: ``HSET`` the device hash, ``SADD`` the user's set,
  ``ZADD`` the last-seen index: the same writes in one round trip, not atomic, with none of the
  checks (no owner lookup, no move, no limit). The ceiling.
* **register-new** — ``RedisDeviceRegistry.register`` of new FCM tokens (one Lua call:
  owner lookup, limit check, writes).
* **register-move** — the weakest write: every registration moves a token from one user
  to the other (the script also removes it from the previous owner's set).
* **raw-list** / **devices** — reading a user's 50 devices: ``SMEMBERS`` then a pipeline
  of ``HGETALL`` (two round trips, no decoding) against ``registry.devices(user)`` (one
  script, decoded into ``Device`` objects).
* **parse-fcm** / **parse-webpush** — ``Registration(...)`` per second, without I/O: Web
  Push checks that ``p256dh`` is a point on P-256, the weakest case of validation.
* **memory-register** — ``MemoryDeviceRegistry.register`` (no I/O), for scale.

Ratios are against the raw row of the same kind. Results go to
``benchmarks/results/push_registry.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

sys.path.insert(0, str(Path(__file__).parent))
from _common import print_table, write_results

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.backends.redis import RedisDeviceRegistry
from eventpatterns.push import Registration

P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"


async def run_concurrently(n: int, concurrency: int, one: Callable[[int], Awaitable[Any]]) -> float:
    """Run ``one(i)`` for i in range(n) with ``concurrency`` workers; return ops/s."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await one(i)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - start)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    n, conc = args.n, args.concurrency
    prefix = f"bench-devices-{uuid.uuid4().hex[:8]}"
    raw = aredis.Redis.from_url(args.url)
    rows: list[dict[str, Any]] = []
    registrations = [Registration("fcm", f"token-{i}:APA91b") for i in range(n)]
    try:
        base = "{" + prefix + "-raw}:push:"

        async def raw_register(i: int) -> None:
            r = registrations[i]
            pipe = raw.pipeline(transaction=False)
            pipe.hset(base + "d:" + r.id, mapping={"u": f"user{i % 100}", "c": "1.0",
                      "r": "1.0", "s": "1.0", "j": r.token, "k": "[]"})  # fmt: skip
            pipe.sadd(base + f"u:user{i % 100}", r.id)
            pipe.zadd(base + "seen", {r.id: 1.0})
            await pipe.execute()

        ceiling = await run_concurrently(n, conc, raw_register)
        rows.append({"row": "raw-register", "ops_per_s": ceiling, "ratio": 1.0})

        async with RedisDeviceRegistry(args.url, prefix=prefix, max_devices=10_000) as registry:

            async def register_new(i: int) -> None:
                await registry.register(f"user{i % 100}", registrations[i], now=float(i))

            rate = await run_concurrently(n, conc, register_new)
            rows.append({"row": "register-new", "ops_per_s": rate, "ratio": rate / ceiling})

            shared = registrations[:conc]

            async def register_move(i: int) -> None:
                user = "mover-a" if (i // conc) % 2 == 0 else "mover-b"
                await registry.register(user, shared[i % conc], now=float(n + i))

            rate = await run_concurrently(n, conc, register_move)
            rows.append({"row": "register-move", "ops_per_s": rate, "ratio": rate / ceiling})

            listed = "lister"
            for i in range(50):
                await registry.register(listed, Registration("fcm", f"list-{i}"), now=1.0)
            user_set = "{" + prefix + "}:push:u:" + listed

            async def raw_list(i: int) -> None:
                ids = await raw.smembers(user_set)
                pipe = raw.pipeline(transaction=False)
                for device in ids:
                    name = device.decode() if isinstance(device, bytes) else device
                    pipe.hgetall("{" + prefix + "}:push:d:" + name)
                await pipe.execute()

            async def devices(i: int) -> None:
                await registry.devices(listed)

            reads = n // 5
            raw_rate = await run_concurrently(reads, conc, raw_list)
            rows.append({"row": "raw-list", "ops_per_s": raw_rate, "ratio": 1.0})
            rate = await run_concurrently(reads, conc, devices)
            rows.append({"row": "devices", "ops_per_s": rate, "ratio": rate / raw_rate})

        start = time.perf_counter()
        for i in range(n):
            Registration("fcm", f"token-{i}")
        fcm_rate = n / (time.perf_counter() - start)
        rows.append({"row": "parse-fcm", "ops_per_s": fcm_rate, "ratio": 1.0})
        start = time.perf_counter()
        for i in range(n):
            Registration("webpush", f"https://fcm.googleapis.com/x/{i}", p256dh=P256DH, auth=AUTH)
        rate = n / (time.perf_counter() - start)
        rows.append({"row": "parse-webpush", "ops_per_s": rate, "ratio": rate / fcm_rate})

        memory = MemoryDeviceRegistry(max_devices=10_000)
        start = time.perf_counter()
        for i in range(n):
            await memory.register(f"user{i % 100}", registrations[i], now=float(i))
        rate = n / (time.perf_counter() - start)
        rows.append({"row": "memory-register", "ops_per_s": rate, "ratio": rate / ceiling})
    finally:
        for pattern in (f"{{{prefix}}}:*", f"{{{prefix}-raw}}:*"):
            keys = [k async for k in raw.scan_iter(match=pattern, count=1000)]
            for start in range(0, len(keys), 500):
                await raw.delete(*keys[start : start + 500])
        await raw.aclose()
    print_table(rows, ["row", "ops_per_s", "ratio"])
    path = write_results("push_registry", rows, {"n": n, "concurrency": conc})
    print(f"results: {path}")


if __name__ == "__main__":
    asyncio.run(main())
