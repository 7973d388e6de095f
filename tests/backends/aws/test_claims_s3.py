"""The claim check with S3 as its blob store: the data goes to S3 and comes back."""

from __future__ import annotations

import pytest

from eventpatterns import Event, EventBus
from eventpatterns.backends.aws import S3BlobStore
from eventpatterns.bus import DATAREF, ClaimCheck

from .conftest import REGION

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_large_data_goes_to_s3_and_comes_back(aws: str) -> None:
    async with S3BlobStore("claims", region=REGION, endpoint_url=aws, create_bucket=True) as blobs:
        claims = ClaimCheck(blobs, threshold=1024, prefix="events/")
        data = {"items": list(range(2000))}
        async with (
            EventBus.from_url("memory://", claim_check=claims) as bus,
            bus.subscribe() as sub,
        ):
            await bus.publish(Event(type="big", source="/x", data=data))
            assert (await sub.receive()).data == data
            (entry,) = await bus.backend.read(None, limit=1)
        key = str(entry.event.extensions[DATAREF]).removeprefix("urn:eventpatterns:blob:")
        stored = await blobs.get(key)
        assert stored.content_type == "application/json"
        assert stored.expires_at is not None  # it expires with the events' retention


async def test_the_claim_check_carries_large_events_over_eventbridge_and_sqs(aws: str) -> None:
    from eventpatterns.testing import eventually

    async with S3BlobStore("claims2", region=REGION, endpoint_url=aws, create_bucket=True) as blobs:
        claims = ClaimCheck(blobs, threshold=200 * 1024)  # EventBridge takes 256 KiB
        data = {"rows": ["x" * 100] * 4000}  # about 400 KB: over EventBridge's limit
        got: list[Event] = []

        async def handle(event: Event) -> None:
            got.append(event)

        url = f"aws://?region={REGION}&bus=claims&prefix=cc&endpoint_url={aws}&poll=1"
        async with EventBus.from_url(url, claim_check=claims) as bus:
            await bus.create_group("readers")
            await bus.consume("readers", handle)
            async with bus.subscribe({"type": ["big"]}) as sub:
                await bus.publish(Event(type="big", source="/x", data=data))
                assert (await sub.receive()).data == data
            await eventually(lambda: len(got) == 1, timeout=30)
        assert got[0].data == data
        assert claims.offloaded == 1
