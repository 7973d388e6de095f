"""Presence in one process's memory: :class:`MemoryPresence`, for one gateway and for tests."""

from __future__ import annotations

import heapq
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel

from ..core import Clock, SystemClock
from ..errors import BusClosed, EventsMissed
from ._presence import (
    LISTENER_BUFFER,
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

__all__ = ["MemoryPresence"]


class _Listener:
    """One ``events(channel)`` context of :class:`MemoryPresence`."""

    def __init__(self, owner: MemoryPresence, channel: str) -> None:
        self._owner = owner
        self.channel = channel
        self.missed = 0

    def put(self, event: PresenceEvent) -> None:
        try:
            self._send.send_nowait(event)
        except anyio.WouldBlock:
            self.missed += 1
        except anyio.ClosedResourceError:
            pass

    def close(self) -> None:
        self._send.close()

    async def __aenter__(self) -> AsyncIterator[PresenceEvent]:
        self._owner._check_open()
        self._send, self._receive = anyio.create_memory_object_stream[PresenceEvent](
            LISTENER_BUFFER
        )
        self._owner._listeners.setdefault(self.channel, set()).add(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        listeners = self._owner._listeners.get(self.channel)
        if listeners is not None:
            listeners.discard(self)
            if not listeners:
                del self._owner._listeners[self.channel]
        self._send.close()
        self._receive.close()

    def __aiter__(self) -> AsyncIterator[PresenceEvent]:
        return self

    async def __anext__(self) -> PresenceEvent:
        if self.missed:
            missed, self.missed = self.missed, 0
            raise EventsMissed(missed=missed, after=None)
        try:
            return await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None


class MemoryPresence(SweeperLifecycle):
    """Presence in this process's memory: for one gateway process, and for tests.

    Args:
        ttl: Default seconds a membership lives without a heartbeat.
        sweep_interval: Seconds between sweeps of the background sweeper that runs
            inside ``async with``.
        max_info_size: Largest ``info`` accepted, in bytes of JSON.
        clock: Time source of the deadlines and of the sweeper (``ManualClock`` in tests).

    Raises:
        ConfigurationError: A bad setting.

    Example:
        ```python
        import anyio
        from eventpatterns.realtime import MemoryPresence

        async def main() -> None:
            async with MemoryPresence(ttl=30) as presence:
                await presence.join("room:1", "alice", connection="c1", info={"tab": 1})
                await presence.join("room:1", "alice", connection="c2")  # a second tab
                print(await presence.count("room:1"), await presence.members("room:1"))

        anyio.run(main)
        ```
    """

    def __init__(
        self,
        *,
        ttl: float = 30.0,
        sweep_interval: float = 1.0,
        max_info_size: int = 4096,
        clock: Clock | None = None,
    ) -> None:
        check_settings(ttl=ttl, sweep_interval=sweep_interval, max_info_size=max_info_size)
        self.ttl = float(ttl)
        self.sweep_interval = float(sweep_interval)
        self.max_info_size = max_info_size
        self.clock: Clock = clock or SystemClock()
        # channel -> member -> connection -> info JSON (decoded on the way out, as Redis)
        self._channels: dict[str, dict[str, dict[str, str]]] = {}
        self._of_connection: dict[str, set[tuple[str, str]]] = {}  # -> {(channel, member)}
        self._deadlines: dict[tuple[str, str, str], float] = {}
        # A lazy heap of (deadline, key): expiries run in deadline order, then in the
        # order of (channel, member, connection), the order RedisPresence's sorted set
        # has, so both emit the same events in the same order.
        self._due: list[tuple[float, tuple[str, str, str]]] = []
        self._listeners: dict[str, set[_Listener]] = {}
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closed = False

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryPresence:
        """Build from ``memory://?ttl=30``, as the Redis and AWS stores from theirs.

        ``ttl``, ``sweep_interval`` and ``max_info_size`` are read; the other memory
        stores' options are skipped, so one URL serves every store. Keyword
        ``options`` win over the URL.

        Raises:
            ConfigurationError: Not a ``memory://`` URL, or a bad or unknown option.
        """
        from ..backends.memory._url import parse_memory_url

        return cls(**parse_memory_url(url, "MemoryPresence", options))

    # -- lifecycle -------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the sweeper and end every listener's iteration. Idempotent."""
        self._closed = True
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed("the presence is closed")

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
        self._check_open()
        await anyio.lowlevel.checkpoint()
        now = self.clock.time()
        self._sweep(now)
        members = self._channels.setdefault(channel, {})
        connections = members.setdefault(member, {})
        first = not connections
        connections[connection] = text
        self._of_connection.setdefault(connection, set()).add((channel, member))
        self._set_deadline((channel, member, connection), now + seconds)
        if first:
            self._emit(PresenceEvent("join", channel, member, connection, json.loads(text)))
        return first

    async def leave(self, channel: str, member: str, *, connection: str) -> bool:
        """Remove a connection of a member from a channel; see :meth:`Presence.leave`."""
        check_channel("leave", channel)
        check_name("leave", "member", member, limit=MAX_MEMBER)
        check_name("leave", "connection", connection, limit=MAX_CONNECTION)
        self._check_open()
        await anyio.lowlevel.checkpoint()
        self._sweep(self.clock.time())
        return self._remove(channel, member, connection, expired=False)

    async def leave_all(self, connection: str) -> int:
        """Remove a connection from every channel; see :meth:`Presence.leave_all`."""
        check_name("leave_all", "connection", connection, limit=MAX_CONNECTION)
        self._check_open()
        await anyio.lowlevel.checkpoint()
        self._sweep(self.clock.time())
        joined = sorted(self._of_connection.get(connection, ()))
        return sum(self._remove(ch, m, connection, expired=False) for ch, m in joined)

    async def heartbeat(self, connection: str, *, ttl: float | None = None) -> int:
        """Extend a connection's memberships; see :meth:`Presence.heartbeat`."""
        check_name("heartbeat", "connection", connection, limit=MAX_CONNECTION)
        seconds = check_ttl(ttl, self.ttl)
        self._check_open()
        await anyio.lowlevel.checkpoint()
        now = self.clock.time()
        self._sweep(now)
        joined = self._of_connection.get(connection, ())
        for channel, member in joined:
            self._set_deadline((channel, member, connection), now + seconds)
        return len(joined)

    async def members(self, channel: str) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Return who is present; see :meth:`Presence.members`."""
        check_channel("members", channel)
        self._check_open()
        await anyio.lowlevel.checkpoint()
        self._sweep(self.clock.time())
        present = self._channels.get(channel, {})
        return {
            member: {connection: json.loads(text) for connection, text in connections.items()}
            for member, connections in present.items()
        }

    async def count(self, channel: str) -> int:
        """Return how many members are present; see :meth:`Presence.count`."""
        check_channel("count", channel)
        self._check_open()
        await anyio.lowlevel.checkpoint()
        self._sweep(self.clock.time())
        return len(self._channels.get(channel, ()))

    async def expire(self) -> int:
        """Remove what is past its deadline; see :meth:`Presence.expire`."""
        self._check_open()
        await anyio.lowlevel.checkpoint()
        return self._sweep(self.clock.time())

    def events(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[PresenceEvent]]:
        """Listen to a channel's join and leave events; see :meth:`Presence.events`."""
        check_channel("events", channel)
        return _Listener(self, channel)

    # -- the state -------------------------------------------------------------------------

    def _set_deadline(self, key: tuple[str, str, str], deadline: float) -> None:
        self._deadlines[key] = deadline
        heapq.heappush(self._due, (deadline, key))
        if len(self._due) > 64 and len(self._due) > 4 * len(self._deadlines):
            # Heartbeats leave superseded entries behind: rebuild from the live ones.
            self._due = [(d, k) for k, d in self._deadlines.items()]
            heapq.heapify(self._due)

    def _sweep(self, now: float) -> int:
        left = 0
        due = self._due
        while due and due[0][0] <= now:
            deadline, key = heapq.heappop(due)
            if self._deadlines.get(key) == deadline:  # else superseded or removed
                left += self._remove(*key, expired=True)
        return left

    def _remove(self, channel: str, member: str, connection: str, *, expired: bool) -> bool:
        members = self._channels.get(channel)
        connections = members.get(member) if members else None
        if members is None or connections is None or connection not in connections:
            return False
        info = connections.pop(connection)
        del self._deadlines[(channel, member, connection)]
        joined = self._of_connection[connection]
        joined.discard((channel, member))
        if not joined:
            del self._of_connection[connection]
        if connections:
            return False
        del members[member]
        if not members:
            del self._channels[channel]
        self._emit(PresenceEvent("leave", channel, member, connection, json.loads(info), expired))
        return True

    def _emit(self, event: PresenceEvent) -> None:
        for listener in self._listeners.get(event.channel, ()):
            listener.put(event)
