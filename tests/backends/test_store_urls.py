"""One URL for every store: ``from_url`` on the memory stores, ``stores_from_url``, lifecycle.

The Redis and AWS variants are in ``tests/backends/redis/test_redis_store_urls.py`` and
``tests/backends/aws/test_aws_store_urls.py``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import EventBus
from eventpatterns.backends import Stores, stores_from_url
from eventpatterns.backends.memory import (
    MemoryBlobStore,
    MemoryBusBackend,
    MemoryDeviceRegistry,
    MemoryJobStore,
)
from eventpatterns.backends.memory._url import STORE_OPTIONS, parse_memory_url
from eventpatterns.core import AsyncResource
from eventpatterns.errors import BusClosed, ConfigurationError
from eventpatterns.jobs import Job, JobTracker, URLSigner
from eventpatterns.push import MemoryDispatchState, MemoryPushDeadLetters
from eventpatterns.realtime import MemoryPresence, Presence
from eventpatterns.testing import ManualClock

pytestmark = pytest.mark.anyio

#: One URL with an option of every memory store (and the shared ``prefix``).
EVERY = (
    "memory://?prefix=app&max_entries=7&default_ttl=60&max_size=100&max_devices=3"
    "&ttl=12&sweep_interval=0.5&key_ttl=90"
)


def test_one_url_configures_every_memory_store() -> None:
    bus = MemoryBusBackend.from_url(EVERY)
    assert bus._max_entries == 7
    jobs = MemoryJobStore.from_url(EVERY)
    assert jobs._ttl == 60
    assert MemoryBlobStore.from_url(EVERY)._max_size == 100
    assert MemoryDeviceRegistry.from_url(EVERY).max_devices == 3
    presence = MemoryPresence.from_url(EVERY)
    assert (presence.ttl, presence.sweep_interval) == (12, 0.5)
    assert MemoryDispatchState.from_url(EVERY).key_ttl == 90
    assert isinstance(MemoryPushDeadLetters.from_url(EVERY), MemoryPushDeadLetters)


def test_keywords_win_over_the_url() -> None:
    assert MemoryJobStore.from_url("memory://?default_ttl=60", default_ttl=5)._ttl == 5
    assert MemoryPresence.from_url("memory://?ttl=60", ttl=7).ttl == 7


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("memory://?colour=blue", "unknown memory:// option 'colour'"),
        ("memory://?max_entrys=5", "option 'max_entrys'"),  # a typo is still an error
        ("memory://?ttl=soon", "option ttl must be a number"),  # another store's, checked
        ("memory://?max_entries=many", "option max_entries must be an integer"),
        ("memory://?ttl=1&ttl=2", "option ttl is given twice"),
        ("memory://?prefix=", "option prefix must be a non-empty value"),
        ("redis://localhost", "not a memory:// URL"),
    ],
)
def test_bad_memory_urls_name_the_option(url: str, named: str) -> None:
    for cls in (MemoryJobStore, MemoryDeviceRegistry, MemoryBusBackend, MemoryPresence):
        with pytest.raises(ConfigurationError, match=named):
            cls.from_url(url)


def test_a_bad_value_of_the_stores_own_option_is_refused_by_its_constructor() -> None:
    with pytest.raises(ConfigurationError, match="default_ttl"):
        MemoryJobStore.from_url("memory://?default_ttl=-1")
    with pytest.raises(ConfigurationError, match="ttl"):
        MemoryPresence.from_url("memory://?ttl=0")


_NAMES = sorted({name for table in STORE_OPTIONS.values() for name in table} | {"prefix", "x"})


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(STORE_OPTIONS)),
    st.lists(st.tuples(st.sampled_from(_NAMES), st.text(max_size=12)), max_size=4),
    st.sampled_from(["memory://", "memory:", "Memory://", "mem://", "memory://host/path"]),
)
def test_memory_url_fuzz(store: str, pairs: list[tuple[str, str]], base: str) -> None:
    """Any URL either parses to the store's own options or is a ConfigurationError."""
    url = f"{base}?{urlencode(pairs)}"
    try:
        parsed = parse_memory_url(url, store, {})
    except ConfigurationError:
        return  # refused, in the library's error tree (anything else fails the test)
    assert set(parsed) <= set(STORE_OPTIONS[store])
    assert set(parsed) == {key for key, _ in pairs} & set(STORE_OPTIONS[store])


MEMORY_STORES: list[Any] = [
    MemoryJobStore,
    MemoryBlobStore,
    MemoryDeviceRegistry,
    MemoryPresence,
    MemoryDispatchState,
    MemoryPushDeadLetters,
]


@pytest.mark.parametrize("cls", MEMORY_STORES)
async def test_every_memory_store_is_an_async_resource(cls: Any) -> None:
    store = cls.from_url("memory://")
    assert isinstance(store, AsyncResource)
    async with store as entered:
        assert entered is store
    await store.aclose()  # idempotent


async def test_a_closed_memory_job_store_keeps_its_data() -> None:
    async with MemoryJobStore() as store:
        await store.create(Job.new("j1", "k", owner="ann", input={}, now=1.0))
    await store.aclose()
    found = await store.get("j1")
    assert found is not None
    assert found.owner == "ann"


async def test_the_presence_protocol_has_the_lifecycle() -> None:
    presence: Presence = MemoryPresence.from_url("memory://?ttl=5")
    async with presence:
        await presence.join("room", "ann", connection="c1")
        assert await presence.count("room") == 1
    with pytest.raises(BusClosed):
        await presence.join("room", "bob", connection="c2")
    assert {"__aenter__", "__aexit__", "aclose"} <= set(dir(Presence))


async def test_stores_from_url_builds_each_store_once_and_closes_them() -> None:
    clock = ManualClock(start=100.0)
    signer = URLSigner(b"a secret of at least 32 bytes...", base_url="/blobs")
    async with stores_from_url(EVERY, clock=clock, signer=signer) as stores:
        assert stores.backend == "memory"
        assert isinstance(stores.jobs, MemoryJobStore)
        assert stores.jobs is stores.jobs
        assert stores.jobs._ttl == 60
        assert stores.jobs._clock is clock
        blobs = stores.blobs
        assert isinstance(blobs, MemoryBlobStore)
        await blobs.put("k", b"x")
        assert (await blobs.url("k")).startswith("/blobs/")
        assert isinstance(stores.presence, MemoryPresence)
        assert stores.presence.ttl == 12
        assert isinstance(stores.devices, MemoryDeviceRegistry)
        assert isinstance(stores.dispatch_state, MemoryDispatchState)
        assert isinstance(stores.push_dead_letters, MemoryPushDeadLetters)
        async with EventBus(stores.bus) as bus, JobTracker(bus, stores.jobs, clock=clock):
            assert isinstance(bus.backend, MemoryBusBackend)
            assert bus.backend._max_entries == 7
        presence = stores.presence
    with pytest.raises(BusClosed):  # closed with the others
        await presence.join("room", "ann", connection="c1")


async def test_stores_are_built_on_first_use_only() -> None:
    stores = Stores("memory://?ttl=bad")  # options are checked when a store is built
    assert stores.backend == "memory"
    with pytest.raises(ConfigurationError, match="ttl"):
        _ = stores.jobs
    await stores.aclose()


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("carrier-pigeon://", "unknown backend URL scheme"),
        ("no scheme", "unknown backend URL scheme"),
        (42, "must be a string"),
    ],
)
def test_stores_from_url_refuses_unknown_backends(url: Any, named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        stores_from_url(url)
