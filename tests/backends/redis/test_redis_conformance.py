"""The public conformance suite on the Redis backend: one server, and a three-shard cluster."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from redis_helpers import REDIS_URL, LocalCluster, delete_prefix, new_prefix

from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.bus import BusBackend
from eventpatterns.testing import BusBackendSuite, ManualClock

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_server")]


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
        max_entries: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        prefix = new_prefix("suite")
        self.prefixes.append(prefix)
        return RedisBusBackend(
            REDIS_URL,
            prefix=prefix,
            clock=clock,
            max_entries=max_entries or 100_000,
            max_message_size=max_message_size,
        )


class TestRedisClusterBus(BusBackendSuite):
    """The same suite on a three-shard Redis Cluster (``?cluster=true``)."""

    anyio_backends = ("asyncio",)

    @pytest.fixture(autouse=True)
    def _cluster(self, local_cluster: LocalCluster) -> None:
        self.cluster_url = local_cluster.url

    async def make_backend(
        self,
        clock: ManualClock,
        *,
        max_entries: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        return RedisBusBackend.from_url(
            f"{self.cluster_url}?cluster=true",
            prefix=new_prefix("cluster"),
            clock=clock,
            max_entries=max_entries or 100_000,
            max_message_size=max_message_size,
        )
