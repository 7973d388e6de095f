"""The Lua scripts: shipped as files, helpers defined once, every error reply mapped,
and the receive transaction recovering from a flushed script cache (NOSCRIPT)."""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator, Iterator
from importlib.resources import files

import pytest
import redis.asyncio
from redis_helpers import RedisServer, new_prefix

from eventpatterns.backends.redis import RedisBusBackend, _connection, _scripts
from eventpatterns.bus import Delivery
from eventpatterns.testing import ManualClock, make_events


def require_binaries() -> None:
    if shutil.which("redis-server") is None:
        pytest.skip("needs the redis-server binary")


async def scripts_only(url: str, *names: str) -> None:
    """Flush the script cache of the test's own Redis, then load the named scripts only."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        await client.script_flush()
        for name in names:
            await client.script_load(_scripts.TEXTS[name])
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


async def raw_state(url: str, prefix: str) -> tuple[int, bool, bool]:
    """Return group g's pending count and whether a receive left a mark or a park."""
    client = redis.asyncio.Redis.from_url(url)
    try:
        tag = "{" + prefix + "}"
        pending = await client.xpending(f"{tag}:log", "g")
        mark = await client.hexists(f"{tag}:groups", "g:mark")
        park = await client.hexists(f"{tag}:groups", "g:park")
        return int(pending["pending"]), bool(mark), bool(park)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server of this module's own: SCRIPT FLUSH must not disturb the shared one."""
    require_binaries()
    server = RedisServer(tmp_path_factory.mktemp("scripts"))
    server.start()
    yield server
    server.kill()


@pytest.mark.redis
class TestReceiveRecovery:
    """Either script of the receive transaction may be missing; the group stays right.

    ``SCRIPT FLUSH`` runs on a redis-server of these tests' own, not the shared one.
    """

    @pytest.fixture
    def prefix(self) -> str:
        return new_prefix("scripts")

    @pytest.fixture
    async def backend(
        self, server: RedisServer, prefix: str, clock: ManualClock
    ) -> AsyncIterator[RedisBusBackend]:
        backend = RedisBusBackend(server.url, prefix=prefix, clock=clock, max_entries=8)
        yield backend
        await backend.aclose()

    @pytest.mark.anyio
    @pytest.mark.parametrize(
        "loaded",
        [
            # Both scripts fail with NOSCRIPT (as after a restart that kept no scripts);
            # the transaction's XREADGROUP still runs.
            pytest.param((), id="flushed-cache"),
            # TAKE_BEFORE sent the acks and marked the PEL; TAKE_AFTER did not give the
            # batch its deadline.
            pytest.param(("TAKE_BEFORE",), id="only-take-before"),
            # TAKE_BEFORE neither sent the acks nor marked the PEL.
            pytest.param(("TAKE_AFTER",), id="only-take-after"),
        ],
    )
    async def test_receive_recovers_from_missing_scripts(
        self,
        server: RedisServer,
        backend: RedisBusBackend,
        clock: ManualClock,
        prefix: str,
        loaded: tuple[str, ...],
    ) -> None:
        await backend.create_group("g", start="latest")
        await backend.append(make_events(4))
        first = await take(backend, 2)
        await scripts_only(server.url, *loaded)
        await backend.ack("g", [d.receipt for d in first])
        rest = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [d.event.data["n"] for d in rest] == [2, 3]
        assert await raw_state(server.url, prefix) == (2, False, False)  # the acks were sent
        clock.advance(6)
        again = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in again] == [(2, 2), (3, 2)]
        stats = await backend.group_stats("g")
        assert (stats.pending, stats.lag) == (2, 0)
        assert await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0) == []

    @pytest.mark.anyio
    async def test_parked_cursor_is_restored_when_take_after_is_missing(
        self, server: RedisServer, backend: RedisBusBackend, clock: ManualClock, prefix: str
    ) -> None:
        # Redeliveries are due: TAKE_BEFORE parks the cursor; TAKE_AFTER, which puts it
        # back, fails with NOSCRIPT. A cursor left parked would skip the new entries.
        await backend.create_group("g", start="latest")
        await backend.append(make_events(2))
        await take(backend, 2)
        clock.advance(6)
        await backend.append(make_events(2))
        await scripts_only(server.url, "TAKE_BEFORE")
        mixed = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert [(d.event.data["n"], d.attempt) for d in mixed] == [(0, 2), (1, 2), (0, 1), (1, 1)]
        assert await raw_state(server.url, prefix) == (4, False, False)
        await backend.append(make_events(1))
        (last,) = await backend.receive("g", "c1", max_count=10, visibility_timeout=5, wait=0)
        assert (last.event.data["n"], last.attempt) == (0, 1)
        assert (await backend.group_stats("g")).lag == 0

    @pytest.mark.anyio
    async def test_new_transaction_connection_loads_the_scripts(
        self, server: RedisServer, backend: RedisBusBackend, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def no_recovery(*args: object) -> None:
            raise AssertionError("the scripts should have been loaded")

        await scripts_only(server.url)
        monkeypatch.setattr(backend._receiver, "_recover", no_recovery)
        await backend.create_group("g", start="latest")
        await backend.append(make_events(2))
        got = await take(backend, 2)
        assert [d.event.data["n"] for d in got] == [0, 1]


LUA = files("eventpatterns.backends.redis") / "lua"
HELPERS = (LUA / "helpers.lua").read_text(encoding="utf-8")
OWN = {name: (LUA / f"{name.lower()}.lua").read_text(encoding="utf-8") for name in _scripts.NAMES}
DEFINES = re.compile(r"^local function (\w+)", re.M)


def test_every_script_ships_as_a_lua_file_behind_the_helpers() -> None:
    shipped = {entry.name for entry in LUA.iterdir() if entry.name.endswith(".lua")}
    assert shipped == {"helpers.lua", *(f"{name.lower()}.lua" for name in _scripts.NAMES)}
    for name, text in _scripts.TEXTS.items():
        assert text == HELPERS + OWN[name]


def test_helpers_are_defined_once_and_used() -> None:
    helpers = DEFINES.findall(HELPERS)
    assert len(helpers) == len(set(helpers))
    for name, text in OWN.items():
        assert DEFINES.findall(text) == [], f"{name} defines a function of its own"
    used = set().union(*(re.findall(r"\b(\w+)\(", text) for text in OWN.values()))
    assert set(helpers) <= used | set(re.findall(r"\b(\w+)\(", HELPERS))
    # receive.lua records batches and builds its wait reply with the helpers, no copy.
    receive = OWN["RECEIVE"]
    assert "record_batch(" in receive
    assert "wait_info(" in receive
    assert "'b|' .." not in receive
    assert "XREVRANGE" not in receive


def test_every_error_reply_is_mapped_in_one_table() -> None:
    codes = set().union(*(re.findall(r"fail\('(EP[A-Z]+)'", t) for t in _scripts.TEXTS.values()))
    assert codes == set(_connection.REPLIES)
    assert "error_reply" not in "".join(OWN.values())  # only through fail() in helpers.lua


@pytest.mark.parametrize(
    ("code", "expected"),
    [("EPNOGROUP", "GroupNotFound"), ("EPNODEAD", "DeadLetterNotFound"),
     ("EPNOTPENDING", "LookupError"), ("EPTRIMMED", "LookupError"),
     ("EPSTALE", "StalePosition"), ("EPBEYOND", "InvalidPosition"),
     ("EPEXPIRED", "PositionExpired")],
)  # fmt: skip
def test_each_error_reply_becomes_its_error(code: str, expected: str) -> None:
    context = _connection.Context(group="g", position="1a2b3c4d:1-0")
    error = _connection.REPLIES[code]("1a2b3c4d:5-0", context)
    assert type(error).__name__ == expected
    assert "g" in str(error) or "1a2b3c4d" in str(error)
