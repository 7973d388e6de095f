"""Presence frames: a channel's joins and leaves pushed to the subscriptions watching it.

A subscription with ``"presence": channel, "watch": true`` is a *watcher* of the
channel. For each channel with at least one watcher in this gateway process,
:class:`PresenceWatch` runs one listener task (``Presence.events(channel)``; with
``RedisPresence`` that listener hears the changes made by every process) and writes
each event to every watcher as a ``presence`` frame. A new watcher first gets a
``sync`` frame listing the channel's members, then the events: those that arrive
while the list is read are held and written after it, so that a client that replaces
its member set with each ``sync`` and applies each join and leave in order ends with
the right set (a held event may repeat what the list already shows).

When a listener falls behind (``EventsMissed``) it is replaced by a new one and every
watcher of the channel gets a fresh ``sync``; when its backend fails, the same after
``RETRY_AFTER`` seconds; when the presence is closed, the watchers get nothing more.

The gateway owns the tasks (its task group); the last watcher leaving stops its
channel's listener.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ..errors import BusClosed, EventsMissed

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ._presence import Presence, PresenceEvent
    from ._routing import Route

__all__ = ["PresenceWatch"]

logger = logging.getLogger("eventpatterns.realtime")

#: Seconds before a failed listener listens again.
RETRY_AFTER = 1.0


def event_fields(event: PresenceEvent) -> dict[str, Any]:
    """The members of the ``presence`` frame for one join or leave."""
    return {
        "event": event.type,
        "channel": event.channel,
        "member": event.member,
        "info": dict(event.info),
        "expired": event.expired,
    }


class PresenceWatch:
    """The watchers of each channel, and one listener task per watched channel."""

    def __init__(self, presence: Presence, tg: anyio.abc.TaskGroup) -> None:
        self.presence = presence
        self._tg = tg
        self._watchers: dict[str, set[Route]] = {}
        self._scopes: dict[str, anyio.CancelScope] = {}
        #: Watchers whose ``sync`` is being read, with the events held for them.
        self._held: dict[Route, list[dict[str, Any]]] = {}

    def channels(self) -> int:
        """How many channels have a listener running (for tests and stats)."""
        return len(self._scopes)

    def add(self, route: Route) -> None:
        """Mark ``route`` a watcher; it gets frames from its :meth:`sync` on."""
        route.watch = True

    def remove(self, route: Route, channel: str | None) -> None:
        """Stop writing to ``route``; the channel's last watcher stops its listener."""
        route.watch = False
        self._held.pop(route, None)
        if channel is None or (watchers := self._watchers.get(channel)) is None:
            return
        watchers.discard(route)
        if not watchers:
            del self._watchers[channel]
            scope = self._scopes.pop(channel, None)
            if scope is not None:
                scope.cancel()

    async def sync(self, route: Route, channel: str) -> None:
        """Start the channel's listener if needed, then send ``route`` the member list.

        The listener's events from now on are held for the route while the list is
        read, and written after it: a change is in the list, or in an event after it,
        or both. Called by the gateway's presence worker, one at a time.
        """
        if not route.watch:
            return  # it went away before its turn
        self._watchers.setdefault(channel, set()).add(route)
        self._held[route] = []
        try:
            if channel not in self._scopes:
                await self._tg.start(self._listen, channel)
            members = sorted(await self.presence.members(channel))
        except BaseException:
            self.remove(route, channel)
            raise
        held = self._held.pop(route, None)
        if held is None:
            return  # it went away meanwhile
        self._write(route, {"event": "sync", "channel": channel, "members": members})
        for fields in held:
            self._write(route, fields)

    async def _send_sync(self, channel: str, routes: list[Route]) -> None:
        members = sorted(await self.presence.members(channel))
        for route in routes:
            if route.watch and route not in self._held:
                self._write(route, {"event": "sync", "channel": channel, "members": members})

    @staticmethod
    def _write(route: Route, fields: dict[str, Any]) -> None:
        conn = route.conn
        conn.protocol.presence(route.id, fields)
        conn._flush()

    async def _listen(
        self, channel: str, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.CancelScope() as scope:
            self._scopes[channel] = scope
            try:
                await self._listen_loop(channel, task_status)
            finally:
                if self._scopes.get(channel) is scope:
                    del self._scopes[channel]

    async def _listen_loop(self, channel: str, task_status: anyio.abc.TaskStatus[None]) -> None:
        started = False
        while True:
            try:
                async with self.presence.events(channel) as events:
                    if started:  # listening again: the list, then what follows it
                        await self._send_sync(channel, list(self._watchers.get(channel, ())))
                    else:
                        started = True
                        task_status.started()
                    if await self._relay(channel, events):
                        return  # the presence was closed
                continue  # it fell behind: a new listener (the old one's backlog is stale)
            except BusClosed:
                if not started:
                    raise
                return
            except Exception:
                if not started:
                    raise  # sync() reports it (the presence loop logs it)
                logger.exception("presence listener of %r failed; listening again", channel)
            await anyio.sleep(RETRY_AFTER)

    async def _relay(self, channel: str, events: AsyncIterator[PresenceEvent]) -> bool:
        """Write the listener's events to the watchers; ``False`` once it missed some."""
        while True:
            try:
                event = await events.__anext__()
            except EventsMissed:
                return False
            except StopAsyncIteration:
                return True
            fields = event_fields(event)
            for route in list(self._watchers.get(channel, ())):
                held = self._held.get(route)
                if held is None:
                    self._write(route, fields)
                else:
                    held.append(fields)
