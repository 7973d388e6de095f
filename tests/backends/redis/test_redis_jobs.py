"""The Redis job store runs the public JobStore suite against the real server."""

from __future__ import annotations

import anyio
import pytest
import redis.asyncio
from redis_helpers import REDIS_URL

from eventpatterns import Event, EventBus
from eventpatterns.backends.redis import RedisBusBackend, RedisJobStore
from eventpatterns.backends.redis._connection import RAW_CONNECTIONS
from eventpatterns.errors import BackendUnavailable, BusClosed, ConfigurationError
from eventpatterns.jobs import Cancel, Job, JobStore, transition
from eventpatterns.jobs._events import PENDING, job_event
from eventpatterns.testing import JobStoreSuite, ManualClock


class TestRedisJobStore(JobStoreSuite):
    anyio_backends = ("asyncio",)  # redis-py's asyncio client

    @pytest.fixture(autouse=True)
    def _use_prefix(self, prefix: str) -> None:
        self.prefix = prefix

    async def make_store(self, clock: ManualClock, *, default_ttl: float) -> JobStore:
        return RedisJobStore(REDIS_URL, prefix=self.prefix, clock=clock, default_ttl=default_ttl)


pytestmark = pytest.mark.redis


@pytest.mark.anyio
async def test_a_final_job_gets_a_backstop_ttl_on_the_server(
    prefix: str, raw: redis.asyncio.Redis
) -> None:
    clock = ManualClock()
    async with RedisJobStore(REDIS_URL, prefix=prefix, clock=clock, grace=60) as store:
        job = await store.create(Job.new("j1", "k", owner="o", input={}, now=clock.time(), ttl=30))
        assert await raw.pttl(f"{{{prefix}}}:job:j1") == -1  # a live job never expires
        await store.replace(transition(job, Cancel(), clock.time()), expected_version=1)
        ttl_ms = await raw.pttl(f"{{{prefix}}}:job:j1")
        assert 80_000 <= ttl_ms <= 90_000  # 30 s of TTL + 60 s of grace


@pytest.mark.anyio
async def test_an_unreachable_server_is_backend_unavailable() -> None:
    store = RedisJobStore("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(BackendUnavailable, match="unreachable"):
        await store.get("j1")
    await store.aclose()
    with pytest.raises(BusClosed):
        await store.get("j1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": "a{b"}, "prefix"),
        ({"default_ttl": 0}, "default_ttl"),
        ({"grace": float("nan")}, "grace"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisJobStore(REDIS_URL, **kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_connection_the_server_dropped_is_replaced_for_the_next_call(
    prefix: str, raw: redis.asyncio.Redis
) -> None:
    clock = ManualClock()
    async with RedisJobStore(REDIS_URL, prefix=prefix, clock=clock) as store:
        job = await store.create(Job.new("j1", "k", owner="o", input={}, now=clock.time()))
        (conn,) = store._raw._idle  # the connection the create used, kept for the next call
        host, port = conn._writer.get_extra_info("sockname")[:2]
        assert await raw.client_kill(f"{host}:{port}")  # as a Redis restart would
        assert await store.get("j1") == job  # sent again, on a new connection


@pytest.mark.anyio
async def test_outbox_appends_keep_no_dedupe_records(prefix: str, raw: redis.asyncio.Redis) -> None:
    # An outbox event goes with the version its script writes, once: no record needed.
    clock = ManualClock()
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
    async with (
        EventBus(backend),
        RedisJobStore(REDIS_URL, prefix=prefix, clock=clock, outbox=backend) as store,
    ):
        job = Job.new("j1", "k", owner="o", input={}, now=clock.time())
        event = job_event(job, PENDING, source="/t")
        await store.create_announced(job, event)
        assert await raw.xlen(f"{{{prefix}}}:log") == 1
        assert await raw.exists(f"{{{prefix}}}:dd:{event.id}") == 0
        await backend.append([Event(type="t", source="/t", id="plain")])
        assert await raw.exists(f"{{{prefix}}}:dd:plain") == 1  # a publish keeps its record


@pytest.mark.anyio
async def test_many_concurrent_calls_share_a_few_connections(prefix: str) -> None:
    async with RedisJobStore(REDIS_URL, prefix=prefix) as store:
        async with anyio.create_task_group() as tg:
            for i in range(300):
                tg.start_soon(store.get, f"j{i}")
        assert 1 <= len(store._raw._idle) <= RAW_CONNECTIONS < 300
