"""Benchmark: the Redis event bus against raw redis-py and its peers, in one run.

Run: ``python benchmarks/bus_redis.py [--url redis://127.0.0.1:6379/0] [--events 20000]``

Every scenario runs against the same Redis, on its own keys (deleted afterwards):

* **publish** — raw redis-py pipelined ``XADD`` in batches of 100 (the ceiling) and one
  ``XADD`` per round trip, against ``EventBus.publish_batch`` (batches of 100: one Lua
  call each, with dedupe and exact retention) and ``EventBus.publish``;
* **durable consume** — a raw ``XREADGROUP COUNT 100`` + batched ``XACK`` loop (the
  ceiling; it decodes nothing), the same loop turning entries into ``Event`` objects
  (what any consumer has to do), against the backend's ``receive`` + ``ack`` and
  against a façade consumer (``bus.consume_batches(..., batch_size=100)``), each draining a
  pre-filled stream;
* **end to end** — events published and delivered to one live subscriber, for
  encode/broadcaster (``redis://`` pub/sub, re-armed: 0.3.1's listener starts before
  its subscription completes under redis-py 8 and would deliver nothing), FastStream
  (``RedisBroker``, a channel), and eventpatterns (``publish_batch`` of 100, and
  ``publish`` one by one, to a live ``bus.subscribe()``; and to a consumer group).

The best of ``--repeat`` runs is reported with ratios to the targets: batch publish >=
0.9x the raw pipeline, durable consume >= 0.7x the raw loop (issue 7), end-to-end
delivered >= 5x FastStream (issue 4). Results go to ``benchmarks/results/bus_redis.json``
(``--out`` elsewhere). To compare two versions of the library, run this file with each
on ``PYTHONPATH`` in turn, interleaved, and compare the ratios: the machine's load moves
the absolute figures, the ratios much less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as aredis

from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend

RESULTS = Path(__file__).parent / "results"
BATCH = 100


def make_events(n: int) -> list[Event]:
    return [
        Event(type="bench.tick", source="/bench", data={"n": i, "user": f"u{i % 97}"})
        for i in range(n)
    ]


class Keys:
    """Fresh key names per scenario, and their clean-up."""

    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self.prefixes: list[str] = []

    def prefix(self) -> str:
        value = f"epbench:{uuid.uuid4().hex[:10]}"
        self.prefixes.append(value)
        return value

    async def cleanup(self) -> None:
        for prefix in self.prefixes:
            for pattern in (prefix + "*", "{" + prefix + "}*"):
                keys = [k async for k in self.client.scan_iter(match=pattern, count=1000)]
                for start in range(0, len(keys), 500):
                    await self.client.delete(*keys[start : start + 500])
        self.prefixes.clear()


# -- publish ----------------------------------------------------------------------------------


async def raw_pipelined_xadd(url: str, keys: Keys, n: int) -> float:
    client = aredis.Redis.from_url(url)
    stream = keys.prefix() + ":raw"
    payloads = [(e.id, e.to_json()) for e in make_events(n)]
    t0 = time.perf_counter()
    for start in range(0, n, BATCH):
        async with client.pipeline(transaction=False) as pipe:
            for event_id, data in payloads[start : start + BATCH]:
                pipe.xadd(stream, {"i": event_id, "e": data})
            await pipe.execute()
    elapsed = time.perf_counter() - t0
    await client.aclose()
    return n / elapsed


async def raw_single_xadd(url: str, keys: Keys, n: int) -> float:
    client = aredis.Redis.from_url(url)
    stream = keys.prefix() + ":raw1"
    payloads = [(e.id, e.to_json()) for e in make_events(n)]
    t0 = time.perf_counter()
    for event_id, data in payloads:
        await client.xadd(stream, {"i": event_id, "e": data})
    elapsed = time.perf_counter() - t0
    await client.aclose()
    return n / elapsed


async def ep_publish_batch(url: str, keys: Keys, n: int) -> float:
    events = make_events(n)
    async with EventBus(RedisBusBackend(url, prefix=keys.prefix())) as bus:
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            await bus.publish_batch(events[start : start + BATCH])
        return n / (time.perf_counter() - t0)


async def ep_publish_single(url: str, keys: Keys, n: int) -> float:
    events = make_events(n)
    async with EventBus(RedisBusBackend(url, prefix=keys.prefix())) as bus:
        t0 = time.perf_counter()
        for event in events:
            await bus.publish(event)
        return n / (time.perf_counter() - t0)


# -- durable consume ------------------------------------------------------------------------


async def raw_group_consume(url: str, keys: Keys, n: int, *, decode: bool = False) -> float:
    """Raw ``XREADGROUP COUNT 100`` + batched ``XACK``; with ``decode``, plus what any
    consumer must do: turn each entry into an Event."""
    client = aredis.Redis.from_url(url)
    stream = keys.prefix() + (":rawgd" if decode else ":rawg")
    payloads = [(e.id, e.to_json()) for e in make_events(n)]
    for start in range(0, n, 1000):
        async with client.pipeline(transaction=False) as pipe:
            for event_id, data in payloads[start : start + 1000]:
                pipe.xadd(stream, {"i": event_id, "e": data})
            await pipe.execute()
    await client.xgroup_create(stream, "g", id="0")
    done = 0
    t0 = time.perf_counter()
    while done < n:
        reply: Any = await client.xreadgroup("g", "c1", {stream: ">"}, count=BATCH)
        entries: Any = reply[stream.encode()][0] if isinstance(reply, dict) else reply[0][1]
        if decode:
            for _, fields in entries:
                Event.from_json(fields[b"e"])
        await client.xack(stream, "g", *[entry_id for entry_id, _ in entries])
        done += len(entries)
    elapsed = time.perf_counter() - t0
    await client.aclose()
    return n / elapsed


async def raw_group_consume_decoded(url: str, keys: Keys, n: int) -> float:
    return await raw_group_consume(url, keys, n, decode=True)


async def _filled_bus(url: str, keys: Keys, n: int) -> RedisBusBackend:
    backend = RedisBusBackend(url, prefix=keys.prefix())
    await backend.create_group("g", start="earliest")
    events = make_events(n)
    for start in range(0, n, 1000):
        await backend.append(events[start : start + 1000])
    return backend


async def ep_receive_ack(url: str, keys: Keys, n: int) -> float:
    backend = await _filled_bus(url, keys, n)
    done = 0
    t0 = time.perf_counter()
    while done < n:
        got = await backend.receive("g", "c1", max_count=BATCH, visibility_timeout=30, wait=1)
        await backend.ack("g", [d.receipt for d in got])
        done += len(got)
    elapsed = time.perf_counter() - t0
    await backend.aclose()
    return n / elapsed


async def ep_consumer(url: str, keys: Keys, n: int) -> float:
    backend = await _filled_bus(url, keys, n)
    finished = asyncio.Event()
    count = 0

    async def handler(events: list[Event]) -> None:
        nonlocal count
        count += len(events)
        if count >= n:
            finished.set()

    async with EventBus(backend) as bus:
        t0 = time.perf_counter()
        await bus.consume_batches("g", handler, batch_size=BATCH)
        await finished.wait()
        return n / (time.perf_counter() - t0)


# -- end to end ----------------------------------------------------------------------------


async def broadcaster_e2e(url: str, keys: Keys, n: int) -> float:
    from broadcaster import Broadcast

    channel = keys.prefix() + ":chan"
    messages = [e.to_json().decode() for e in make_events(n)]
    async with Broadcast(url) as broadcast, broadcast.subscribe(channel) as subscriber:
        # Re-arm the listener: it ran before the SUBSCRIBE completed and went idle.
        broadcast._backend._ready.set()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        got = 0

        async def receive() -> None:
            nonlocal got
            async for _ in subscriber:  # type: ignore[union-attr]
                got += 1
                if got == n:
                    return

        t0 = time.perf_counter()
        task = asyncio.ensure_future(receive())
        for message in messages:
            await broadcast.publish(channel, message)
        await asyncio.wait_for(task, 60)
        return n / (time.perf_counter() - t0)


async def faststream_e2e(url: str, keys: Keys, n: int) -> float:
    from faststream.redis import RedisBroker

    channel = keys.prefix() + ":fs"
    broker = RedisBroker(url, logger=None)  # type: ignore[arg-type]
    finished = asyncio.Event()
    got = 0

    @broker.subscriber(channel)
    async def handle(body: dict[str, Any]) -> None:
        nonlocal got
        got += 1
        if got == n:
            finished.set()

    payloads = [e.to_dict() for e in make_events(n)]
    await broker.start()
    try:
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        for payload in payloads:
            await broker.publish(payload, channel=channel)
        await asyncio.wait_for(finished.wait(), 60)
        return n / (time.perf_counter() - t0)
    finally:
        await broker.stop()


async def _ep_e2e(url: str, keys: Keys, n: int, *, batch: bool) -> float:
    events = make_events(n)
    backend = RedisBusBackend(url, prefix=keys.prefix())
    async with EventBus(backend) as bus, bus.subscribe() as sub:
        got = 0

        async def receive() -> None:
            nonlocal got
            async for _ in sub:
                got += 1
                if got == n:
                    return

        t0 = time.perf_counter()
        task = asyncio.ensure_future(receive())
        if batch:
            for start in range(0, n, BATCH):
                await bus.publish_batch(events[start : start + BATCH])
        else:
            for event in events:
                await bus.publish(event)
        await asyncio.wait_for(task, 60)
        return n / (time.perf_counter() - t0)


async def ep_e2e_batch(url: str, keys: Keys, n: int) -> float:
    return await _ep_e2e(url, keys, n, batch=True)


async def ep_e2e_single(url: str, keys: Keys, n: int) -> float:
    return await _ep_e2e(url, keys, n, batch=False)


async def ep_e2e_group(url: str, keys: Keys, n: int) -> float:
    events = make_events(n)
    finished = asyncio.Event()
    count = 0

    async def handler(batch: list[Event]) -> None:
        nonlocal count
        count += len(batch)
        if count >= n:
            finished.set()

    async with EventBus(RedisBusBackend(url, prefix=keys.prefix())) as bus:
        await bus.consume_batches("g", handler, batch_size=BATCH)
        t0 = time.perf_counter()
        for start in range(0, n, BATCH):
            await bus.publish_batch(events[start : start + BATCH])
        await asyncio.wait_for(finished.wait(), 60)
        return n / (time.perf_counter() - t0)


# -- driver ---------------------------------------------------------------------------------

Scenario = Callable[[str, Keys, int], Awaitable[float]]

SCENARIOS: list[tuple[str, str, Scenario]] = [
    ("publish", "raw redis-py pipelined XADD (x100)", raw_pipelined_xadd),
    ("publish", "raw redis-py XADD one by one", raw_single_xadd),
    ("publish", "eventpatterns publish_batch (x100)", ep_publish_batch),
    ("publish", "eventpatterns publish one by one", ep_publish_single),
    ("consume", "raw XREADGROUP COUNT 100 + XACK", raw_group_consume),
    ("consume", "raw XREADGROUP + XACK + Event.from_json", raw_group_consume_decoded),
    ("consume", "eventpatterns backend receive + ack", ep_receive_ack),
    ("consume", "eventpatterns consumer (batch_size=100)", ep_consumer),
    ("e2e", "broadcaster 0.3 redis:// (re-armed)", broadcaster_e2e),
    ("e2e", "FastStream RedisBroker channel", faststream_e2e),
    ("e2e", "eventpatterns subscribe, publish_batch", ep_e2e_batch),
    ("e2e", "eventpatterns subscribe, publish", ep_e2e_single),
    ("e2e", "eventpatterns consumer group, publish_batch", ep_e2e_group),
]

TARGETS = [
    # (what, measured, baseline, target ratio)
    (
        "batch publish",
        "eventpatterns publish_batch (x100)",
        "raw redis-py pipelined XADD (x100)",
        0.9,
    ),
    (
        "durable consume",
        "eventpatterns consumer (batch_size=100)",
        "raw XREADGROUP COUNT 100 + XACK",
        0.7,
    ),
    (
        "end-to-end delivered",
        "eventpatterns subscribe, publish_batch",
        "FastStream RedisBroker channel",
        5.0,
    ),
]


async def run(
    url: str, n: int, repeat: int, only: str | None, kinds: list[str] | None, targets: bool
) -> list[dict[str, Any]]:
    client = aredis.Redis.from_url(url)
    keys = Keys(client)
    rows = []
    try:
        for kind, name, scenario in SCENARIOS:
            if (only and only not in name) or (kinds and kind not in kinds):
                continue
            if targets and not any(name in (m, b) for _, m, b, _ in TARGETS):
                continue
            best = 0.0
            for _ in range(repeat):
                gc.collect()
                try:
                    best = max(best, await scenario(url, keys, n))
                finally:
                    await keys.cleanup()
            rows.append({"scenario": kind, "name": name, "events_per_s": best})
            print(f"  {name}: {best:,.0f}/s", file=sys.stderr)
    finally:
        await keys.cleanup()
        await client.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", help="run only scenarios whose name contains this")
    parser.add_argument("--out", type=Path, default=RESULTS / "bus_redis.json")
    parser.add_argument(
        "--targets", action="store_true", help="run only the scenarios the targets compare"
    )
    parser.add_argument(
        "--kind",
        action="append",
        choices=sorted({kind for kind, _, _ in SCENARIOS}),
        help="run only scenarios of this kind (repeatable), e.g. --kind consume",
    )
    args = parser.parse_args()
    rows = asyncio.run(run(args.url, args.events, args.repeat, args.only, args.kind, args.targets))
    by_name = {r["name"]: r["events_per_s"] for r in rows}
    width = max(len(r["name"]) for r in rows)
    print(f"{'scenario':<8}  {'name':<{width}}  {'events/s':>10}")
    for r in rows:
        print(f"{r['scenario']:<8}  {r['name']:<{width}}  {r['events_per_s']:>10,.0f}")
    checks = []
    print()
    for what, measured, baseline, target in TARGETS:
        if measured in by_name and baseline in by_name:
            ratio = by_name[measured] / by_name[baseline]
            ok = ratio >= target
            checks.append({"target": what, "ratio": ratio, "wanted": target, "met": ok})
            print(
                f"{what}: {ratio:.2f}x {baseline} (target >= {target}x) {'OK' if ok else 'MISSED'}"
            )
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "benchmark": "bus_redis",
                "events": args.events,
                "repeat": args.repeat,
                "python": sys.version.split()[0],
                "platform": platform.platform(),
                "cpus": os.cpu_count(),
                "rows": rows,
                "targets": checks,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
