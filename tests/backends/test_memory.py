"""The memory backend runs the whole conformance suite, on asyncio and trio."""

from __future__ import annotations

import pytest

from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.bus import BusBackend
from eventpatterns.errors import ConfigurationError
from eventpatterns.testing import BusBackendSuite, ManualClock


class TestMemoryBus(BusBackendSuite):
    async def make_backend(
        self,
        clock: ManualClock,
        *,
        retention: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        return MemoryBusBackend(
            clock=clock, max_entries=retention or 100_000, max_message_size=max_message_size
        )


def test_from_url_reads_options() -> None:
    backend = MemoryBusBackend.from_url("memory://?max_entries=5&dedupe_window=1.5")
    assert backend.capabilities.dedupe_window == 1.5
    with pytest.raises(ConfigurationError, match="unknown memory:// option"):
        MemoryBusBackend.from_url("memory://?colour=blue")
    with pytest.raises(ConfigurationError, match="max_entries must be an integer"):
        MemoryBusBackend.from_url("memory://?max_entries=lots")
