"""URLs and options: everything is checked when the backend is built, naming the option."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import anyio
import pytest
from redis_helpers import REDIS_URL

from eventpatterns import EventBus
from eventpatterns.backends.redis import RedisBusBackend
from eventpatterns.errors import ConfigurationError, MissingDependency


def test_from_url_reads_the_bus_options() -> None:
    backend = RedisBusBackend.from_url(
        "redis://127.0.0.1:6379/0?prefix=myapp&max_entries=5&dedupe_window=1.5"
        "&max_message_size=4096&reclaim_after=600&cluster=false"
    )
    assert backend.prefix == "myapp"
    assert backend._max_entries == 5
    assert backend.capabilities.dedupe_window == 1.5
    assert backend.capabilities.max_message_size == 4096
    assert backend._receiver._reclaim_ms == 600_000
    assert backend._conn.cluster is False


def connection_kwargs(url: str, **options: Any) -> dict[str, Any]:
    """Return what every connection of a backend built from ``url`` is configured with."""
    backend = RedisBusBackend.from_url(url, **options)
    pool: Any = backend._conn._blocking_pool
    client: Any = backend._conn.client
    return {**client.connection_pool.connection_kwargs, "blocking": pool}


def test_url_parts_and_query_reach_the_client_and_the_blocking_pool() -> None:
    url = "redis://alice:s%3Acret@127.0.0.1:6390/3?socket_timeout=2.5&client_name=ep&protocol=3"
    got = connection_kwargs(url)
    for kwargs in (got, got["blocking"].connection_kwargs):
        assert kwargs["host"] == "127.0.0.1"
        assert kwargs["port"] == 6390
        assert kwargs["db"] == 3
        assert (kwargs["username"], kwargs["password"]) == ("alice", "s:cret")
        assert kwargs["socket_timeout"] == 2.5
        assert kwargs["client_name"] == "ep"
        assert kwargs["protocol"] == 3


def test_keyword_options_win_and_reach_the_blocking_pool() -> None:
    got = connection_kwargs("redis://:fromurl@127.0.0.1:6379/0?prefix=p", password="kw", db=2)
    assert (got["password"], got["db"]) == ("kw", 2)
    assert got["blocking"].connection_kwargs["password"] == "kw"
    assert got["blocking"].connection_kwargs["db"] == 2


def test_unix_and_rediss_urls() -> None:
    backend = RedisBusBackend.from_url("unix:///tmp/redis.sock?db=4&prefix=u")
    client: Any = backend._conn.client
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["path"], kwargs["db"]) == ("/tmp/redis.sock", 4)
    tls = RedisBusBackend.from_url("rediss://example.com?ssl_cert_reqs=none")
    tls_client: Any = tls._conn.client
    assert tls_client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert tls._conn._blocking_pool is not None
    assert tls._conn._blocking_pool.connection_class.__name__ == "SSLConnection"


@pytest.mark.parametrize(
    ("url", "options", "named"),
    [
        ("redis://127.0.0.1:abc/0", {}, "port"),
        ("redis://127.0.0.1:99999/0", {}, "port"),
        ("redis://127.0.0.1:6379/0?socket_timeout=abc", {}, "socket_timeout"),
        ("redis://127.0.0.1:6379/0?socket_timeout=nan", {}, "socket_timeout"),
        ("redis://127.0.0.1:6379/0?colour=blue", {}, "colour"),
        ("redis://127.0.0.1:6379/0", {"colour": "blue"}, "colour"),
        ("redis://127.0.0.1:6379/0?db=-1", {}, "db"),
        ("redis://127.0.0.1:6379/0?db=99999999999", {}, "db"),
        ("redis://127.0.0.1:6379/0", {"db": -1}, "db"),
        ("redis://127.0.0.1:6379/abc", {}, "db"),
        ("redis://127.0.0.1:6379/1/2", {}, "db"),
        ("redis://127.0.0.1:6379/1?db=2", {}, "db"),
        ("redis://127.0.0.1:6379/0?cluster=maybe", {}, "cluster"),
        ("redis://127.0.0.1:6379/1?cluster=true", {}, "db"),
        ("redis://127.0.0.1:6379/0?max_entries=lots", {}, "max_entries"),
        ("redis://127.0.0.1:6379/0?max_entries=0", {}, "max_entries"),
        ("redis://127.0.0.1:6379/0?dedupe_window=-1", {}, "dedupe_window"),
        ("redis://127.0.0.1:6379/0?prefix=", {}, "prefix"),
        ("redis://127.0.0.1:6379/0?prefix=a&prefix=b", {}, "prefix"),
        ("redis://127.0.0.1:6379/0?protocol=4", {}, "protocol"),
        ("redis://127.0.0.1:6379/0?socket_keepalive=sometimes", {}, "socket_keepalive"),
        ("redis://127.0.0.1:6379/0?ssl_cert_reqs=always", {}, "ssl_cert_reqs"),
        ("redis://127.0.0.1:6379/0?decode_responses=true", {}, "decode_responses"),
        ("redis://127.0.0.1:6379/0", {"decode_responses": True}, "decode_responses"),
        ("unix://?db=1", {}, "socket path"),
        ("unix:///tmp/r.sock?cluster=true", {}, "cluster"),
        ("memory://", {}, "redis://"),
        ("http://127.0.0.1:6379/0", {}, "redis://"),
    ],
)
def test_bad_urls_and_options_name_the_option(
    url: str, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigurationError, match=named):
        RedisBusBackend.from_url(url, **options)
    if url.startswith(("redis", "unix")):
        with pytest.raises(ConfigurationError, match=named):
            EventBus.from_url(url, **options)


def test_bus_options_in_the_constructors_url_are_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"prefix is read by RedisBusBackend.from_url"):
        RedisBusBackend("redis://127.0.0.1:6379/0?prefix=p")
    with pytest.raises(ConfigurationError, match="prefix"):
        RedisBusBackend(REDIS_URL, prefix="a{b}")


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
        "assert pkg.__all__ == ['RedisBusBackend', 'RedisDeviceRegistry', 'RedisDispatchState',"
        " 'RedisJobStore', 'RedisPresence', 'RedisPushDeadLetters']\n"
        "for make in (pkg.RedisBusBackend, pkg.RedisDeviceRegistry, pkg.RedisJobStore,"
        " pkg.RedisPresence, pkg.RedisDispatchState, pkg.RedisPushDeadLetters):\n"
        "    try:\n        make()\n"
        "    except ImportError as exc:\n        print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.count("pip install 'eventpatterns[redis]'") == 6


def test_trio_is_refused_with_a_clear_error() -> None:
    async def main() -> None:
        backend = RedisBusBackend(REDIS_URL, prefix="unused")
        with pytest.raises(ConfigurationError, match="asyncio only"):
            await backend.last_position()

    anyio.run(main, backend="trio")


@pytest.mark.parametrize(
    ("options", "named"),
    [({"max_entries": 0}, "max_entries"), ({"dedupe_window": -1}, "dedupe_window"),
     ({"max_message_size": 0}, "max_message_size"), ({"reclaim_after": 0}, "reclaim_after"),
     ({"prefix": ""}, "prefix"), ({"prefix": "a}b"}, "prefix")],
)  # fmt: skip
def test_constructor_options_are_checked(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        RedisBusBackend(REDIS_URL, **options)
