"""The claim check: large data goes to a blob store and comes back, on memory and Redis."""

from __future__ import annotations

import pytest

from eventpatterns import Event, EventBus, Retry
from eventpatterns.backends.memory import MemoryBlobStore, MemoryBusBackend
from eventpatterns.bus import DATAREF, ClaimCheck
from eventpatterns.core import EventModel, EventRegistry
from eventpatterns.errors import ArgumentTypeError, ConfigurationError, EventTooLarge
from eventpatterns.testing import eventually

pytestmark = pytest.mark.anyio

BIG = {"frames": ["x" * 100] * 60}  # about 6 KB of JSON


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def big_event(**kw: object) -> Event:
    return Event(type="render.done", source="/render", data=kw.pop("data", BIG), **kw)  # type: ignore[arg-type]


async def test_large_data_travels_by_reference_and_comes_back_to_subscribers() -> None:
    blobs = MemoryBlobStore()
    claims = ClaimCheck(blobs, threshold=2000)
    backend = MemoryBusBackend()
    async with EventBus(backend, claim_check=claims) as bus:
        async with bus.subscribe({"type": ["render.done"]}) as sub:
            position = await bus.publish(big_event(id="e1"))
            small = await bus.publish(big_event(id="e2", data={"n": 1}))
            got = await sub.receive()
            assert (got.id, got.data) == ("e1", BIG)
            assert (await sub.receive()).data == {"n": 1}
        (stored, plain) = await backend.read(None, limit=10)
        assert stored.position == position
        assert stored.event.data is None
        assert str(stored.event.extensions[DATAREF]).startswith("urn:eventpatterns:blob:claims/")
        assert len(stored.event.to_json()) < 500  # the log holds the reference only
        assert plain.position == small
        assert DATAREF not in plain.event.extensions
        assert (claims.offloaded, claims.fetched) == (1, 1)


async def test_consumers_get_the_data_and_can_opt_out_to_read_dataref_themselves() -> None:
    claims = ClaimCheck(MemoryBlobStore(), threshold=2000)
    fetched: list[Event] = []
    raw: list[Event] = []

    async def handle(event: Event) -> None:
        fetched.append(event)

    async def handle_raw(events: list[Event]) -> None:
        raw.extend(events)

    async with EventBus.from_url("memory://", claim_check=claims) as bus:
        await bus.consume("full", handle)
        await bus.consume_batches("refs", handle_raw, fetch_claims=False)
        async with bus.subscribe(fetch_claims=False) as sub:
            await bus.publish_batch([big_event(), big_event(data=b"\x00\xff" * 2000)])
            assert (await sub.receive()).data is None
        await eventually(lambda: len(fetched) == 2 and len(raw) == 2)
    assert fetched[0].data == BIG
    assert fetched[1].data == b"\x00\xff" * 2000
    assert [e.data for e in raw] == [None, None]
    assert all(DATAREF in e.extensions for e in raw)


async def test_text_data_keeps_its_media_type_and_typed_events_work_too() -> None:
    registry = EventRegistry()

    class Report(EventModel, type="report.ready", source="/reports", registry=registry):
        body: str

    claims = ClaimCheck(MemoryBlobStore(), threshold=1000)
    bus = EventBus.from_url("memory://", claim_check=claims)
    async with bus, bus.subscribe(Report) as reports, bus.subscribe({"type": ["note"]}) as notes:
        await bus.publish(Report(body="y" * 5000))
        await bus.publish(
            Event(type="note", source="/n", data="z" * 3000, datacontenttype="text/plain")
        )
        assert (await reports.receive()).body == "y" * 5000
        note = await notes.receive()
        assert (note.data, note.datacontenttype) == ("z" * 3000, "text/plain")


async def test_an_event_over_the_backends_limit_is_offloaded_or_refused() -> None:
    backend = MemoryBusBackend(max_message_size=3000)
    claims = ClaimCheck(MemoryBlobStore(), threshold=10**9)  # only the hard limit applies
    async with EventBus(backend, claim_check=claims) as bus, bus.subscribe() as sub:
        await bus.publish(big_event())
        assert (await sub.receive()).data == BIG
    async with EventBus(MemoryBusBackend(max_message_size=3000)) as bus:
        with pytest.raises(EventTooLarge, match="3000"):
            await bus.publish(big_event())


async def test_gone_data_is_dead_lettered_by_consumers_and_named_to_subscribers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    blobs = MemoryBlobStore()
    claims = ClaimCheck(blobs, threshold=2000)
    handled: list[Event] = []

    async def handle(event: Event) -> None:
        handled.append(event)

    async with EventBus.from_url("memory://", claim_check=claims) as bus:
        async with bus.subscribe() as sub:
            event = await ClaimCheck(blobs, threshold=2000).offload(big_event(), limit=None)
            await blobs.delete(str(event.extensions[DATAREF]).rsplit(":", 1)[1])
            consumer = await bus.consume("g", handle, start="earliest", retry=Retry(max_attempts=1))
            await bus.publish(event)
            got = await sub.receive()
            assert got.data is None
            assert DATAREF in got.extensions
            await eventually(lambda: consumer.stats.dead_lettered == 1)
        (dead,) = await bus.dead_letters("g")
        assert "BlobNotFound" in (dead.error or "")
        assert handled == []
    assert "claim-checked data is gone" in caplog.text


def test_bad_claim_check_options_are_refused() -> None:
    for kwargs in ({"threshold": 0}, {"threshold": True}, {"ttl": 0}, {"ttl": float("nan")}):
        with pytest.raises(ConfigurationError):
            ClaimCheck(MemoryBlobStore(), **kwargs)
    with pytest.raises(ArgumentTypeError, match="claim_check"):
        EventBus(MemoryBusBackend(), claim_check=object())  # type: ignore[arg-type]


async def test_an_event_already_carrying_a_dataref_or_no_data_is_left_alone() -> None:
    claims = ClaimCheck(MemoryBlobStore(), threshold=1)
    foreign = big_event(extensions={DATAREF: "https://elsewhere/blob"})
    assert await claims.offload(foreign, limit=None) is foreign
    empty = Event(type="t", source="/s")
    assert await claims.offload(empty, limit=None) is empty
    assert await claims.fetch(foreign) is foreign
