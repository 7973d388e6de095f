"""The reaper on Redis (RedisBusBackend + RedisJobStore): an outage, then it catches up."""

from __future__ import annotations

import pytest

from backends.redis.redis_helpers import REDIS_URL, RedisServer
from eventpatterns.jobs import JobState, Start, Succeed
from eventpatterns.testing import ManualClock

from .test_tracker import act
from .test_tracker_redis import on_redis, own_server, prefix  # noqa: F401 - fixtures

pytestmark = [pytest.mark.anyio, pytest.mark.redis]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


async def test_a_sweep_during_an_outage_is_logged_and_the_next_one_catches_up(
    own_server: RedisServer,  # noqa: F811 - the fixture
) -> None:
    clock = ManualClock()
    async with on_redis(own_server.url, "reaper", clock=clock, run_reaper=False) as tracker:
        job = await act(tracker, await tracker.submit("echo", 1, owner="u1"), Start("w1", 5))
        own_server.kill()
        clock.advance(5)
        down = await tracker.reaper.sweep()
        assert (down.complete, down.expired) == (False, 0)
        own_server.start()
        up = await tracker.reaper.sweep()
        assert (up.complete, up.expired) == (True, 1)
        lost = await tracker.get(job.id)
    assert lost is not None
    assert lost.state is JobState.RETRYING


async def test_the_reaper_purges_expired_records_on_redis(prefix: str) -> None:  # noqa: F811
    clock = ManualClock()
    async with on_redis(REDIS_URL, prefix, clock=clock, run_reaper=False) as tracker:
        assert (await tracker.reaper.sweep()).purged == 0
        job = await act(tracker, await tracker.submit("echo", 1, owner="u1", ttl=5), Start("w", 9))
        await act(tracker, job, Succeed("w", result=1))
        clock.advance(61)
        assert (await tracker.reaper.sweep()).purged == 1
        assert await tracker.get(job.id) is None
