"""Slow clients: a bounded send buffer per connection, and the configured policy."""

from __future__ import annotations

import gc
import tracemalloc

import anyio
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.realtime import CloseCode, Gateway, Limits

from .conftest import client, frames_until, subscribe

pytestmark = pytest.mark.anyio


def numbered(start: int, count: int, pad: int = 60) -> list[Event]:
    return [
        Event(type="t", source="/b", data={"n": n, "pad": "x" * pad})
        for n in range(start, start + count)
    ]


async def wait_routed(gw: Gateway, position: str) -> None:
    with anyio.fail_after(10):
        while gw.stats().position != position:  # noqa: ASYNC110 - polls what the reader routed
            await anyio.sleep(0.002)


async def test_slow_client_gets_resync_required_and_resumes_what_it_missed() -> None:
    limits = Limits(max_buffered=2000)
    async with EventBus.from_url("memory://") as bus, Gateway(bus, limits=limits) as gw:
        conn, t = await client(gw)
        await subscribe(conn, t, "s")
        fast, ft = await client(gw, "user:fast")
        await subscribe(fast, ft, "s")
        got = []
        for event in numbered(0, 50):
            await bus.publish(event)
            got += await frames_until(ft, 1)  # the fast client reads as it comes: all of it
        assert [f["event"]["data"]["n"] for f in got] == list(range(50))
        frames = t.drain()
        events = [f for f in frames if f["type"] == "event"]
        assert 0 < len(events) < 50
        assert t.sent == 2 + len(events) + 1  # connected, subscribed, events, resync: no more
        resync = frames[-1]
        assert resync == {
            "type": "resync-required", "id": "s", "reason": "overflow",
            "position": events[-1]["position"],
        }  # fmt: skip
        stats = gw.stats()
        assert stats.dropped == 1
        assert stats.resyncs == 1
        assert stats.subscriptions == 1
        # It comes back from where it was: the rest, in order, no duplicate.
        # The replay is paced by the client: it waits while the buffer is full.
        # The client reads while the gateway handles its frame (as a real one does).
        frame = f'{{"type":"subscribe","id":"s","since":"{resync["position"]}"}}'
        async with anyio.create_task_group() as tg:
            tg.start_soon(conn.receive, frame)
            rest = (await frames_until(t, 1 + 50 - len(events)))[1:]
        assert gw.stats().resyncs == 1  # the replay waited for the reader: no second one
        assert [f["event"]["data"]["n"] for f in events + rest] == list(range(50))


async def test_slow_client_is_closed_with_policy_close() -> None:
    limits = Limits(max_buffered=2000, slow_client="close")
    async with EventBus.from_url("memory://") as bus, Gateway(bus, limits=limits) as gw:
        conn, t = await client(gw)
        await subscribe(conn, t, "s")
        await bus.publish_batch(numbered(0, 50))
        with anyio.fail_after(5):
            await conn.wait_closed()
        assert t.close_code == CloseCode.SLOW_CONSUMER
        assert gw.stats().slow_closes == 1
        assert gw.stats().connections == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # the same code on trio; once is enough
async def test_memory_stays_bounded_with_1000_clients_of_which_100_never_read() -> None:
    clients, stalled, events, batch = 1000, 100, 300, 10
    max_buffered = 16 * 1024
    limits = Limits(max_buffered=max_buffered)
    backend = MemoryBusBackend(max_entries=200)  # the log itself stays small too
    async with EventBus(backend) as bus, Gateway(bus, limits=limits) as gw:
        readers = []
        sleepers = []
        for n in range(clients):
            conn, t = await client(gw, f"user:u{n}")
            if n < stalled:
                # Own ids: their frames are their own strings (held only by them).
                await subscribe(conn, t, f"slow{n}")
                sleepers.append(t)
            else:
                await subscribe(conn, t, "live")
                readers.append(t)
        gc.collect()
        tracemalloc.start()
        try:
            baseline = tracemalloc.get_traced_memory()[0]
            received = 0
            for start in range(0, events, batch):
                positions = await bus.publish_batch(numbered(start, batch))
                await wait_routed(gw, positions[-1])
                for t in readers:
                    while (text := t.receive_text()) is not None:
                        received += text.startswith('{"type":"event"')
            _current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert received == events * (clients - stalled)  # every reader got every event
        frame_size = len(sleepers[0].receive_text() or "")
        held = sum(t.buffered_amount() for t in sleepers)
        assert held <= stalled * max_buffered
        unbounded = stalled * events * frame_size
        growth = peak - baseline
        # Bounded by the limits: the sleepers' buffers (strings cost ~50 bytes each
        # beyond their characters) plus what one batch costs in transit.
        bound = 2 * stalled * max_buffered + 2 * 1024 * 1024
        print(
            f"\nmemory: peak growth {growth / 1e6:.2f} MB, held by sleepers {held / 1e6:.2f} MB,"
            f" bound {bound / 1e6:.2f} MB, unbounded would be {unbounded / 1e6:.1f} MB"
        )
        assert growth < bound
        assert unbounded > 2 * growth  # without the bound it would not fit
        stats = gw.stats()
        assert stats.resyncs == stalled
        assert stats.subscriptions == clients - stalled
        for t in sleepers:
            frames = t.drain()
            assert frames[-1]["type"] == "resync-required"
