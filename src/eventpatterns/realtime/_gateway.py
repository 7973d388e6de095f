"""The real-time hub: connections, their subscriptions, routing, resume, backpressure."""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import secrets
import sys
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from ..bus import EventBus, LogEntry, SupportsMatch
from ..core import Clock, Event, SystemClock
from ..errors import (
    InvalidState,
)
from ..observability._metrics import metrics
from ._auth import Authorizer, Credentials, Principal, SubscriptionAuthorizer
from ._connection import Connection
from ._frames import CloseCode, encode_event
from ._limits import Limits
from ._presence import Presence
from ._presence_watch import PresenceWatch
from ._protocol import (
    State,
)
from ._resume import resume
from ._routing import Group, Route, Routes
from ._transport import Transport
from ._wire import FLUSH_AT, FrameWriter, text_frame

__all__ = ["CONTROL_SOURCE", "CONTROL_TYPE", "Gateway", "GatewayStats"]

if TYPE_CHECKING:
    import asyncio

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

logger = logging.getLogger("eventpatterns.realtime")
#: Longest a connection's event frames are held to be joined into one write.
HOLD_SECONDS = 0.002
#: Loop iterations they are held (within HOLD_SECONDS; longer while events keep being
#: routed): a few microseconds on an idle loop, and the bus reader's next batches,
#: routed meanwhile, go out in the same write when it is busy.
HOLD_TICKS = 4

#: The type of the control events gateways publish on the bus (``revoke``); every
#: gateway process handles them and no client subscription ever receives one.
CONTROL_TYPE = "eventpatterns.realtime.control"
#: Their source.
CONTROL_SOURCE = "/eventpatterns/realtime"
#: A principal for connections when no authorizer is configured (development only).
ANONYMOUS = Principal(id="anonymous")
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


class EventShaper(Protocol):
    """Shapes events per client profile (``eventpatterns.bff.Profiles`` is one).

    The gateway asks ``profile_of(principal)`` once per subscription, and
    ``encode(profile, event)`` once per event and profile: the JSON text a frame
    carries, or ``None`` when that profile does not show the event (no frame is sent).
    """

    def profile_of(self, principal: Any, /) -> Any:
        """Return the principal's profile (an object with a ``name``)."""
        ...

    def encode(self, profile: Any, event: Event, /) -> str | None:
        """Return the event's JSON text for ``profile`` (``None``: not shown)."""
        ...


class GatewayStats(NamedTuple):
    """Counters of one gateway process (:meth:`Gateway.stats`)."""

    connections: int  #: open connections
    authenticated: int  #: ...of which authenticated
    subscriptions: int  #: live client subscriptions (routed, replaying included)
    patterns: int  #: distinct patterns held in the index
    replaying: int  #: subscriptions still replaying history
    delivered: int  #: event frames queued to transports
    dropped: int  #: event frames not queued: the client's buffer was full
    resyncs: int  #: ``resync-required`` frames sent
    slow_closes: int  #: connections closed with 4409
    revoked: int  #: connections closed with 4403
    position: str | None  #: the last log position routed (``None``: none yet)


class _Sink:
    """The gateway's one sink on the bus's reader: every new entry, unfiltered."""

    __slots__ = ("gateway", "matcher")

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.matcher: SupportsMatch | None = None  # every entry: the gateway routes them

    def push(self, entries: list[LogEntry], /) -> None:
        self.gateway._route(entries)

    def lost(self) -> None:
        self.gateway._lost()

    def end(self) -> None:
        self.gateway._bus_ended()


class Gateway:
    """The real-time hub over an :class:`~eventpatterns.EventBus`.

    Use it as an async context manager inside the bus's. It holds one subscription
    on the bus for the whole process (a sink on the bus's reader) and every client
    subscription in one :class:`~eventpatterns.filters.PatternIndex`; each event is
    matched once, encoded once per (dialect, subscription id) with the bytes of
    ``Event.to_json()`` spliced into the frame, and queued on each matching
    connection's transport (on :func:`serve`'s connections without compression: the
    whole WebSocket frame's bytes, written straight to the socket's transport and
    joined into one write per connection over a few loop iterations, see
    ``docs/realtime-transports.md``).

    Slow clients: each connection's transport reports the bytes it has queued;
    an event that would take it over ``limits.max_buffered`` is not queued. With
    ``slow_client="resync"`` the subscription it was for ends with
    ``resync-required`` (reason ``overflow``, carrying the last position delivered:
    the client subscribes again with ``since`` and gets what it missed, while the
    log still holds it); with ``"close"`` the connection closes with 4409. Either
    way a client that does not read costs at most ``max_buffered`` bytes (plus one
    small frame per subscription), never unbounded memory, and never slows the
    others down: nothing awaits a client.

    Args:
        bus: The event bus (entered).
        authorizer: Credentials → principal; ``None`` lets every connection in as
            ``Principal("anonymous")`` (for development).
        authorize_subscription: Sees each subscription with its principal; returns
            it (possibly narrowed) or raises ``Forbidden``.
        presence: Where connections that subscribe with ``"presence": channel`` are
            recorded (joined, heartbeated every third of ``limits.presence_ttl``, left
            on unsubscribe or disconnect); with ``"watch": true`` the subscription also
            gets the channel's ``presence`` frames (a ``sync`` list, then each join
            and leave). ``None``: both fields are ignored.
        limits: Every bound enforced.
        clock: Wall-clock time (token expiry, auth timeout, rate limits).

    Example:
        ```python
        import anyio
        from eventpatterns import Event, EventBus
        from eventpatterns.realtime import Credentials, Gateway, MemoryTransport


        async def main() -> None:
            async with EventBus.from_url("memory://") as bus, Gateway(bus) as gateway:
                transport = MemoryTransport()
                conn = gateway.connect(transport, Credentials())
                await conn.receive('{"type":"authenticate","token":"dev"}')
                await conn.receive('{"type":"subscribe","id":"s1","pattern":{"type":["hi"]}}')
                await bus.publish(Event(type="hi", source="/docs", data=1))
                frames = [await transport.receive() for _ in range(3)]
                print([f["type"] for f in frames])  # connected, subscribed, event


        anyio.run(main)
        ```
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        authorizer: Authorizer | None = None,
        authorize_subscription: SubscriptionAuthorizer | None = None,
        presence: Presence | None = None,
        limits: Limits | None = None,
        clock: Clock | None = None,
        profiles: EventShaper | None = None,
    ) -> None:
        self.bus = bus
        self.profiles = profiles
        self.authorizer = authorizer
        self.authorize_subscription = authorize_subscription
        self.presence = presence
        self._presence_ops: deque[tuple[str, str, str, str]] = deque()
        self._presence_scope: anyio.CancelScope | None = None
        self._watch: PresenceWatch | None = None
        self.limits = limits = limits if limits is not None else Limits()
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._routes = Routes(limits.patterns)
        self._connections: dict[str, Connection] = {}
        self._by_principal: dict[str, set[Connection]] = {}
        self._sink = _Sink(self)
        self._head: str | None = None
        self._tg: TaskGroup | None = None
        self._closed = False
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        self._timers: list[tuple[float, int, str, str]] = []  # (when, seq, connection id, kind)
        self._timer_seq = itertools.count()
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_due: float | None = None
        self._stops: list[anyio.CancelScope] = []  # one per task of the gateway
        self._dirty: list[FrameWriter] = []  # writers holding frames (see _hold)
        self._routed = False
        self._ticking = False
        self._hold_until = 0.0
        self._counts = dict.fromkeys(("delivered", "dropped", "resyncs", "slow", "revoked"), 0)
        self._unmetered: list[Callable[[], None]] = []

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        if self._tg is not None or self._closed:
            raise InvalidState("a Gateway can be entered only once", state="running")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            self._head = await self.bus.attach(self._sink)
            self._unmetered = _meter(self)
            await tg.start(self._run_timers)
            if self.presence is not None:
                self._watch = PresenceWatch(self.presence, tg)
                await tg.start(self._run_presence)
        except BaseException as exc:
            tg.cancel_scope.cancel()
            await tg.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self.aclose()
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        tg.cancel_scope.cancel()
        try:
            return await tg.__aexit__(exc_type, exc, tb)
        except BaseExceptionGroup as group:
            # As EventBus does: one error comes out as itself, not wrapped in a group.
            if len(group.exceptions) == 1:
                only = group.exceptions[0]
                if only is exc:
                    return False
                raise only from None
            raise

    async def aclose(self) -> None:
        """Close every connection (1001 going away) and leave the bus. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for unregister in self._unmetered:
            unregister()
        self.bus.detach(self._sink)
        for conn in list(self._connections.values()):
            conn.shutdown(CloseCode.GOING_AWAY, "the gateway is shutting down")
        for scope in self._stops:
            scope.cancel()  # the gateway's own tasks; the code around the call goes on
        await anyio.lowlevel.checkpoint()

    @property
    def running(self) -> bool:
        """Whether the gateway is entered and not closed (what a health check reports)."""
        return self._tg is not None and not self._closed

    # -- connections ---------------------------------------------------------------------

    def connect(self, transport: Transport, credentials: Credentials | None = None) -> Connection:
        """Register a new client connection; the transport then drives it.

        The connection must authenticate within ``limits.auth_timeout`` seconds
        (an ``authenticate`` frame, or :meth:`Connection.authenticate_from`), or it
        is closed with 4408.

        Raises:
            InvalidState: The gateway is not running.
        """
        if self._tg is None or self._closed:
            raise InvalidState(
                "the gateway is not running: use `async with Gateway(bus)`",
                state="closed" if self._closed else "new",
            )
        cid = f"{self._prefix}-{next(self._ids)}"
        conn = Connection(self, transport, credentials or Credentials(), cid)
        self._connections[cid] = conn
        self._schedule(conn, self.clock.time() + self.limits.auth_timeout, "auth")
        return conn

    async def _authenticate(self, credentials: Credentials) -> Principal:
        if self.authorizer is None:
            return ANONYMOUS
        principal = await self.authorizer(credentials)
        if not isinstance(principal, Principal):
            raise TypeError(f"the authorizer returned {type(principal).__name__}, not a Principal")
        return principal

    def _admit(self, conn: Connection, principal: Principal) -> bool:
        conns = self._by_principal.setdefault(principal.id, set())
        if self.authorizer is not None and len(conns) >= self.limits.max_connections_per_principal:
            return False
        conns.add(conn)
        return True

    def _forget(self, conn: Connection) -> None:
        self._connections.pop(conn.id, None)
        if conn.channels:
            conn.channels.clear()
            self._presence_queue(("leave_all", conn.id, "", ""))
        for route in conn.routes.values():
            self._routes.remove(route)
            if route.watch and self._watch is not None:
                self._watch.remove(route, route.presence)
        conn.routes.clear()
        principal = conn.protocol.principal
        if principal is not None:
            conns = self._by_principal.get(principal.id)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._by_principal[principal.id]

    def stats(self) -> GatewayStats:
        """Return the gateway's counters now."""
        counts = self._counts
        conns = self._connections.values()
        return GatewayStats(
            connections=len(self._connections),
            authenticated=sum(1 for c in conns if c.protocol.state is State.OPEN),
            subscriptions=self._routes.count,
            patterns=len(self._routes.groups) + (1 if self._routes.everything.routes else 0),
            replaying=sum(1 for c in conns for r in c.routes.values() if r.merge is not None),
            delivered=counts["delivered"],
            dropped=counts["dropped"],
            resyncs=counts["resyncs"],
            slow_closes=counts["slow"],
            revoked=counts["revoked"],
            position=self._head,
        )

    # -- revocation ----------------------------------------------------------------------

    async def revoke(self, principal_id: str, *, reason: str = "revoked") -> int:
        """Close every connection of a principal, in every gateway process on the bus.

        Closes this process's connections at once (close 4403 with ``reason``) and
        publishes a control event (type :data:`CONTROL_TYPE`) that every gateway on
        the bus handles the same way when it reads it.

        Returns:
            How many connections this process closed.
        """
        closed = self._revoke_local(principal_id, reason)
        await self.bus.publish(
            Event(
                type=CONTROL_TYPE,
                source=CONTROL_SOURCE,
                data={"action": "revoke", "principal": principal_id, "reason": reason},
            )
        )
        return closed

    def _revoke_local(self, principal_id: str, reason: str) -> int:
        conns = list(self._by_principal.get(principal_id, ()))
        for conn in conns:
            conn.shutdown(CloseCode.REVOKED, reason[:120])
        self._counts["revoked"] += len(conns)
        return len(conns)

    def _control(self, event: Event) -> None:
        data = event.data
        if isinstance(data, dict) and data.get("action") == "revoke":
            principal, reason = data.get("principal"), data.get("reason")
            if isinstance(principal, str):
                self._revoke_local(principal, reason if isinstance(reason, str) else "revoked")

    # -- routing (the bus reader's task; never awaits) ---------------------------------

    def _route(self, entries: list[LogEntry]) -> None:
        # The hot loop: one pass over each event's recipients, with the frame built
        # once per subscription id (as bytes of a whole WebSocket frame for writers,
        # as text for other transports) and no method call per delivery on the
        # writers' path but the buffer check. Writers' frames are held and joined
        # into one write per connection at the end of the batch (or at FLUSH_AT).
        routes = self._routes
        everything = routes.everything
        groups = routes.groups
        match = routes.index.match
        indexed = len(routes.index) > 0
        max_buffered = self.limits.max_buffered
        shaper = self.profiles
        touched: list[FrameWriter] = []  # writers holding frames of this batch
        delivered = dropped = 0
        try:
            for entry in entries:
                event = entry.event
                if event.type == CONTROL_TYPE and event.source == CONTROL_SOURCE:
                    self._control(event)
                    continue
                doc = None
                targets: list[Group] = []
                if indexed:
                    doc = event.to_dict()
                    targets = [groups[key] for key in match(doc) if key in groups]
                if everything.routes:
                    targets.append(everything)
                if not targets:
                    continue
                # Event.to_json() is exactly this encoding of to_dict(): once per event.
                raw = _DUMPS(doc if doc is not None else event.to_dict())
                plain = raw
                shaped: dict[str, str | None] = {}
                hidden = False
                position = entry.position
                wires: dict[str, bytes] = {}
                texts: dict[str, str] = {}
                last_key = ""
                wire = b""
                text = ""
                size = 0
                for group in targets:
                    for route in group.members():
                        if not route.direct:  # replaying (the merge orders it), or gone
                            if route.active and route.merge is not None:
                                route.merge.push([entry])
                            continue
                        out = route.out
                        key = route.key
                        if key != last_key:  # neighbours in a group mostly share a key
                            last_key = key
                            if shaper is not None:  # shaped per client profile
                                name = route.profile.name
                                if name not in shaped:
                                    shaped[name] = shaper.encode(route.profile, event)
                                shaped_raw = shaped[name]
                                hidden = shaped_raw is None
                                if hidden:
                                    continue
                                raw = shaped_raw or plain
                            if out is not None:
                                cached = wires.get(key)
                                if cached is None:
                                    frame = encode_event("ws", route.id, position, raw)
                                    cached = wires[key] = text_frame(
                                        frame.encode("utf-8", "surrogatepass")
                                    )
                                wire = cached
                                size = len(wire)
                            else:
                                cached_text = texts.get(key)
                                if cached_text is None:
                                    cached_text = texts[key] = encode_event(
                                        route.dialect, route.id, position, raw
                                    )
                                text = cached_text
                                size = len(text)
                        elif hidden:
                            continue
                        if out is not None:
                            held_size = out.held_size + size
                            if out.buffered() + held_size > max_buffered:
                                dropped += 1
                                self._slow(route)
                                continue
                            held = out.held
                            if not held:
                                touched.append(out)
                            held.append(wire)
                            out.held_size = held_size
                            if held_size >= FLUSH_AT:
                                out.flush()
                        else:
                            transport = route.transport
                            if transport.buffered_amount() + size > max_buffered:
                                dropped += 1
                                self._slow(route)
                                continue
                            transport.send(text)
                        route.position = position
                        delivered += 1
        finally:
            if touched:
                self._hold(touched)
            self._head = entries[-1].position
            self._counts["delivered"] += delivered
            self._counts["dropped"] += dropped

    def _hold(self, touched: list[FrameWriter]) -> None:
        # Coalescing (asyncio only: writers exist only there): the held frames go out
        # after HOLD_TICKS loop iterations, or later while events keep being routed,
        # but after at most HOLD_SECONDS: one write per connection for them all.
        import asyncio

        self._dirty.extend(touched)
        self._routed = True
        if not self._ticking:
            loop = asyncio.get_running_loop()
            self._ticking = True
            self._hold_until = loop.time() + HOLD_SECONDS
            loop.call_soon(self._tick, loop, HOLD_TICKS)

    def _tick(self, loop: asyncio.AbstractEventLoop, ticks: int) -> None:
        if (self._routed or ticks > 0) and loop.time() < self._hold_until:
            self._routed = False
            loop.call_soon(self._tick, loop, ticks - 1)
            return
        self._ticking = False
        dirty, self._dirty = self._dirty, []
        for out in dirty:
            out.flush()

    def _slow(self, route: Route) -> None:
        conn = route.conn
        if self.limits.slow_client == "close":
            self._counts["slow"] += 1
            conn.shutdown(CloseCode.SLOW_CONSUMER, "slow consumer: the send buffer is full")
        else:
            self._end_route(route, "overflow")

    def _end_route(self, route: Route, reason: str) -> None:
        conn = route.conn
        self._routes.remove(route)
        self._presence_release(route)
        if conn.routes.get(route.id) is route:
            del conn.routes[route.id]
        if route.merge is not None:
            route.merge.close()
        self._counts["resyncs"] += 1
        conn.protocol.resync_required(route.id, reason, route.position)
        conn._flush()

    def _lost(self) -> None:
        # The bus's reader fell behind the log's retention: every subscription on the
        # direct path may have missed events; replaying ones re-read the log.
        for conn in list(self._connections.values()):
            for route in list(conn.routes.values()):
                if route.merge is not None:
                    route.merge.lost()
                else:
                    self._end_route(route, "overflow")

    def _bus_ended(self) -> None:
        for conn in list(self._connections.values()):
            conn.shutdown(CloseCode.GOING_AWAY, "the event bus closed")

    # -- resume (see _resume.py) ------------------------------------------------------

    async def _resume(
        self,
        conn: Connection,
        sid: str,
        group: Group,
        since: str,
        presence: str | None = None,
        *,
        watch: bool = False,
    ) -> None:
        await resume(self, conn, sid, group, since, presence, watch=watch)

    # -- timers: auth timeout, token expiry --------------------------------------------

    def _schedule(self, conn: Connection, when: float, kind: str) -> None:
        # By id: a closed connection is not kept alive by its pending timers.
        heapq.heappush(self._timers, (when, next(self._timer_seq), conn.id, kind))
        due = self._timer_due
        if self._timer_scope is not None and (due is None or when < due):
            self._timer_scope.cancel()

    def _schedule_expiry(self, conn: Connection, principal: Principal) -> None:
        expires = principal.expires_at
        if expires is None:
            return
        if self.limits.on_token_expiry == "refresh":  # noqa: S105 - a policy name
            self._schedule(conn, expires - self.limits.refresh_window, "warn")
        self._schedule(conn, expires, "expire")

    async def _run_timers(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.CancelScope() as scope:
            self._stops.append(scope)
            task_status.started()
            await self._timer_loop()

    async def _timer_loop(self) -> None:
        timers = self._timers
        while True:
            now = self.clock.time()
            while timers and timers[0][0] <= now:
                _, _, cid, kind = heapq.heappop(timers)
                conn = self._connections.get(cid)
                if conn is not None:
                    self._fire(conn, kind, now)
            with anyio.CancelScope() as scope:
                self._timer_scope = scope
                self._timer_due = timers[0][0] if timers else None
                if self._timer_due is None:
                    await anyio.sleep_forever()
                else:
                    await self.clock.sleep(self._timer_due - now)
            self._timer_scope = None

    def _fire(self, conn: Connection, kind: str, now: float) -> None:
        protocol = conn.protocol
        if conn._released:
            return
        if kind == "auth":
            if protocol.state is State.CONNECTING:
                conn.shutdown(CloseCode.AUTHENTICATION_TIMEOUT, "authentication timed out")
            return
        principal = protocol.principal
        expires = principal.expires_at if principal is not None else None
        if protocol.state is not State.OPEN or expires is None:
            return
        if kind == "warn" and expires - self.limits.refresh_window <= now < expires:
            protocol.token_expiring(expires)
            conn._flush()
        elif kind == "expire" and expires <= now:
            conn.shutdown(CloseCode.AUTHENTICATION_FAILED, "the credentials expired")

    # -- presence: one worker applies joins and leaves in order, and heartbeats -------

    def _presence_join(self, route: Route, channel: str | None, *, watch: bool = False) -> None:
        if channel is None or self.presence is None:
            return
        route.presence = channel
        conn = route.conn
        count = conn.channels.get(channel, 0)
        conn.channels[channel] = count + 1
        principal = conn.protocol.principal
        if count == 0 and principal is not None:
            self._presence_queue(("join", conn.id, principal.id, channel))
        if watch and self._watch is not None:
            self._watch.add(route)
            self._presence_queue(("sync", conn.id, route.id, channel))  # after the join

    def _presence_release(self, route: Route) -> None:
        channel, route.presence = route.presence, None
        if route.watch and self._watch is not None:
            self._watch.remove(route, channel)
        if channel is None:
            return
        conn = route.conn
        count = conn.channels.get(channel, 0) - 1
        principal = conn.protocol.principal
        if count > 0:
            conn.channels[channel] = count
            return
        conn.channels.pop(channel, None)
        if principal is not None:
            self._presence_queue(("leave", conn.id, principal.id, channel))

    def _presence_queue(self, op: tuple[str, str, str, str]) -> None:
        if self.presence is None:
            return
        self._presence_ops.append(op)  # one FIFO: a leave never overtakes its join
        if self._presence_scope is not None:
            self._presence_scope.cancel()

    async def _run_presence(
        self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        with anyio.CancelScope() as scope:
            self._stops.append(scope)
            task_status.started()
            await self._presence_loop()

    async def _presence_loop(self) -> None:
        presence = self.presence
        assert presence is not None  # noqa: S101 - started only with a presence
        ttl = self.limits.presence_ttl
        ops = self._presence_ops
        beat = self.clock.time() + ttl / 3
        while True:
            while ops:
                kind, cid, member, channel = ops.popleft()
                try:
                    if kind == "join":
                        await presence.join(channel, member, connection=cid, ttl=ttl)
                    elif kind == "leave":
                        await presence.leave(channel, member, connection=cid)
                    elif kind == "sync":  # ``member`` is the watching subscription's id
                        await self._sync_watcher(cid, member, channel)
                    else:
                        await presence.leave_all(cid)
                except Exception:  # a presence failure must not take the gateway down
                    logger.exception("presence %s of %s on %r failed", kind, cid, channel)
            now = self.clock.time()
            if now >= beat:
                beat = now + ttl / 3
                await self._heartbeat(presence, ttl)
                continue
            with anyio.CancelScope() as scope:
                self._presence_scope = scope
                if not ops:
                    await self.clock.sleep(beat - now)
            self._presence_scope = None

    async def _sync_watcher(self, cid: str, sid: str, channel: str) -> None:
        conn = self._connections.get(cid)
        route = conn.routes.get(sid) if conn is not None else None
        if route is not None and self._watch is not None:
            await self._watch.sync(route, channel)

    async def _heartbeat(self, presence: Presence, ttl: float) -> None:
        for conn in [c for c in self._connections.values() if c.channels]:
            try:
                if await presence.heartbeat(conn.id, ttl=ttl) == 0 and conn.channels:
                    principal = conn.protocol.principal  # expired meanwhile: join again
                    for channel in list(conn.channels):
                        if principal is not None:
                            await presence.join(channel, principal.id, connection=conn.id, ttl=ttl)
            except Exception:
                logger.exception("presence heartbeat of %s failed", conn.id)


def _meter(gateway: Gateway) -> list[Callable[[], None]]:
    """Expose the gateway's counters as metrics, read from :meth:`Gateway.stats` at scrape."""

    def reader(field: str) -> Callable[[], float]:
        return lambda: float(getattr(gateway.stats(), field))

    return [
        metrics.gauge(f"eventpatterns_gateway_{name}", reader(field))
        for name, field in (
            ("connections", "connections"),
            ("subscriptions", "subscriptions"),
            ("frames_delivered_total", "delivered"),
            ("frames_dropped_total", "dropped"),
        )
    ]
