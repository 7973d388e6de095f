"""Fixtures of the Redis backend tests: the shared server, own servers, a cluster."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis.asyncio
from redis_helpers import (
    REDIS_URL,
    LocalCluster,
    RedisServer,
    delete_prefix,
    new_prefix,
    require_redis,
)

from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.testing import ManualClock


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


@pytest.fixture
def redis_server() -> None:
    """Require the shared Redis (skip without it, fail in CI)."""
    require_redis()


@pytest.fixture
def prefix(redis_server: None) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, deleted afterwards."""
    value = new_prefix("t")
    yield value
    delete_prefix(value)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def backend(prefix: str, clock: ManualClock) -> AsyncIterator[RedisBusBackend]:
    """A backend on the shared Redis with a small log (``max_entries=8``)."""
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock, max_entries=8)
    yield backend
    await backend.aclose()


@pytest.fixture
async def raw(redis_server: None) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain redis-py client on the shared Redis, to look at keys directly."""
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def _require_binaries() -> None:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        require_redis("redis://127.0.0.1:1/0")  # no binaries: fails in CI, skips elsewhere


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Start redis-servers of the test's own: ``own_server("--requirepass", "s3cret")``."""
    _require_binaries()
    servers: list[RedisServer] = []

    def start(*args: str) -> RedisServer:
        directory = tmp_path / f"server{len(servers)}"
        directory.mkdir()
        server = RedisServer(directory, *args)
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.kill()


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    _require_binaries()
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
