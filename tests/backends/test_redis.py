"""The Redis backend against the real server: conformance suite, faults, many processes."""

from __future__ import annotations

import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import cast

import anyio
import pytest
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_helpers import REDIS_URL, delete_prefix, new_prefix, redis_available, require_redis

from eventpatterns import Backoff, Event, EventBus, Retry, Timeouts
from eventpatterns.backends.memory import MemoryBusBackend
from eventpatterns.backends.redis import RedisBusBackend, _scripts
from eventpatterns.backends.redis._codec import decode_event
from eventpatterns.bus import BusBackend, Delivery
from eventpatterns.errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    DeadLetterNotFound,
    GroupNotFound,
    InvalidEvent,
    InvalidPosition,
    MissingDependency,
    PositionExpired,
)
from eventpatterns.testing import BusBackendSuite, ManualClock, eventually, make_events

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


# -- helpers for the tests below ---------------------------------------------------------

WORKER = Path(__file__).with_name("redis_worker.py")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py's asyncio client runs on asyncio only


@pytest.fixture
def prefix() -> Iterator[str]:
    value = new_prefix("fault")
    yield value
    delete_prefix(value)


def spawn(*args: str, url: str = REDIS_URL) -> subprocess.Popen[bytes]:
    mode, rest = args[0], args[1:]
    return subprocess.Popen([sys.executable, str(WORKER), mode, url, *rest])


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    with anyio.move_on_after(within):
        while not await check():  # noqa: ASYNC110 - polling other processes
            await anyio.sleep(0.05)
        return
    pytest.fail(f"timed out after {within}s waiting for {what}")


def tagged(prefix: str, suffix: str) -> str:
    return "{" + prefix + "}:" + suffix


class LocalCluster:
    """Three redis-server primaries in cluster mode, made by the test, thrown away after."""

    def __init__(self, directory: Path) -> None:
        self.ports = [free_cluster_port() for _ in range(3)]
        self.directory = directory
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        for port in self.ports:
            command = [
                "redis-server", "--port", str(port), "--bind", "127.0.0.1",
                "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{port}.conf",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            ]  # fmt: skip
            self.procs.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
        for port in self.ports:
            wait_until_up(f"redis://127.0.0.1:{port}/0")
        nodes = [f"127.0.0.1:{port}" for port in self.ports]
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *nodes,
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        import redis as sync_redis

        deadline = time.monotonic() + 20
        for port in self.ports:
            client = sync_redis.Redis(port=port)
            try:
                while client.execute_command("CLUSTER INFO").get("cluster_state") != "ok":
                    if time.monotonic() > deadline:
                        raise RuntimeError("the test cluster did not come up")
                    time.sleep(0.05)
            finally:
                client.close()

    def stop(self) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"


_TAKEN: set[int] = set()


def free_cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free and valid too."""
    for port in range(random.randrange(21000, 50000), 55000):
        if port in _TAKEN:
            continue
        try:
            for candidate in (port, port + 10000):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        _TAKEN.add(port)
        return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_until_up(url: str) -> None:
    deadline = time.monotonic() + 10
    while redis_available(url) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server at {url} did not start")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        require_redis("redis://127.0.0.1:1/0")  # no binaries: fails in CI, skips elsewhere
    cluster = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


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


# -- backend specifics ---------------------------------------------------------------------


def test_from_url_reads_options_and_keeps_redis_ones() -> None:
    backend = RedisBusBackend.from_url(
        f"{REDIS_URL}?prefix=myapp&max_entries=5&dedupe_window=1.5&max_message_size=4096"
        "&socket_timeout=3&reclaim_after=600&cluster=false"
    )
    assert backend.prefix == "myapp"
    assert backend.capabilities.dedupe_window == 1.5
    assert backend.capabilities.max_message_size == 4096
    with pytest.raises(ConfigurationError, match="max_entries must be a number"):
        RedisBusBackend.from_url(f"{REDIS_URL}?max_entries=lots")
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisBusBackend(REDIS_URL, prefix="a{b}")
    with pytest.raises(ConfigurationError, match="not a redis"):
        RedisBusBackend.from_url("memory://")
    with pytest.raises(ConfigurationError, match="decode_responses"):
        RedisBusBackend.from_url(f"{REDIS_URL}?decode_responses=true")


def test_missing_redis_py_raises_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "redis" or m.startswith("redis.")]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependency, match=r"eventpatterns\[redis\]"):
        RedisBusBackend(REDIS_URL)
    with pytest.raises(MissingDependency):
        EventBus.from_url("redis://127.0.0.1:6379/0")


def test_package_imports_without_redis_py_and_exports_its_names() -> None:
    code = (
        "import sys; sys.modules['redis'] = None\n"
        "import eventpatterns.backends.redis as pkg\n"
        "assert pkg.__all__ == ['RedisBusBackend']\n"
        "try:\n    pkg.RedisBusBackend()\n"
        "except ImportError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'eventpatterns[redis]'" in out.stdout


def test_trio_is_refused_with_a_clear_error() -> None:
    async def main() -> None:
        backend = RedisBusBackend(REDIS_URL, prefix="unused")
        with pytest.raises(ConfigurationError, match="asyncio only"):
            await backend.last_position()

    anyio.run(main, backend="trio")


def test_sort_key_reads_stream_ids() -> None:
    backend = RedisBusBackend(REDIS_URL, prefix="unused")
    assert backend.sort_key("1700000000000-0") < backend.sort_key("1700000000000-1")
    assert backend.sort_key("999-9") < backend.sort_key("1000-0")
    for bad in ("42", "1-2-3", "-1-0", "01-0", "a-b", ""):
        with pytest.raises(InvalidPosition):
            backend.sort_key(bad)


@pytest.mark.anyio
async def test_unreachable_redis_raises_backend_unavailable() -> None:
    backend = RedisBusBackend(f"redis://127.0.0.1:{free_port()}/0", prefix="nowhere")
    try:
        with pytest.raises(BackendUnavailable):
            await backend.append(make_events(1))
        with pytest.raises(BackendUnavailable):
            await backend.read(None, limit=1, wait=1)
    finally:
        await backend.aclose()


@pytest.mark.anyio
async def test_last_trimmed_position_is_not_expired(prefix: str) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix, max_entries=10)
    async with EventBus(backend) as bus:
        positions = await bus.publish_batch(make_events(20))
        # Exactly like memory: reading after the newest trimmed entry misses nothing.
        entries = await backend.read(positions[9], limit=100)
        assert [e.position for e in entries] == positions[10:]
        with pytest.raises(PositionExpired) as info:
            await backend.read(positions[8], limit=100)
        assert info.value.oldest == positions[10]
        assert len(await backend.read(None, limit=100)) == 10


@pytest.mark.anyio
async def test_cancelled_blocking_read_does_not_poison_connections(prefix: str) -> None:
    backend = RedisBusBackend(REDIS_URL, prefix=prefix)
    async with EventBus(backend) as bus:
        last = await bus.publish(make_events(1)[0])
        for _ in range(3):
            with anyio.move_on_after(0.05):
                await backend.read(last, limit=10, wait=30)
        # A reply to a cancelled XREAD must never be read as the answer to another call.
        newer = await bus.publish(make_events(1, start=1)[0])
        got = await backend.read(last, limit=10, wait=1)
        assert [e.position for e in got] == [newer]
        assert [e.event.data["n"] for e in got] == [1]


_RESERVED = {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject"}
_RESERVED |= {"time", "data", "data_base64"}
_texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_payloads = st.tuples(st.sampled_from([None, "application/json"]), _json) | st.tuples(
    st.just("application/octet-stream"), _json | st.binary(max_size=8)
)


@st.composite
def _events(draw: st.DrawFn) -> Event:
    content_type, data = draw(_payloads)
    return Event(
        type=draw(_texts),
        source=draw(_texts),
        id=draw(_texts),
        subject=draw(st.none() | _texts),
        time=draw(
            st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-3))]))
        ),
        datacontenttype=content_type,
        dataschema=draw(st.none() | st.just("https://example.com/s.json")),
        extensions=draw(
            st.dictionaries(
                st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
                    lambda k: k not in _RESERVED
                ),
                _texts | st.integers(-(2**31), 2**31 - 1) | st.booleans(),
                max_size=3,
            )
        ),
        data=data,
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_events())
def test_trusted_decoding_builds_the_validated_event(event: Event) -> None:
    raw = event.to_json()
    decoded, validated = decode_event(raw), Event.from_json(raw)
    assert decoded == validated == event
    assert decoded.to_json() == raw
    assert repr(decoded) == repr(validated)
    assert decoded.model_fields_set == validated.model_fields_set


@pytest.mark.parametrize(
    "data",
    [2**63, -(2**63) - 1, 2**64 + 7, [1, {"deep": [10**30]}], 9.3e18, {"x": 1.5}],
)
def test_decoding_keeps_integers_beyond_64_bits_exact(data: object) -> None:
    # orjson reads such integers as floats; the decoder must notice and keep them exact.
    event = Event(type="t", source="/s", data=data)
    decoded = decode_event(event.to_json())
    assert decoded == event
    assert decoded.to_json() == event.to_json()


_HEAD = b'{"specversion":"1.0","id":"1","source":"/s","type":"t"'


@pytest.mark.parametrize(
    "raw",
    [b"", b"[1]", b'{"specversion":"1.0"}', _HEAD.replace(b"1.0", b"0.3") + b"}",
     _HEAD + b"} x", b"\xff", _HEAD + b',"a":NaN}', _HEAD + b',"UPPER":1}'],
)  # fmt: skip
def test_untrusted_entries_are_validated(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        decode_event(raw)


@pytest.mark.anyio
class TestRedisQueuedAcks:
    """Acks ride along with the next call for their group; nothing else may tell."""

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def backends(
        self, prefix: str, clock: ManualClock
    ) -> AsyncIterator[tuple[RedisBusBackend, RedisBusBackend]]:
        one = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
        other = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock)
        await one.create_group("g", start="latest")
        await one.append(make_events(3))
        yield one, other
        await one.aclose()
        await other.aclose()

    async def test_ack_is_queued_then_carried_by_the_next_receive(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        got = await one.receive("g", "c1", max_count=2, visibility_timeout=30, wait=0)
        assert got[0] == Delivery(got[0].position, got[0].position, got[0].event, 1, None)
        await one.ack("g", [d.receipt for d in got])
        assert (await other.group_stats("g")).pending == 2  # not sent yet
        (last,) = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        assert last.event.data["n"] == 2
        assert (await other.group_stats("g")).pending == 1  # sent with that receive

    async def test_every_other_call_for_the_group_sends_queued_acks_first(
        self, backends: tuple[RedisBusBackend, RedisBusBackend], clock: ManualClock
    ) -> None:
        one, other = backends
        a, b, c = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        await one.ack("g", [a.receipt])
        assert (await one.group_stats("g")).pending == 2
        await one.ack("g", [b.receipt])
        await one.release("g", b.receipt, delay=0, error="late")  # acked: nothing to release
        await one.ack("g", [c.receipt])
        with pytest.raises(LookupError):
            await one.dead_letter("g", c.receipt, error="acked already")
        clock.advance(31)
        assert await other.receive("g", "c2", max_count=5, visibility_timeout=30, wait=0) == []

    async def test_aclose_sends_queued_acks(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        got = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        await one.ack("g", [d.receipt for d in got])
        await one.aclose()
        assert (await other.group_stats("g")).pending == 0
        with pytest.raises(BusClosed):
            await one.ack("g", [got[0].receipt])

    async def test_cancelled_receive_still_sends_the_acks_it_carried(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        got = await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        await one.ack("g", [d.receipt for d in got])
        with anyio.CancelScope() as scope:
            scope.cancel()  # cancelled at its first await: before or after sending
            await one.receive("g", "c1", max_count=5, visibility_timeout=30, wait=0)
        assert (await other.group_stats("g")).pending == 0

    async def test_first_ack_for_a_group_is_sent_at_once_and_checks_it(
        self, backends: tuple[RedisBusBackend, RedisBusBackend]
    ) -> None:
        one, other = backends
        (d,) = await one.receive("g", "c1", max_count=1, visibility_timeout=30, wait=0)
        await other.ack("g", [d.receipt, "not-an-id"])  # other never saw "g": no queue
        assert (await one.group_stats("g")).pending == 0
        with pytest.raises(GroupNotFound):
            await other.ack("nope", [d.receipt])


async def scripts_only(*names: str) -> None:
    """Flush Redis's script cache, then load the named scripts of the backend only."""
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.script_flush()
        for name in names:
            await client.script_load(getattr(_scripts, name))
    finally:
        await client.aclose()


async def take(backend: RedisBusBackend, count: int) -> list[Delivery]:
    """Receive ``count`` entries of group g one by one (visibility timeout 5).

    A backend's first receive for a group runs RECEIVE (its safety-net sweep is due);
    the later ones run the transaction, on a connection that has the scripts loaded.
    """
    taken: list[Delivery] = []
    for _ in range(count):
        taken += await backend.receive("g", "c1", max_count=1, visibility_timeout=5, wait=0)
    return taken


async def raw_state(prefix: str) -> tuple[int, bool, bool]:
    """Return group g's pending count and whether a receive left a mark or a park."""
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        tag = "{" + prefix + "}"
        pending = await client.xpending(f"{tag}:log", "g")
        mark = await client.hexists(f"{tag}:groups", "g:mark")
        park = await client.hexists(f"{tag}:groups", "g:park")
        return int(pending["pending"]), bool(mark), bool(park)
    finally:
        await client.aclose()


class TestRedisGroupState:
    """Delivery bookkeeping specific to this backend (batch deadlines, trimming)."""

    @pytest.fixture
    def clock(self) -> ManualClock:
        return ManualClock()

    @pytest.fixture
    async def backend(self, prefix: str, clock: ManualClock) -> AsyncIterator[RedisBusBackend]:
        backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock, max_entries=8)
        yield backend
        await backend.aclose()

    @pytest.mark.anyio
    async def test_expired_batch_is_redelivered_in_order_across_calls(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(7))
        first = await backend.receive("g", "c1", max_count=10, visibility_timeout=30, wait=0)
        await backend.ack("g", [d.receipt for d in first[:2]])
        clock.advance(31)
        again = await backend.receive("g", "c2", max_count=2, visibility_timeout=30, wait=0)
        rest = await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0)
        assert [d.event.data["n"] for d in again + rest] == [2, 3, 4, 5, 6]
        assert {d.attempt for d in again + rest} == {2}
        assert await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0) == []
        assert (await backend.group_stats("g")).pending == 5

    @pytest.mark.anyio
    async def test_due_redeliveries_then_new_entries_keep_the_cursor(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        # A receive with redeliveries due parks the group's cursor so that the
        # XREADGROUP of its transaction reads nothing; it must come back unchanged.
        await backend.create_group("g", start="latest")
        await backend.append(make_events(3))
        first = await backend.receive("g", "c1", max_count=2, visibility_timeout=5, wait=0)
        clock.advance(6)
        mixed = await backend.receive("g", "c2", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in mixed] == [(0, 2), (1, 2), (2, 1)]
        await backend.append(make_events(2))
        new = await backend.receive("g", "c2", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in new] == [(0, 1), (1, 1)]
        assert new[0].position not in {d.position for d in first + mixed}
        await backend.ack("g", [d.receipt for d in mixed + new])
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.lag, stats.trimmed_unread) == (0, 0, 0)

    @pytest.mark.anyio
    async def test_receive_survives_a_flushed_script_cache(
        self, backend: RedisBusBackend, clock: ManualClock, prefix: str
    ) -> None:
        # Both scripts of the receive transaction fail with NOSCRIPT; its XREADGROUP runs.
        await backend.create_group("g", start="latest")
        await backend.append(make_events(4))
        first = await take(backend, 2)
        await scripts_only()  # as after a restart without persistence of scripts
        await backend.ack("g", [d.receipt for d in first])
        rest = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [d.event.data["n"] for d in rest] == [2, 3]
        assert await raw_state(prefix) == (2, False, False)  # the acks were sent
        clock.advance(6)
        again = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in again] == [(2, 2), (3, 2)]
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.lag) == (2, 0)

    @pytest.mark.anyio
    async def test_receive_recovers_when_only_take_before_ran(
        self, backend: RedisBusBackend, clock: ManualClock, prefix: str
    ) -> None:
        # TAKE_BEFORE sent the acks and marked the PEL; TAKE_AFTER (NOSCRIPT) did not
        # give the batch its deadline.
        await backend.create_group("g", start="latest")
        await backend.append(make_events(4))
        first = await take(backend, 2)
        await scripts_only("TAKE_BEFORE")
        await backend.ack("g", [d.receipt for d in first])
        rest = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [d.event.data["n"] for d in rest] == [2, 3]
        assert await raw_state(prefix) == (2, False, False)
        clock.advance(6)
        again = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in again] == [(2, 2), (3, 2)]

    @pytest.mark.anyio
    async def test_receive_recovers_when_only_take_after_ran(
        self, backend: RedisBusBackend, clock: ManualClock, prefix: str
    ) -> None:
        # TAKE_BEFORE (NOSCRIPT) neither sent the acks nor marked the PEL.
        await backend.create_group("g", start="latest")
        await backend.append(make_events(4))
        first = await take(backend, 2)
        await scripts_only("TAKE_AFTER")
        await backend.ack("g", [d.receipt for d in first])
        rest = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [d.event.data["n"] for d in rest] == [2, 3]
        assert await raw_state(prefix) == (2, False, False)
        clock.advance(6)
        again = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in again] == [(2, 2), (3, 2)]
        assert await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0) == []

    @pytest.mark.anyio
    async def test_parked_cursor_is_restored_when_take_after_is_missing(
        self, backend: RedisBusBackend, clock: ManualClock, prefix: str
    ) -> None:
        # Redeliveries are due: TAKE_BEFORE parks the cursor; TAKE_AFTER, which puts it
        # back, fails with NOSCRIPT. A cursor left parked would skip the new entries.
        await backend.create_group("g", start="latest")
        await backend.append(make_events(2))
        await take(backend, 2)
        clock.advance(6)
        await backend.append(make_events(2))
        await scripts_only("TAKE_BEFORE")
        mixed = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in mixed] == [(0, 2), (1, 2), (0, 1), (1, 1)]
        assert await raw_state(prefix) == (4, False, False)
        await backend.append(make_events(1))
        (last,) = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert (last.event.data["n"], last.attempt) == (0, 1)
        assert (await backend.group_stats("g")).lag == 0

    @pytest.mark.anyio
    async def test_new_transaction_connection_loads_the_scripts(
        self, backend: RedisBusBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def no_recovery(*args: object) -> None:
            raise AssertionError("the scripts should have been loaded")

        await scripts_only()
        monkeypatch.setattr(backend, "_recover", no_recovery)
        await backend.create_group("g", start="latest")
        await backend.append(make_events(2))
        got = await take(backend, 2)
        assert [d.event.data["n"] for d in got] == [0, 1]

    @pytest.mark.anyio
    async def test_ack_ignores_receipts_that_are_not_stream_ids(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(3))
        a, b, c = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        await backend.ack("g", [a.receipt, "nope", f"{b.receipt},{c.receipt}"])
        clock.advance(6)
        again = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.position, d.attempt) for d in again] == [(b.position, 2), (c.position, 2)]

    @pytest.mark.anyio
    async def test_late_ack_of_an_expired_batch_is_honoured(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(5))
        slow = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        clock.advance(6)
        (taken,) = await backend.receive("g", "c2", max_count=1, visibility_timeout=5, wait=0)
        await backend.ack("g", [d.receipt for d in slow])  # the slow consumer finishes after all
        assert await backend.receive("g", "c2", max_count=10, visibility_timeout=5, wait=0) == []
        assert (await backend.group_stats("g")).pending == 0
        assert taken.event == slow[0].event

    @pytest.mark.anyio
    async def test_release_outlives_the_batch_deadline(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(2))
        a, b = await backend.receive("g", "c1", max_count=10, visibility_timeout=30, wait=0)
        await backend.release("g", a.receipt, delay=100, error="RuntimeError: later")
        clock.advance(31)
        (got,) = await backend.receive("g", "c1", max_count=10, visibility_timeout=300, wait=0)
        assert (got.event, got.attempt, got.last_error) == (b.event, 2, None)
        clock.advance(70)
        (got,) = await backend.receive("g", "c1", max_count=10, visibility_timeout=300, wait=0)
        assert (got.event, got.attempt, got.last_error) == (a.event, 2, "RuntimeError: later")

    @pytest.mark.anyio
    async def test_pending_entries_trimmed_by_retention_are_counted(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(3))
        await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        await backend.append(make_events(8, start=3))  # max_entries=8 trims the first 3
        clock.advance(6)
        got = await backend.receive("g", "c1", max_count=20, visibility_timeout=5, wait=0)
        assert [d.event.data["n"] for d in got] == list(range(3, 11))
        stats = await backend.group_stats("g")
        assert (stats.lost, stats.pending, stats.trimmed_unread) == (3, 8, 0)

    @pytest.mark.anyio
    async def test_lag_and_entries_trimmed_unread_match_memory(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        memory = MemoryBusBackend(clock=clock, max_entries=8)
        for b in (backend, memory):
            await b.append(make_events(2))
            await b.create_group("g", start="latest")
            await b.create_group("early", start="earliest")
            await b.append(make_events(3, start=2))
        stats = await backend.group_stats("g")
        assert (stats.lag, stats.trimmed_unread) == (3, 0)
        assert (await backend.group_stats("early")).lag == 5
        for b in (backend, memory):
            await b.append(make_events(8, start=5))  # trims entries neither group read
            got = await b.receive("g", "c", max_count=20, visibility_timeout=5, wait=0)
            assert [d.event.data["n"] for d in got] == list(range(5, 13))
            await b.receive("early", "c", max_count=20, visibility_timeout=5, wait=0)
        for group in ("g", "early"):
            ours, spec = await backend.group_stats(group), await memory.group_stats(group)
            assert (ours.lag, ours.trimmed_unread) == (spec.lag, spec.trimmed_unread)
        assert (await backend.group_stats("early")).trimmed_unread == 5

    @pytest.mark.anyio
    async def test_pending_entries_without_bookkeeping_are_reclaimed(
        self, prefix: str, clock: ManualClock
    ) -> None:
        backend = RedisBusBackend(REDIS_URL, prefix=prefix, clock=clock, reclaim_after=0.2)
        try:
            await backend.create_group("g", start="latest")
            await backend.append(make_events(3))
            taken = await backend.receive("g", "c1", max_count=10, visibility_timeout=30, wait=0)
            client = redis.asyncio.Redis.from_url(REDIS_URL)
            await client.delete(tagged(prefix, "g:g:due"))  # as if evicted under memory pressure
            await client.aclose()
            await anyio.sleep(0.3)  # idle on Redis's clock; the bus clock stands still
            got = await backend.receive("g", "c2", max_count=10, visibility_timeout=30, wait=0)
            assert [(d.event, d.attempt) for d in got] == [(d.event, 2) for d in taken]
            stats = await backend.group_stats("g")
            assert (stats.reclaimed, stats.pending) == (3, 3)
        finally:
            await backend.aclose()

    @pytest.mark.anyio
    async def test_redrive_survives_trimming_of_the_log_entry(
        self, backend: RedisBusBackend, clock: ManualClock
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(1))
        (d,) = await backend.receive("g", "c1", max_count=1, visibility_timeout=5, wait=0)
        letter = await backend.dead_letter("g", d.receipt, error="manual")
        await backend.append(make_events(20, start=1))  # the log no longer has it
        assert await backend.redrive("g", [letter.id]) == 1
        (again,) = await backend.receive("g", "c1", max_count=1, visibility_timeout=5, wait=0)
        assert (again.event, again.attempt, again.position) == (d.event, 1, d.position)
        await backend.ack("g", [again.receipt])
        clock.advance(6)
        rest = await backend.receive("g", "c1", max_count=50, visibility_timeout=5, wait=0)
        assert d.event not in [r.event for r in rest]
        with pytest.raises(GroupNotFound):
            await backend.group_stats("nope")
        for call in (
            backend.redrive,
            backend.discard_dead_letters,
        ):  # the group is checked first, as in memory
            with pytest.raises(GroupNotFound):
                await call("nope", ["not-an-id"])
            for ids, missing in ((["1-1", "not-an-id"], "1-1"), (["not-an-id"], "not-an-id")):
                with pytest.raises(DeadLetterNotFound) as info:
                    await call("g", ids)
                assert info.value.dead_letter_id == missing


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_consumer_killed_mid_batch_loses_nothing(prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    results = tagged(prefix, "results")
    async with EventBus.from_url(f"{REDIS_URL}?prefix={prefix}") as bus:
        await bus.create_group("g", start="earliest")
        events = [
            Event(type="kill.test", source="/kill", data={"key": "k", "seq": i}) for i in range(600)
        ]
        await bus.publish_batch(events)
        backend = cast(RedisBusBackend, bus.backend)
        victim = spawn("consume", prefix, "victim", "--delay", "0.3", "--visibility", "1")
        survivor = None
        try:

            async def mid_batch() -> bool:
                stats = await backend.group_stats("g")
                return await client.hlen(results) >= 200 and stats.pending > 0

            await wait_for(mid_batch, within=30, what="the victim to be mid-batch")
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            assert await client.hlen(results) < 600
            survivor = spawn("consume", prefix, "survivor", "--visibility", "1")

            async def all_acked() -> bool:
                stats = await backend.group_stats("g")
                return await client.hlen(results) == 600 and stats.pending == 0

            await wait_for(all_acked, within=60, what="every event to be processed and acked")
        finally:
            stop(victim, *([survivor] if survivor else []))
        counts = {k.decode(): int(v) for k, v in (await client.hgetall(results)).items()}
        assert set(counts) == {e.id for e in events}  # none lost
        assert max(counts.values()) >= 2  # the killed batch was processed again
        assert (await client.xpending(tagged(prefix, "log"), "g"))["pending"] == 0
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.dead_letters, stats.lost) == (0, 0, 0)
    await client.aclose()


class RedisServer:
    """A redis-server of the test's own, with an append-only file that survives restarts."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_up(self.url)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: only what appendfsync=always wrote survives
            self.proc.wait(timeout=10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@pytest.mark.slow
@pytest.mark.anyio
async def test_redis_restart_delivers_every_returned_publish(tmp_path: Path) -> None:
    if shutil.which("redis-server") is None:
        require_redis("redis://127.0.0.1:1/0")  # fails in CI, skips elsewhere
    server = RedisServer(tmp_path)
    server.start()
    total, restart_at = 300, 100
    try:
        async with EventBus.from_url(f"{server.url}?prefix=restart") as bus:
            handled: list[int] = []

            async def handler(event: Event) -> None:
                handled.append(event.data["n"])

            await bus.create_group("g")
            await bus.consume("g", handler, timeouts=Timeouts(visibility=2), prefetch=20)
            live: list[int] = []
            returned: list[int] = []
            failures = 0
            async with bus.subscribe() as sub, anyio.create_task_group() as tg:

                async def listen() -> None:
                    async for item in sub:
                        assert isinstance(item, Event)
                        live.append(item.data["n"])

                async def restart_later() -> None:
                    await anyio.sleep(0.5)
                    await anyio.to_thread.run_sync(server.start)

                tg.start_soon(listen)
                for event in make_events(total):
                    while True:
                        try:
                            await bus.publish(event)  # the same event again: deduplicated
                            break
                        except BackendUnavailable:
                            failures += 1
                            await anyio.sleep(0.05)
                    returned.append(event.data["n"])
                    if len(returned) == restart_at:
                        server.kill()  # and back in a moment, while we keep publishing
                        tg.start_soon(restart_later)

                with anyio.fail_after(60):
                    while sorted(set(handled)) != returned or live != returned:  # noqa: ASYNC110
                        await anyio.sleep(0.05)
                tg.cancel_scope.cancel()
            assert failures > 0  # publishing really went on while Redis was down
            assert sorted(set(handled)) == returned  # the group: at least once
            assert live == returned  # the subscriber: in order, no gap, no duplicate
            backend = cast(RedisBusBackend, bus.backend)
            assert len(await backend.read(None, limit=10 * total)) == total  # dedupe held
    finally:
        server.kill()


@pytest.mark.slow
@pytest.mark.anyio
async def test_always_failing_handler_dead_letters_after_max_attempts(prefix: str) -> None:
    calls: list[int] = []
    healthy = False

    async def handler(event: Event) -> None:
        calls.append(event.data["n"])
        if not healthy:
            raise ValueError("cannot handle this")

    async with EventBus.from_url(f"{REDIS_URL}?prefix={prefix}") as bus:
        consumer = await bus.consume(
            "dlq", handler, retry=Retry(max_attempts=4, backoff=Backoff(initial=0.02, jitter=0))
        )
        event = make_events(1)[0]
        await bus.publish(event)
        await eventually(lambda: consumer.stats.dead_lettered == 1)
        assert len(calls) == 4  # exactly max_attempts
        (letter,) = await bus.dead_letters("dlq")
        assert (letter.event, letter.attempts) == (event, 4)
        assert letter.error == "ValueError: cannot handle this"
        client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
        ((dead_id, fields),) = await client.xrange(tagged(prefix, "g:dlq:dlq"))
        await client.aclose()
        assert dead_id == letter.id
        assert (fields["a"], fields["r"], fields["p"]) == ("4", letter.error, letter.position)
        healthy = True
        assert await bus.redrive("dlq") == 1
        await eventually(lambda: consumer.stats.succeeded == 1)
        assert len(calls) == 5
        assert await bus.dead_letters("dlq") == []


@pytest.mark.anyio
async def test_two_groups_in_two_processes_each_get_every_event(prefix: str) -> None:
    url = f"{REDIS_URL}?prefix={prefix}"
    seen: dict[str, list[int]] = {"a": [], "b": []}
    async with EventBus.from_url(url) as one, EventBus.from_url(url) as two:
        for bus, name in ((one, "a"), (two, "b")):

            async def handler(event: Event, name: str = name) -> None:
                seen[name].append(event.data["n"])

            await bus.consume(name, handler)
            await bus.consume(name, handler)  # two members per group
        await one.publish_batch(make_events(100))
        await eventually(lambda: len(seen["a"]) >= 100 and len(seen["b"]) >= 100)
        await anyio.sleep(0.1)
    assert sorted(seen["a"]) == sorted(seen["b"]) == list(range(100))


# -- many processes ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.anyio
async def test_many_processes_ack_each_event_exactly_once_in_order(prefix: str) -> None:
    per_publisher, publishers, consumers = 10_000, 2, 3
    total = per_publisher * publishers
    client = redis.asyncio.Redis.from_url(REDIS_URL, decode_responses=True)
    results = tagged(prefix, "results")
    async with EventBus.from_url(f"{REDIS_URL}?prefix={prefix}&max_entries=100000") as bus:
        await bus.create_group("g", start="earliest")
        backend = cast(RedisBusBackend, bus.backend)
        procs = [spawn("consume", prefix, f"c{i}") for i in range(consumers)]
        try:
            procs += [
                spawn("publish", prefix, f"p{i}", str(per_publisher)) for i in range(publishers)
            ]

            async def done() -> bool:
                stats = await backend.group_stats("g")
                return await client.hlen(results) == total and stats.pending == 0

            await wait_for(done, within=90, what=f"{total} events to be acked")
            assert all(p.wait(timeout=30) == 0 for p in procs[consumers:])  # publishers
        finally:
            stop(*procs)
        counts = await client.hgetall(results)
        assert len(counts) == total
        assert set(counts.values()) == {"1"}  # each event handled, then acked, exactly once
        # Order per partition key: in the log, and in each consumer's processing order.
        log = await backend.read(None, limit=total + 1)
        assert len(log) == total
        last: dict[str, int] = {}
        for entry in log:
            key, seq = entry.event.data["key"], entry.event.data["seq"]
            assert seq > last.get(key, -1)
            last[key] = seq
        busy = 0
        for i in range(consumers):
            order = await client.lrange(tagged(prefix, f"order:c{i}"), 0, -1)
            busy += bool(order)
            last = {}
            for item in order:
                key, _, seq_text = item.rpartition(":")
                assert int(seq_text) > last.get(key, -1), f"c{i} handled {key} out of order"
                last[key] = int(seq_text)
        assert busy >= 2  # the work really was shared
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.dead_letters, stats.lost) == (0, 0, 0)
    await client.aclose()


# -- the docs ----------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parents[2] / "docs" / "backends.md"
DOC_BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.M | re.S)


def test_backends_page_has_examples() -> None:
    assert len(DOC_BLOCKS) >= 3


@pytest.mark.parametrize("code", DOC_BLOCKS, ids=[f"block{i}" for i in range(len(DOC_BLOCKS))])
def test_backends_page_block_runs(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    prefixes = set(re.findall(r"prefix=([\w-]+)", code))
    try:
        exec(compile(code, str(DOC), "exec"), {"__name__": "__docs__"})
    finally:
        for prefix in prefixes:
            delete_prefix(prefix)
    if "print(" in code:
        assert capsys.readouterr().out.strip()
