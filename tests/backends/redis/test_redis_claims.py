"""The claim check on the Redis bus: the stream holds the reference, consumers the data."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis_helpers import REDIS_URL

from eventpatterns import Event, EventBus
from eventpatterns.backends.filesystem import FileBlobStore
from eventpatterns.bus import DATAREF, ClaimCheck
from eventpatterns.testing import eventually

pytestmark = pytest.mark.anyio


async def test_a_large_event_crosses_redis_by_reference(prefix: str, tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    claims = ClaimCheck(blobs, threshold=4096)
    data = {"rows": [{"i": i, "text": "é" * 50} for i in range(200)]}
    got: list[Event] = []

    async def handle(event: Event) -> None:
        got.append(event)

    url = f"{REDIS_URL}?prefix={prefix}"
    async with EventBus.from_url(url, claim_check=claims) as bus:
        await bus.consume("readers", handle)
        async with bus.subscribe() as sub:
            position = await bus.publish(Event(type="report", source="/r", data=data))
            assert (await sub.receive()).data == data
        await eventually(lambda: len(got) == 1)
        (entry,) = await bus.backend.read(None, limit=5)
        assert entry.event.data is None
        assert str(entry.event.extensions[DATAREF]).startswith("urn:eventpatterns:blob:")
    assert got[0].data == data
    # a bus without the claim check (another service) reads the reference, not the data
    async with EventBus.from_url(url) as plain, plain.subscribe(since=position) as raw:
        await plain.publish(Event(type="after", source="/r"))
        assert (await raw.receive()).type == "after"
        (first, _) = await plain.backend.read(None, limit=5)
        assert first.event.extensions[DATAREF] == entry.event.extensions[DATAREF]
