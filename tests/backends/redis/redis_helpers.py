"""Helpers for the Redis backend tests: server availability, key clean-up, own servers."""

from __future__ import annotations

import functools
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

WORKER = Path(__file__).with_name("redis_worker.py")
REDIS_URL = os.environ.get("EVENTPATTERNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def redis_available(url: str = REDIS_URL) -> str | None:
    """Return ``None`` when Redis answers, else why not."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (pip install 'eventpatterns[redis]')"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as exc:
        return f"Redis is not reachable at {url}: {exc}"
    return None


@functools.cache
def _cached_reason(url: str) -> str | None:
    return redis_available(url)


def require_redis(url: str = REDIS_URL) -> None:
    """Skip without Redis, except in CI (``CI=true``), where a missing Redis fails."""
    reason = _cached_reason(url) if url == REDIS_URL else redis_available(url)
    if reason is None:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI requires Redis: {reason}")
    pytest.skip(reason)


def new_prefix(label: str = "t") -> str:
    """Return a key prefix no other test uses."""
    return f"eptest:{label}:{uuid.uuid4().hex[:12]}"


def delete_prefix(prefix: str, url: str = REDIS_URL) -> int:
    """Delete every key of one bus (``{prefix}:*``); return how many."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match="{" + prefix + "}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        return len(keys)
    finally:
        client.close()


def free_port() -> int:
    """Return a TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tagged(prefix: str, suffix: str) -> str:
    """Return the name of one key of the bus ``prefix``: ``{prefix}:<suffix>``."""
    return "{" + prefix + "}:" + suffix


def wait_until_up(url: str) -> None:
    """Wait (bounded) until a redis-server the test started answers."""
    deadline = time.monotonic() + 10
    while redis_available(url) is not None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server at {url} did not start")
        time.sleep(0.02)


class RedisServer:
    """A redis-server of the test's own on a free port (extra ``args`` configure it).

    Its append-only file (``appendfsync always``) survives a :meth:`kill` and restart.
    """

    def __init__(self, directory: Path, *args: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.args = args
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory),
             *self.args],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until_up(self.url_with_password())

    def url_with_password(self) -> str:
        if "--requirepass" in self.args:
            password = self.args[self.args.index("--requirepass") + 1]
            return f"redis://:{password}@127.0.0.1:{self.port}/0"
        return self.url

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()  # SIGKILL: only what appendfsync=always wrote survives
            self.proc.wait(timeout=10)
            self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


def spawn(*args: str, url: str = REDIS_URL) -> subprocess.Popen[bytes]:
    """Run ``redis_worker.py MODE URL ...`` in a process of its own."""
    mode, rest = args[0], args[1:]
    return subprocess.Popen([sys.executable, str(WORKER), mode, url, *rest])


def stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def wait_for(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> None:
    """Poll another process's progress (bounded): fail the test if ``check`` never holds."""
    with anyio.move_on_after(within):
        while not await check():  # noqa: ASYNC110 - polling other processes
            await anyio.sleep(0.05)
        return
    pytest.fail(f"timed out after {within}s waiting for {what}")


_TAKEN: set[int] = set()


def _free_cluster_port() -> int:
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


class LocalCluster:
    """Three redis-server primaries in cluster mode, made by the tests, thrown away after."""

    def __init__(self, directory: Path) -> None:
        self.ports = [_free_cluster_port() for _ in range(3)]
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
            ["redis-cli", "--cluster", "create", *nodes, "--cluster-replicas", "0",
             "--cluster-yes"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        import redis

        deadline = time.monotonic() + 20
        for port in self.ports:
            client: Any = redis.Redis(port=port)
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


async def blocked_read(name: str, url: str = REDIS_URL) -> None:
    """Wait until a connection named ``name`` (``client_name=``) is blocked in ``XREAD``."""
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(url)
    try:
        with anyio.fail_after(10):
            while True:
                clients = await client.client_list()
                if any(
                    c["name"] == name and c["cmd"] == "xread" and "b" in c["flags"] for c in clients
                ):
                    return
                await anyio.sleep(0.005)
    finally:
        await client.aclose()
