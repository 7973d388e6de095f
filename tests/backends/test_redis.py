"""The Redis backend against the real server: conformance suite, faults, many processes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_helpers import REDIS_URL, delete_prefix, new_prefix, require_redis

from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.bus import BusBackend
from eventpatterns.testing import BusBackendSuite, ManualClock

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _redis_server() -> None:
    require_redis()


class TestRedisBus(BusBackendSuite):
    anyio_backends = ("asyncio",)

    @pytest.fixture(autouse=True)
    def _prefixes(self) -> Iterator[None]:
        self.prefixes: list[str] = []
        yield
        for prefix in self.prefixes:
            delete_prefix(prefix)

    async def make_backend(
        self,
        clock: ManualClock,
        *,
        retention: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        prefix = new_prefix("suite")
        self.prefixes.append(prefix)
        return RedisBusBackend(
            REDIS_URL,
            prefix=prefix,
            clock=clock,
            max_entries=retention or 100_000,
            max_message_size=max_message_size,
        )
