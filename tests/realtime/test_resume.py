"""Resume with ``since``: every missed event once, then live; bad positions resync."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.realtime import Gateway, Limits, MemoryTransport

from .conftest import client, frames_until, subscribe

pytestmark = pytest.mark.anyio


def numbered(start: int, count: int) -> list[Event]:
    return [Event(type="t", source="/r", data={"n": n}) for n in range(start, start + count)]


async def receive_events(t: MemoryTransport, until_n: int, *, seconds: float = 10) -> list[Any]:
    """Event frames up to and including the one whose data.n is ``until_n``."""
    out = []
    with anyio.fail_after(seconds):
        while True:
            frame = await t.receive()
            assert frame["type"] == "event", frame
            out.append(frame)
            if frame["event"]["data"]["n"] == until_n:
                return out


@pytest.mark.parametrize("pattern", [None, {"data": {"n": [{"numeric": [">=", 0]}]}}])
async def test_resume_has_no_gap_and_no_duplicate_while_events_keep_coming(
    pattern: dict[str, Any] | None,
) -> None:
    # Small pages and a small live buffer: the replay overflows its buffer and
    # re-reads from the log, the hardest path of the merge.
    limits = Limits(replay_page=7, replay_buffer=5)
    async with EventBus.from_url("memory://") as bus, Gateway(bus, limits=limits) as gw:
        conn, t = await client(gw)
        fields = {} if pattern is None else {"pattern": pattern}
        await subscribe(conn, t, "s1", **fields)
        await bus.publish_batch(numbered(0, 100))
        seen = await receive_events(t, 99)
        last = seen[50]["position"]  # the client saw 0..50, then its connection dropped
        conn.disconnected()
        await bus.publish_batch(numbered(100, 100))  # missed while away

        conn2, t2 = await client(gw)

        async def publish_during_replay() -> None:
            for start in range(200, 500, 25):
                await bus.publish_batch(numbered(start, 25))
                await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            tg.start_soon(publish_during_replay)
            answer = await subscribe(conn2, t2, "s1", since=last, **fields)
        assert answer == {"type": "subscribed", "id": "s1", "position": last}
        got = await receive_events(t2, 499)
        numbers = Counter(f["event"]["data"]["n"] for f in got)
        duplicates = sum(c - 1 for c in numbers.values() if c > 1)
        missing = set(range(51, 500)) - set(numbers)
        assert (duplicates, len(missing)) == (0, 0)
        assert [f["event"]["data"]["n"] for f in got] == list(range(51, 500))  # in order
        assert gw.stats().replaying == 0  # it joined the direct path
        await bus.publish(Event(type="t", source="/r", data={"n": 500}))
        [live] = await receive_events(t2, 500)
        assert live["position"] > got[-1]["position"] or live["position"] != got[-1]["position"]


async def test_subscribed_position_lets_a_client_that_got_nothing_resume() -> None:
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gw:
        watcher, wt = await client(gw)
        await subscribe(watcher, wt, "all")
        await bus.publish_batch(numbered(0, 3))
        await receive_events(wt, 2)
        conn, t = await client(gw)
        answer = await subscribe(conn, t, "only-odd", pattern={"data": {"n": [7]}})
        head = answer["position"]
        assert head is not None
        conn.disconnected()  # before anything matched
        await bus.publish_batch(numbered(3, 10))
        conn2, t2 = await client(gw)
        await subscribe(conn2, t2, "only-odd", pattern={"data": {"n": [7]}}, since=head)
        [frame] = await receive_events(t2, 7)
        assert frame["event"]["data"]["n"] == 7
        assert t2.drain() == []


async def test_since_earliest_replays_everything() -> None:
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gw:
        await bus.publish_batch(numbered(0, 5))
        conn, t = await client(gw)
        await subscribe(conn, t, "s", since="earliest")
        got = await receive_events(t, 4)
        assert [f["event"]["data"]["n"] for f in got] == [0, 1, 2, 3, 4]


async def test_positions_the_log_cannot_resume_from_get_resync_required() -> None:
    backend = MemoryBusBackend(max_entries=10, epoch="one")
    async with EventBus(backend) as bus, Gateway(bus) as gw:
        positions = await bus.publish_batch(numbered(0, 30))
        # Let the gateway's reader route them first: one that fell behind the 10 entries
        # kept reports a loss, and a resume then ends in resync-required, to be safe.
        with anyio.fail_after(5):
            while gw.stats().position != positions[-1]:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        conn, t = await client(gw)
        cases = {
            "expired": (positions[0], "position_expired"),
            "stale": ("two:3", "stale_position"),
            "malformed": ("garbage", "invalid_position"),
            "beyond": ("one:9999", "invalid_position"),
        }
        for sid, (since, reason) in cases.items():
            await conn.receive(f'{{"type":"subscribe","id":"{sid}","since":"{since}"}}')
            [frame] = await frames_until(t, 1)
            assert frame == {
                "type": "resync-required", "id": sid, "reason": reason, "position": None,
            }  # fmt: skip
        # The ids are free again, and the connection is fine.
        assert (await subscribe(conn, t, "expired", since=positions[-5]))["type"] == "subscribed"
        got = await receive_events(t, 29)
        assert [f["event"]["data"]["n"] for f in got] == [26, 27, 28, 29]
        assert gw.stats().resyncs == 4


async def test_a_replay_ahead_of_the_gateways_reader_delivers_nothing_twice() -> None:
    # The replay reads the log directly; the gateway's reader may not have routed those
    # entries yet (it lags the log: on Redis by a round trip). Joining the direct path
    # before the reader passed them delivered them a second time (found by the
    # three-gateway SIGKILL test on Redis).
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gw:
        positions = await bus.publish_batch(numbered(0, 10))
        conn, t = await client(gw)  # no wait: the reader has not routed them yet
        await conn.receive(f'{{"type":"subscribe","id":"s1","since":"{positions[4]}"}}')
        assert (await t.receive())["type"] == "subscribed"
        with anyio.fail_after(5):
            while gw.stats().position != positions[-1]:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        await bus.publish(Event(type="t", source="/r", data={"n": 10}))
        got = await receive_events(t, 10)
        assert [f["event"]["data"]["n"] for f in got] == [5, 6, 7, 8, 9, 10]
