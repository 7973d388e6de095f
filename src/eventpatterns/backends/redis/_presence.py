"""Presence on Redis: shared by every gateway process, with expiry any of them can sweep.

Each call is one Lua script (``lua/presence/*.lua``, after ``lua/presence/helpers.lua``)
that first removes the memberships past their deadline, then does its work, atomically:
a membership is removed, and its leave event published, by exactly one caller, however
many processes sweep. Deadlines are stored (a sorted set scored by the injected
clock's time), so a process that dies without leaving has its connections expired by
the others. Events travel on Redis Pub/Sub, one channel per presence channel, published
from inside the scripts, so every listener sees them in the order they were applied.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from importlib.resources import files
from typing import Any

import anyio
import anyio.abc

from ...core import Clock, SystemClock
from ...errors import BackendUnavailable, BusClosed, ConfigurationError
from ...realtime._presence import (
    MAX_CONNECTION,
    MAX_MEMBER,
    PresenceEvent,
    SweeperLifecycle,
    check_channel,
    check_join,
    check_name,
    check_settings,
    check_ttl,
)
from ._connection import RedisConnection
from ._url import STORE_OPTIONS, split_store_url

__all__ = ["RedisPresence"]

#: How many expired memberships one script call removes at most (bounds its run time).
SWEEP_BATCH = 500

#: The query options ``RedisPresence.from_url`` reads.
PRESENCE_OPTIONS = STORE_OPTIONS["RedisPresence"]


def _script(name: str) -> str:
    lua = files(__package__) / "lua" / "presence"
    helpers = (lua / "helpers.lua").read_text(encoding="utf-8")
    return helpers + (lua / f"{name}.lua").read_text(encoding="utf-8")


_SCRIPTS = ("join", "leave", "leave_all", "heartbeat", "read", "expire")


class RedisPresence(SweeperLifecycle):
    """Presence on Redis, shared by every process using the same prefix.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` or
            ``unix:///path``, with redis-py connection options in the query.
        prefix: Key namespace (keys are ``{prefix}:presence:...``); instances with the
            same prefix on the same database share their presence. It may be the
            prefix of a bus: the keys do not collide.
        ttl: Default seconds a membership lives without a heartbeat.
        sweep_interval: Seconds between sweeps of the background sweeper that runs
            inside ``async with`` (run one in at least one process).
        max_info_size: Largest ``info`` accepted, in bytes of JSON.
        clock: Time source of deadlines and of the sweeper; processes sharing a
            presence need roughly synchronised clocks.
        **redis_options: redis-py client options (``password``, ``ssl_ca_certs``...).

    Raises:
        ConfigurationError: A bad URL or setting.
        MissingDependency: redis-py is not installed.

    Example:
        ```python
        import anyio
        from eventpatterns.backends.redis import RedisPresence

        async def main() -> None:
            url = "redis://127.0.0.1:6379/0?prefix=docs-presence&ttl=30"
            async with RedisPresence.from_url(url) as presence:
                await presence.join("room:1", "alice", connection="gw1-c1")
                print(await presence.members("room:1"))
                await presence.leave_all("gw1-c1")

        anyio.run(main)
        ```
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventpatterns",
        ttl: float = 30.0,
        sweep_interval: float = 1.0,
        max_info_size: int = 4096,
        clock: Clock | None = None,
        **redis_options: Any,
    ) -> None:
        check_settings(ttl=ttl, sweep_interval=sweep_interval, max_info_size=max_info_size)
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"prefix must be non-empty without braces, got {prefix!r}")
        self.prefix = prefix
        self.ttl = float(ttl)
        self.sweep_interval = float(sweep_interval)
        self.max_info_size = max_info_size
        self.clock: Clock = clock or SystemClock()
        self._base = "{" + prefix + "}:presence:"
        self._due = self._base + "due"
        self._conn = RedisConnection(
            url, cluster=False, route_key=self._due, redis_options=redis_options
        )
        client = self._conn.client
        self._scripts = {name: client.register_script(_script(name)) for name in _SCRIPTS}
        self._listeners: set[_RedisListener] = set()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisPresence:
        """Build from ``redis://host:port/db?prefix=myapp&ttl=30&sweep_interval=1``.

        ``prefix``, ``ttl``, ``sweep_interval`` and ``max_info_size`` are read from the
        query string, with the redis-py connection options of ``docs/backends.md``; the
        other Redis stores' options (a bus URL's ``max_entries``...) are skipped, so one
        URL serves every store. Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not a Redis URL, or a malformed or unknown option.
        """
        return cls(split_store_url(url, options, "RedisPresence"), **options)

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the sweeper, end every listener's iteration and close connections."""
        if self._closed:
            return
        self._closed = True
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        for listener in list(self._listeners):
            listener.stop()
        await self._conn.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed("the Redis presence is closed")

    async def _run(self, name: str, *args: Any) -> Any:
        self._check_open()
        keys = [self._due]
        head: list[Any] = [self._base, repr(self.clock.time()), SWEEP_BATCH]
        with self._conn.mapped():
            return await self._scripts[name](keys=keys, args=[*head, *args])

    # -- the contract --------------------------------------------------------------------

    async def join(
        self,
        channel: str,
        member: str,
        *,
        connection: str,
        info: Mapping[str, Any] | None = None,
        ttl: float | None = None,
    ) -> bool:
        """Join a connection of a member to a channel; see :meth:`Presence.join`."""
        seconds, text = check_join(
            channel, member, connection, info, ttl,
            default_ttl=self.ttl, max_info_size=self.max_info_size,
        )  # fmt: skip
        deadline = repr(self.clock.time() + seconds)
        return bool(await self._run("join", channel, member, connection, text, deadline))

    async def leave(self, channel: str, member: str, *, connection: str) -> bool:
        """Remove a connection of a member from a channel; see :meth:`Presence.leave`."""
        check_channel("leave", channel)
        check_name("leave", "member", member, limit=MAX_MEMBER)
        check_name("leave", "connection", connection, limit=MAX_CONNECTION)
        return bool(await self._run("leave", channel, member, connection))

    async def leave_all(self, connection: str) -> int:
        """Remove a connection from every channel; see :meth:`Presence.leave_all`."""
        check_name("leave_all", "connection", connection, limit=MAX_CONNECTION)
        return int(await self._run("leave_all", connection))

    async def heartbeat(self, connection: str, *, ttl: float | None = None) -> int:
        """Extend a connection's memberships; see :meth:`Presence.heartbeat`."""
        check_name("heartbeat", "connection", connection, limit=MAX_CONNECTION)
        seconds = check_ttl(ttl, self.ttl)
        deadline = repr(self.clock.time() + seconds)
        return int(await self._run("heartbeat", connection, deadline))

    async def _read(self, channel: str, what: str) -> Any:
        while True:  # each call expires at most SWEEP_BATCH; read once none are due
            reply = await self._run("read", channel, what)
            if reply[0] == 0:
                return reply[1]

    async def members(self, channel: str) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Return who is present; see :meth:`Presence.members`."""
        check_channel("members", channel)
        flat = await self._read(channel, "members")
        out: dict[str, dict[str, Mapping[str, Any]]] = {}
        for i in range(0, len(flat), 2):
            member, _, connection = flat[i].decode().partition("\n")
            out.setdefault(member, {})[connection] = json.loads(flat[i + 1])
        return out

    async def count(self, channel: str) -> int:
        """Return how many members are present; see :meth:`Presence.count`."""
        check_channel("count", channel)
        return int(await self._read(channel, "count"))

    async def expire(self) -> int:
        """Remove what is past its deadline; see :meth:`Presence.expire`."""
        total = 0
        while True:
            left, more = await self._run("expire")
            total += int(left)
            if not more:
                return total

    def events(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[PresenceEvent]]:
        """Listen to a channel's join and leave events (a Pub/Sub connection of its own).

        See :meth:`Presence.events`. A listener whose connection drops (or that Redis
        disconnects for falling too far behind, ``client-output-buffer-limit pubsub``)
        gets ``BackendUnavailable`` from the iterator, which then ends: events may
        have been missed, so open a new listener and read :meth:`members`. Each
        listener holds a Pub/Sub connection of its own.
        """
        check_channel("events", channel)
        return _RedisListener(self, channel)


class _RedisListener:
    """One ``events(channel)`` context: a Pub/Sub subscription, confirmed on entry."""

    def __init__(self, owner: RedisPresence, channel: str) -> None:
        self._owner = owner
        self.channel = channel
        self._pubsub: Any = None
        self._scope: anyio.CancelScope | None = None
        self._stopped = False

    def stop(self) -> None:
        """End the iteration (the presence is closing)."""
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    async def __aenter__(self) -> AsyncIterator[PresenceEvent]:
        owner = self._owner
        owner._check_open()
        conn = owner._conn
        with conn.mapped():
            self._pubsub = conn.client.pubsub()
            try:
                await self._pubsub.subscribe(owner._base + "ev:" + self.channel)
                with anyio.fail_after(30):
                    # Live once Redis confirms the subscription: wait for that reply.
                    while True:
                        message = await self._pubsub.get_message(timeout=30)
                        if message is not None and message["type"] == "subscribe":
                            break
            except BaseException:
                await self._close()
                raise
        owner._listeners.add(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._owner._listeners.discard(self)
        await self._close()

    async def _close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await pubsub.aclose()

    def __aiter__(self) -> AsyncIterator[PresenceEvent]:
        return self

    async def __anext__(self) -> PresenceEvent:
        while True:
            if self._stopped or self._pubsub is None:
                raise StopAsyncIteration
            with anyio.CancelScope() as scope:
                self._scope = scope
                try:
                    with self._owner._conn.mapped():  # BackendUnavailable, or BusClosed
                        message = await self._pubsub.get_message(
                            ignore_subscribe_messages=True, timeout=None
                        )
                except BusClosed:
                    raise StopAsyncIteration from None
                except BackendUnavailable:
                    # redis-py would resubscribe on the next read, silently past a gap:
                    # this listener ends instead; open another and read members().
                    self._stopped = True
                    raise
                finally:
                    self._scope = None
            if scope.cancelled_caught:
                raise StopAsyncIteration
            if message is None or message.get("type") != "message":
                continue
            kind, member, connection, info, expired = json.loads(message["data"])
            return PresenceEvent(
                kind, self.channel, member, connection, json.loads(info), bool(expired)
            )
