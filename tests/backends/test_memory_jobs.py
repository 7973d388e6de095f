"""The memory job store runs the public JobStore suite, on asyncio and trio."""

from __future__ import annotations

import pytest

from eventpatterns.backends.memory import MemoryJobStore
from eventpatterns.errors import ConfigurationError
from eventpatterns.jobs import JobStore
from eventpatterns.testing import JobStoreSuite, ManualClock


class TestMemoryJobStore(JobStoreSuite):
    async def make_store(self, clock: ManualClock, *, default_ttl: float) -> JobStore:
        return MemoryJobStore(clock=clock, default_ttl=default_ttl)


@pytest.mark.parametrize("ttl", [0, -1, float("inf"), True, "1"])
def test_a_bad_default_ttl_is_refused(ttl: object) -> None:
    with pytest.raises(ConfigurationError, match="default_ttl"):
        MemoryJobStore(default_ttl=ttl)  # type: ignore[arg-type]


def test_it_is_a_job_store() -> None:
    assert isinstance(MemoryJobStore(), JobStore)
