"""One Redis URL configures every Redis store; the real server, a prefix of the test's own."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from redis_helpers import REDIS_URL

from eventpatterns import Event, EventBus
from eventpatterns.backends import stores_from_url
from eventpatterns.backends.redis import (
    RedisBusBackend,
    RedisDeviceRegistry,
    RedisDispatchState,
    RedisJobStore,
    RedisPresence,
    RedisPushDeadLetters,
)
from eventpatterns.backends.redis._url import (
    REDIS_OPTIONS,
    STORE_OPTIONS,
    connection_options,
    split_store_url,
)
from eventpatterns.core import AsyncResource
from eventpatterns.errors import BusClosed, ConfigurationError
from eventpatterns.jobs import Job, JobContext, JobTracker
from eventpatterns.push import Notification, PushDeadLetter, Registration
from eventpatterns.testing import ManualClock

pytestmark = [pytest.mark.redis, pytest.mark.anyio]

STORES: list[Any] = [
    RedisBusBackend,
    RedisJobStore,
    RedisPresence,
    RedisDeviceRegistry,
    RedisDispatchState,
    RedisPushDeadLetters,
]


def every_option_url(prefix: str) -> str:
    """A URL with an option of every store and a redis-py option."""
    return (
        f"{REDIS_URL}?prefix={quote(prefix)}&max_entries=1000&reclaim_after=600"
        "&default_ttl=120&grace=60&ttl=12&sweep_interval=0.5&max_devices=3&key_ttl=90"
        "&socket_timeout=5"
    )


async def test_one_url_configures_every_store(prefix: str) -> None:
    url = every_option_url(prefix)
    bus = RedisBusBackend.from_url(url)
    jobs = RedisJobStore.from_url(url)
    presence = RedisPresence.from_url(url)
    devices = RedisDeviceRegistry.from_url(url)
    state = RedisDispatchState.from_url(url)
    letters = RedisPushDeadLetters.from_url(url)
    try:
        assert bus.prefix == prefix
        assert bus._max_entries == 1000
        assert (jobs._ttl, jobs._grace, jobs._tag) == (120, 60, "{" + prefix + "}")
        assert (presence.prefix, presence.ttl, presence.sweep_interval) == (prefix, 12, 0.5)
        assert (devices.prefix, devices.max_devices) == (prefix, 3)
        assert (state.prefix, state.key_ttl) == (prefix, 90)
        assert letters.prefix == prefix
        for store in (jobs, presence, devices, state, letters):
            assert isinstance(store, AsyncResource)
        # They work, side by side on one prefix (the keys do not collide).
        await jobs.create(Job.new("j1", "render", owner="ann", input={}, now=1.0))
        assert (await jobs.get("j1")) is not None
        device = await devices.register("ann", Registration("fcm", "tok-1"), now=1.0)
        assert [d.id for d in await devices.devices("ann")] == [device.id]
        assert await state.claim("ann", "k1", "n1", now=1.0) is None
        assert await state.claim("ann", "k1", "n2", now=2.0) == "n1"
        assert await presence.join("room", "ann", connection="c1")
        assert await presence.count("room") == 1
        note = Notification()
        letter = PushDeadLetter(letters.new_id(), "ann", None, None, note, "", "r", 0, 1.0)
        await letters.add(letter)
        assert [x.id for x in await letters.list()] == [letter.id]
        assert len(await bus.append([Event(type="t", source="/s", data={})])) == 1
    finally:
        for closing in (bus, jobs, presence, devices, state, letters):
            await closing.aclose()
            await closing.aclose()  # idempotent


def test_keywords_win_over_the_url() -> None:
    url = f"{REDIS_URL}?prefix=from-url&key_ttl=90"
    assert RedisDispatchState.from_url(url, prefix="kw", key_ttl=5).key_ttl == 5
    assert RedisDispatchState.from_url(url, prefix="kw").prefix == "kw"
    assert RedisJobStore.from_url(f"{REDIS_URL}?default_ttl=9", default_ttl=3)._ttl == 3


@pytest.mark.parametrize("cls", STORES)
@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("colour=blue", "unknown redis:// option 'colour'"),
        ("max_entrys=5", "unknown redis:// option 'max_entrys'"),  # a typo is an error
        ("ttl=soon", "option ttl must be a number of seconds"),  # another store's: checked
        ("max_entries=0", "option max_entries must be an integer >= 1"),
        ("key_ttl=1&key_ttl=2", "option key_ttl is given twice"),
        ("socket_timeout=never", "option socket_timeout must be a number of seconds"),
    ],
)
def test_bad_options_name_the_option(cls: Any, query: str, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        cls.from_url(f"{REDIS_URL}?{query}")


@pytest.mark.parametrize("cls", STORES[1:])
def test_cluster_is_the_bus_option_only(cls: Any) -> None:
    with pytest.raises(ConfigurationError, match="cluster=true is for RedisBusBackend"):
        cls.from_url(f"{REDIS_URL}?cluster=true")
    store = cls.from_url(f"{REDIS_URL}?cluster=false")
    assert store is not None


def test_a_stores_option_in_a_constructors_url_names_its_reader() -> None:
    with pytest.raises(ConfigurationError, match=r"key_ttl is read by RedisDispatchState"):
        RedisJobStore(f"{REDIS_URL}?key_ttl=5")


_NAMES = sorted(
    {name for table in STORE_OPTIONS.values() for name in table} | set(REDIS_OPTIONS) | {"x"}
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(STORE_OPTIONS)),
    st.lists(st.tuples(st.sampled_from(_NAMES), st.text(max_size=12)), max_size=4),
    st.sampled_from(["redis://127.0.0.1:6379/0", "redis://h:99999", "unix://", "http://h", "x"]),
)
def test_store_url_fuzz(store: str, pairs: list[tuple[str, str]], base: str) -> None:
    """Any URL is the store's options and a connection, or a ConfigurationError."""
    options: dict[str, Any] = {}
    try:
        rest = split_store_url(f"{base}?{urlencode(pairs)}", options, store)
        connection_options(rest, {}, cluster=False, allowed=set(REDIS_OPTIONS))
    except ConfigurationError:
        return  # refused, in the library's error tree (anything else fails the test)
    assert set(options) == {key for key, _ in pairs} & set(STORE_OPTIONS[store])


async def test_stores_from_url_on_redis(prefix: str) -> None:
    clock = ManualClock(start=10.0)
    url = every_option_url(prefix)
    async with stores_from_url(url, clock=clock) as stores:
        assert stores.backend == "redis"
        assert isinstance(stores.jobs, RedisJobStore)
        assert stores.jobs._ttl == 120
        assert isinstance(stores.presence, RedisPresence)
        assert stores.presence.clock is clock
        assert isinstance(stores.devices, RedisDeviceRegistry)
        assert isinstance(stores.dispatch_state, RedisDispatchState)
        assert isinstance(stores.push_dead_letters, RedisPushDeadLetters)
        assert stores.blobs is None  # Redis has no blob store
        async with EventBus(stores.bus) as bus:
            assert isinstance(bus.backend, RedisBusBackend)
            assert bus.backend.prefix == prefix
            tracker = JobTracker(bus, stores.jobs, clock=clock)

            @tracker.worker("noop")
            async def noop(ctx: JobContext[dict[str, int]]) -> int:
                return 1

            async with tracker:
                job = await tracker.submit("noop", {"n": 1}, owner="ann")
                assert (await stores.jobs.get(job.id)) is not None
        jobs = stores.jobs
    with pytest.raises(BusClosed):  # closed with the bundle
        await jobs.get("j1")
