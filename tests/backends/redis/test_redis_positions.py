"""Positions carry the log's epoch; nothing is skipped silently, not even from ``None``."""

from __future__ import annotations

import re

import anyio
import pytest
import redis.asyncio
from redis_helpers import REDIS_URL, blocked_read, tagged

from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.bus import Gap
from eventpatterns.errors import InvalidPosition, PositionExpired, StalePosition
from eventpatterns.testing import ManualClock, make_events

pytestmark = pytest.mark.redis

POSITION = re.compile(r"[0-9a-f]{8}:[0-9]+-[0-9]+")


@pytest.mark.parametrize(
    "bad",
    ["42", "1700000000000-0", "1a2b3c4d:1-2-3", "1a2b3c4d:01-0", "1A2B3C4D:1-0",
     "1a2b3c4:1-0", "1a2b3c4d:-1-0", "1a2b3c4d:", ":1-0", ""],
)  # fmt: skip
def test_malformed_positions_are_invalid(bad: str) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix="unused")
    with pytest.raises(InvalidPosition):
        backend.sort_key(bad)


def test_sort_key_orders_stream_ids() -> None:
    backend = RedisBusBackend(REDIS_URL, prefix="unused")
    key = backend.sort_key
    assert key("1a2b3c4d:1700000000000-0") < key("1a2b3c4d:1700000000000-1")
    assert key("1a2b3c4d:999-9") < key("1a2b3c4d:1000-0")


@pytest.mark.anyio
async def test_every_position_carries_the_same_epoch(prefix: str, clock: ManualClock) -> None:
    async with EventBus(RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)) as bus:
        backend = bus.backend
        await bus.create_group("g", start="earliest")
        events = make_events(3)
        published = await bus.publish_batch(events)
        again = await bus.publish(events[0])  # a duplicate: the original position
        read = [e.position for e in await backend.read(None, limit=10)]
        (d, *_) = await backend.receive("g", "c", max_count=10, visibility_timeout=5, wait=0)
        letter = await backend.dead_letter("g", d.receipt, error="manual")
        (listed,) = await backend.dead_letters("g", limit=10)
        positions = [*published, again, *read, d.position, letter.position, listed.position]
        assert all(POSITION.fullmatch(p) for p in positions), positions
        assert len({p.partition(":")[0] for p in positions}) == 1
        assert await backend.last_position() == published[-1] == read[-1]
        assert again == published[0] == d.position == letter.position == listed.position
        other = RedisBusBackend(REDIS_URL, prefix=prefix)  # another process, same bus
        try:
            assert await other.last_position() == published[-1]
        finally:
            await other.aclose()


@pytest.mark.anyio
async def test_positions_of_a_deleted_log_are_stale(prefix: str) -> None:
    async with EventBus(RedisBusBackend(REDIS_URL, prefix=prefix)) as bus:
        event = make_events(1)[0]
        old = await bus.publish(event)
        # The log and its meta hash go (not the dedupe records): the log starts over,
        # with a new epoch from the next append.
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        await client.delete(tagged(prefix, "log"), tagged(prefix, "meta"))
        await client.aclose()
        new = await bus.publish(make_events(1, start=1)[0])
        epoch = new.partition(":")[0]
        assert epoch != old.partition(":")[0]
        with pytest.raises(StalePosition) as info:
            await bus.backend.read(old, limit=10)
        assert (info.value.position, info.value.epoch) == (old, epoch)
        with pytest.raises(StalePosition):
            bus.backend.sort_key(old)
        with pytest.raises(StalePosition):
            async with bus.subscribe(since=old):
                pass
        # The same event id again is no duplicate of the old log's entry.
        assert await bus.publish(event) not in (old, new)


@pytest.mark.anyio
async def test_a_position_beyond_the_end_is_invalid(prefix: str) -> None:
    async with EventBus(RedisBusBackend(REDIS_URL, prefix=prefix)) as bus:
        last = await bus.publish(make_events(1)[0])
        epoch, _, stream_id = last.partition(":")
        ms, _, seq = stream_id.partition("-")
        beyond = f"{epoch}:{int(ms) + 1000}-0"
        for position in (beyond, f"{epoch}:{ms}-{int(seq) + 1}"):
            with pytest.raises(InvalidPosition, match="beyond the end"):
                await bus.backend.read(position, limit=10)
            with pytest.raises(InvalidPosition, match="beyond the end"):
                async with bus.subscribe(since=position):
                    pass
        assert await bus.backend.read(last, limit=10) == []


@pytest.mark.anyio
async def test_last_trimmed_position_is_not_expired(prefix: str) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, max_entries=10)
    async with EventBus(backend) as bus:
        positions = await bus.publish_batch(make_events(20))
        # Exactly like memory: reading after the newest trimmed entry misses nothing.
        entries = await backend.read(positions[9], limit=100)
        assert [e.position for e in entries] == positions[10:]
        with pytest.raises(PositionExpired) as info:
            await backend.read(positions[8], limit=100)
        assert (info.value.position, info.value.oldest) == (positions[8], positions[10])
        assert len(await backend.read(None, limit=100)) == 10


@pytest.mark.anyio
async def test_read_from_none_raises_when_a_trim_outruns_the_wait(prefix: str) -> None:
    # Named connections: the test waits until its own read is blocked.
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, max_entries=10, client_name=prefix)
    outcome: list[BaseException | int] = []
    try:
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                try:
                    outcome.append(len(await backend.read(None, limit=100, wait=30)))
                except PositionExpired as exc:
                    outcome.append(exc)

            tg.start_soon(reader)
            await blocked_read(prefix)
            positions = await backend.append(make_events(25))
        (error,) = outcome
        assert isinstance(error, PositionExpired)
        assert error.oldest == positions[15]
        assert len(await backend.read(None, limit=100)) == 10  # then from what is left
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_burst_on_a_fresh_log_reaches_subscribers_as_a_gap(prefix: str) -> None:
    events = make_events(25)
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, max_entries=10)
    async with EventBus(backend) as bus, bus.subscribe() as sub:
        await bus.publish_batch(events)  # before the bus's reader read anything
        with anyio.fail_after(10):
            items = sub.items()
            first = await anext(items)
            rest = [await anext(items) for _ in range(10)]
    assert isinstance(first, Gap)
    assert rest == events[15:]
    assert all(isinstance(e, Event) for e in rest)


@pytest.mark.anyio
async def test_deliveries_get_a_new_epoch_when_only_the_meta_hash_is_gone(
    prefix: str, clock: ManualClock, raw: redis.asyncio.Redis
) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
    try:
        await backend.create_group("g", start="latest")
        (old,) = await backend.append(make_events(1))
        await raw.delete(tagged(prefix, "meta"))  # as if evicted: the groups live on
        await backend.append(make_events(1, start=1))  # sets a new epoch
        await raw.hdel(tagged(prefix, "meta"), "epoch")  # and that one goes too
        a, b = await backend.receive("g", "c", max_count=5, visibility_timeout=5, wait=0)
        letter = await backend.dead_letter("g", a.receipt, error="manual")
        epochs = {p.partition(":")[0] for p in (a.position, b.position, letter.position)}
        assert len(epochs) == 1
        assert all(POSITION.fullmatch(p) for p in (a.position, b.position, letter.position))
        assert epochs != {old.partition(":")[0]}
    finally:
        await backend.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize("from_none", [False, True])
async def test_a_log_deleted_during_a_blocking_read_is_noticed(
    prefix: str, raw: redis.asyncio.Redis, from_none: bool
) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, client_name=prefix)
    outcome: list[object] = []
    try:
        last = (
            await backend.last_position()
            if from_none
            else (await backend.append(make_events(1)))[0]
        )
        async with anyio.create_task_group() as tg:

            async def reader() -> None:
                try:
                    outcome.append(await backend.read(last, limit=10, wait=30))
                except (StalePosition, PositionExpired) as exc:
                    outcome.append(exc)

            tg.start_soon(reader)
            await blocked_read(prefix)
            await raw.delete(tagged(prefix, "log"), tagged(prefix, "meta"))
            other = RedisBusBackend(REDIS_URL, prefix=prefix)  # another process
            try:
                (new,) = await other.append(make_events(1))
            finally:
                await other.aclose()
        (error,) = outcome
        expected = PositionExpired if from_none else StalePosition
        assert type(error) is expected, error
        if isinstance(error, StalePosition):
            assert (error.position, error.epoch) == (last, new.partition(":")[0])
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_reading_on_from_the_last_position_read_checks_what_may_have_changed(
    prefix: str, clock: ManualClock
) -> None:
    """A read after the newest position returned takes one round trip (XREAD + HMGET)
    and still tells a deleted log and a trimmed one."""
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock, max_entries=2)
    raw = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        first = await backend.append(make_events(1))
        (entry,) = await backend.read(None, limit=10)
        assert entry.position == first[0]
        assert await backend.read(entry.position, limit=10, wait=0.05) == []  # nothing new
        more = await backend.append(make_events(1))
        (newer,) = await backend.read(entry.position, limit=10, wait=0.05)
        assert newer.position == more[0]
        # Trimmed past the position while nobody read: expired, naming the oldest kept.
        kept = await backend.append(make_events(3))
        with pytest.raises(PositionExpired) as expired:
            await backend.read(newer.position, limit=10, wait=0.05)
        assert expired.value.oldest == kept[1]
        # The keys deleted (another log, another epoch): stale.
        assert await backend.last_position() == kept[-1]
        await raw.delete(tagged(prefix, "log"), tagged(prefix, "meta"))
        await backend.append(make_events(1))
        with pytest.raises(StalePosition):
            await backend.read(kept[-1], limit=10, wait=0.05)
        # Deleted and not written again: stale too (the log has no epoch now).
        last = await backend.last_position()
        assert last is not None
        other = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
        try:  # a backend that did not return it reads the checked way: nothing new
            assert await other.read(last, limit=10, wait=0.05) == []
        finally:
            await other.aclose()
        await raw.delete(tagged(prefix, "log"), tagged(prefix, "meta"))
        with pytest.raises(StalePosition):
            await backend.read(last, limit=10, wait=0.05)
    finally:
        await backend.aclose()
        await raw.aclose()
