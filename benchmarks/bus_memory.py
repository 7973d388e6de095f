"""Benchmark: the in-memory event bus against raw asyncio.Queue fan-out and peers.

Run: ``python benchmarks/bus_memory.py [--events 100000] [--repeat 3]``

Scenarios, each measured in the same run:

* fan-out to 1 and 10 live subscribers (deliveries/s = events x subscribers / time):
  raw ``asyncio.Queue`` per subscriber (the ceiling), encode/broadcaster's
  ``memory://``, pyee, anyio memory object streams, and eventpatterns' EventBus with
  its log and a server-side filter (an EventBridge pattern) in the path;
* a durable consumer group (one consumer, ack per batch) against a raw
  ``asyncio.Queue`` producer/consumer.

The best of ``--repeat`` runs is reported, with ratios to each baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import AsyncIterable, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).parent))

from _common import now, print_table, write_results

from eventpatterns import Event, EventBus
from eventpatterns.bus import Subscription

PATTERN = {"type": ["bench.tick"]}


def make_events(n: int) -> list[Event]:
    return [Event(type="bench.tick", source="/bench", data={"n": i}) for i in range(n)]


# -- baselines ------------------------------------------------------------------------


async def raw_queue(n: int, subs: int) -> float:
    queues: list[asyncio.Queue[object]] = [asyncio.Queue() for _ in range(subs)]
    msgs = list(range(n))

    async def reader(q: asyncio.Queue[object]) -> None:
        for _ in range(n):
            await q.get()

    tasks = [asyncio.create_task(reader(q)) for q in queues]
    await asyncio.sleep(0)
    t0 = now()
    for m in msgs:
        for q in queues:
            q.put_nowait(m)
    await asyncio.gather(*tasks)
    return now() - t0


async def broadcaster_memory(n: int, subs: int) -> float:
    from broadcaster import Broadcast

    ready = asyncio.Event()
    count = 0

    async with Broadcast("memory://") as broadcast:

        async def reader() -> None:
            nonlocal count
            async with broadcast.subscribe(channel="bench") as sub:
                count += 1
                if count == subs:
                    ready.set()
                received = 0
                # broadcaster annotates Subscriber.__aiter__ as returning "... | None".
                async for _ in cast("AsyncIterable[object]", sub):
                    received += 1
                    if received == n:
                        return

        tasks = [asyncio.create_task(reader()) for _ in range(subs)]
        await ready.wait()
        t0 = now()
        for i in range(n):
            await broadcast.publish(channel="bench", message=str(i))
        await asyncio.gather(*tasks)
        return now() - t0


async def pyee_emitter(n: int, subs: int) -> float:
    from pyee.asyncio import AsyncIOEventEmitter

    emitter = AsyncIOEventEmitter()
    done = asyncio.Event()
    received = 0
    total = n * subs

    def make_listener() -> Callable[[object], None]:
        def listener(_: object) -> None:  # pyee keeps one registration per function
            nonlocal received
            received += 1
            if received == total:
                done.set()

        return listener

    for _ in range(subs):
        emitter.on("tick", make_listener())
    t0 = now()
    for i in range(n):
        emitter.emit("tick", i)
        await asyncio.sleep(0)
    await done.wait()
    return now() - t0


async def anyio_streams(n: int, subs: int) -> float:
    import anyio

    pairs = [anyio.create_memory_object_stream[int](max_buffer_size=1000) for _ in range(subs)]

    async def reader(stream: anyio.abc.ObjectReceiveStream[int]) -> None:
        async with stream:
            async for _ in stream:
                pass

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _, recv in pairs:
            tg.start_soon(reader, recv)
        for i in range(n):
            for send, _ in pairs:
                await send.send(i)
        for send, _ in pairs:
            await send.aclose()
    return now() - t0


async def raw_queue_consumer(n: int) -> float:
    q: asyncio.Queue[object] = asyncio.Queue()
    done = asyncio.Event()
    count = 0

    async def worker() -> None:
        nonlocal count
        while True:
            await q.get()
            q.task_done()
            count += 1
            if count == n:
                done.set()
                return

    task = asyncio.create_task(worker())
    t0 = now()
    for i in range(n):
        q.put_nowait(i)
    await done.wait()
    await task
    return now() - t0


# -- eventpatterns --------------------------------------------------------------------


async def eventbus_fanout(n: int, subs: int, *, batch: bool = False) -> float:
    events = make_events(n)
    async with EventBus.from_url("memory://", max_entries=n + 1) as bus:
        subscriptions = []
        for _ in range(subs):
            sub = bus.subscribe(PATTERN, buffer=n)
            await sub.__aenter__()
            subscriptions.append(sub)

        async def reader(sub: Subscription) -> None:
            received = 0
            async for _ in sub:
                received += 1
                if received == n:
                    return

        tasks = [asyncio.create_task(reader(s)) for s in subscriptions]
        t0 = now()
        if batch:
            for i in range(0, n, 100):
                await bus.publish_batch(events[i : i + 100])
        else:
            for event in events:
                await bus.publish(event)
        await asyncio.gather(*tasks)
        return now() - t0


async def eventbus_consumer(n: int) -> float:
    events = make_events(n)
    done = asyncio.Event()
    count = 0

    async def handler(_: Event) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    async with EventBus.from_url("memory://", max_entries=n + 1) as bus:
        await bus.consume("bench", handler, pattern=PATTERN, prefetch=100)
        t0 = now()
        for event in events:
            await bus.publish(event)
        await done.wait()
        return now() - t0


async def eventbus_distinct_patterns(
    n: int, subs: int, *, index: bool, threshold: int = 8
) -> float:
    """``subs`` subscribers, each with its own pattern; each event matches one of them."""
    from eventpatterns.bus import _reader

    saved = _reader.INDEX_THRESHOLD
    _reader.INDEX_THRESHOLD = threshold if index else 10**9
    events = [
        Event(type="bench.tick", source="/bench", data={"user": f"u{i % subs}", "n": i})
        for i in range(n)
    ]
    try:
        async with EventBus.from_url("memory://", max_entries=n + 1) as bus:
            subscriptions = []
            for i in range(subs):
                sub = bus.subscribe({"data": {"user": [f"u{i}"]}}, buffer=n)
                await sub.__aenter__()
                subscriptions.append(sub)
            per_sub = n // subs

            async def reader(sub: Subscription) -> None:
                for _ in range(per_sub):
                    await sub.receive()

            tasks = [asyncio.create_task(reader(s)) for s in subscriptions]
            t0 = now()
            for i in range(0, n, 100):
                await bus.publish_batch(events[i : i + 100])
            await asyncio.gather(*tasks)
            return now() - t0
    finally:
        _reader.INDEX_THRESHOLD = saved


async def best_of(repeat: int, fn: Callable[[], Awaitable[float]]) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        times.append(await fn())
    return min(times)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--skip-slow-peers", action="store_true", help="skip anyio streams and pyee"
    )
    args = parser.parse_args()
    n, repeat = args.events, args.repeat
    rows: list[dict[str, object]] = []
    for subs in (1, 10):
        contenders: dict[str, Callable[[], Awaitable[float]]] = {
            "raw asyncio.Queue": partial(raw_queue, n, subs),
            "broadcaster memory://": partial(broadcaster_memory, n, subs),
            "eventpatterns publish": partial(eventbus_fanout, n, subs),
            "eventpatterns publish_batch(100)": partial(eventbus_fanout, n, subs, batch=True),
        }
        if not args.skip_slow_peers:
            contenders["pyee"] = partial(pyee_emitter, n, subs)
            contenders["anyio memory streams"] = partial(anyio_streams, n // 10, subs)
        rates = {}
        for name, fn in contenders.items():
            events = n // 10 if name == "anyio memory streams" else n
            elapsed = await best_of(repeat, fn)
            rates[name] = events * subs / elapsed
        for name, rate in rates.items():
            rows.append(
                {
                    "scenario": f"fan-out x{subs}",
                    "contender": name,
                    "deliveries/s": rate,
                    "vs raw queue": rate / rates["raw asyncio.Queue"],
                    "vs broadcaster": rate / rates["broadcaster memory://"],
                }
            )
    raw = n / await best_of(repeat, lambda: raw_queue_consumer(n))
    ours = n / await best_of(repeat, lambda: eventbus_consumer(n))
    rows.append(
        {
            "scenario": "consumer group",
            "contender": "raw asyncio.Queue",
            "deliveries/s": raw,
            "vs raw queue": 1.0,
        }
    )
    rows.append(
        {
            "scenario": "consumer group",
            "contender": "eventpatterns consume",
            "deliveries/s": ours,
            "vs raw queue": ours / raw,
        }
    )
    for subs in (100, 1000):
        m = max(n // 10, subs * 10)
        looped = m / await best_of(
            repeat, partial(eventbus_distinct_patterns, m, subs, index=False)
        )
        indexed = m / await best_of(
            repeat, partial(eventbus_distinct_patterns, m, subs, index=True)
        )
        for name, rate in (("one matcher per pattern", looped), ("PatternIndex", indexed)):
            rows.append(
                {
                    "scenario": f"{subs} distinct patterns",
                    "contender": f"eventpatterns, {name}",
                    "deliveries/s": rate,
                    "vs raw queue": "",
                    "vs broadcaster": "",
                    "index / loop": indexed / looped if name == "PatternIndex" else 1.0,
                }
            )
    print(f"{n:,} events, best of {repeat}; eventpatterns runs with its log and a filter\n")
    print_table(
        rows,
        ["scenario", "contender", "deliveries/s", "vs raw queue", "vs broadcaster", "index / loop"],
    )
    path = write_results("bus_memory", rows, {"events": n, "repeat": repeat})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    asyncio.run(main())
