"""The memory backend runs the whole conformance suite, on asyncio and trio."""

from __future__ import annotations

import pytest

from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.bus import BusBackend, GroupStats
from eventpatterns.errors import ConfigurationError
from eventpatterns.testing import BusBackendSuite, ManualClock, make_events


class TestMemoryBus(BusBackendSuite):
    async def make_backend(
        self,
        clock: ManualClock,
        *,
        max_entries: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        return MemoryBusBackend(
            clock=clock, max_entries=max_entries or 100_000, max_message_size=max_message_size
        )


def test_from_url_reads_options() -> None:
    backend = MemoryBusBackend.from_url("memory://?max_entries=5&dedupe_window=1.5")
    assert backend.capabilities.dedupe_window == 1.5
    with pytest.raises(ConfigurationError, match="unknown memory:// option"):
        MemoryBusBackend.from_url("memory://?colour=blue")
    with pytest.raises(ConfigurationError, match="max_entries must be an integer"):
        MemoryBusBackend.from_url("memory://?max_entries=lots")


@pytest.mark.anyio
async def test_acked_deliveries_do_not_accumulate_deadlines() -> None:
    backend = MemoryBusBackend()
    await backend.create_group("g", start="latest")
    for _ in range(20):
        await backend.append(make_events(500))
        deliveries = await backend.receive("g", "c", max_count=500, visibility_timeout=30, wait=0)
        await backend.ack("g", [d.receipt for d in deliveries])
    group = backend._groups["g"]
    assert group.pending == {}
    assert len(group.ready) <= 1024 + 500  # compacted, not 10,000 stale deadlines
    assert await backend.group_stats("g") == GroupStats()


@pytest.mark.anyio
async def test_group_behind_retention_is_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    backend = MemoryBusBackend(max_entries=10)
    await backend.create_group("slow", start="latest")
    with caplog.at_level("WARNING", logger="eventpatterns.bus"):
        await backend.append(make_events(25))
    assert (await backend.group_stats("slow")).trimmed_unread == 15
    assert "15 entries trimmed before group 'slow' read them" in caplog.text
    deliveries = await backend.receive("slow", "c", max_count=100, visibility_timeout=30, wait=0)
    assert [d.event.data["n"] for d in deliveries] == list(range(15, 25))
