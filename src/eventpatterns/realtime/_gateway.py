"""The real-time hub: connections, their subscriptions, routing, resume, backpressure."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import logging
import secrets
import sys
from collections.abc import Mapping
from types import TracebackType
from typing import Any, NamedTuple

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup, TaskStatus

from ..bus import EARLIEST, EventBus, LogEntry, SupportsMatch
from ..bus._replay import Gap, Need, ReplayMerge
from ..core import Clock, Event, SystemClock
from ..errors import (
    AuthenticationFailed,
    BackendUnavailable,
    BusClosed,
    Forbidden,
    InvalidPattern,
    InvalidPosition,
    InvalidState,
    PositionExpired,
    ProtocolViolation,
    StalePosition,
)
from ._auth import Authorizer, Credentials, Principal, SubscriptionAuthorizer, SubscriptionRequest
from ._frames import CloseCode, ErrorCode, Subscribe, encode_event
from ._limits import Limits
from ._protocol import (
    AuthenticateRequested,
    ServerProtocol,
    State,
    SubscribeRequested,
    UnsubscribeRequested,
)
from ._routing import Group, Route, Routes
from ._transport import Transport

__all__ = ["CONTROL_SOURCE", "CONTROL_TYPE", "Connection", "Gateway", "GatewayStats"]

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

logger = logging.getLogger("eventpatterns.realtime")

#: The type of the control events gateways publish on the bus (``revoke``); every
#: gateway process handles them and no client subscription ever receives one.
CONTROL_TYPE = "eventpatterns.realtime.control"
#: Their source.
CONTROL_SOURCE = "/eventpatterns/realtime"
#: A principal for connections when no authorizer is configured (development only).
ANONYMOUS = Principal(id="anonymous")
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


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


class Connection:
    """One client connection on a :class:`Gateway` (made by :meth:`Gateway.connect`).

    The transport's handler task drives it: ``await conn.authenticate_from()`` when
    the transport found credentials in the request, then ``await
    conn.receive(frame)`` for each frame, and ``conn.disconnected()`` when the peer
    went away. The gateway writes frames with the transport's ``send`` and closes it
    with ``close`` (then :attr:`closed` is true and :meth:`wait_closed` returns).

    Frames are handled one at a time: while a subscription resumes (replays
    history), ``receive`` returns once it is live; event frames for the other
    subscriptions keep flowing meanwhile.
    """

    def __init__(self, gateway: Gateway, transport: Transport, credentials: Credentials, cid: str):
        self.gateway = gateway
        self.transport = transport
        self.credentials = credentials
        self.id = cid
        self.dialect = transport.dialect
        self.protocol = ServerProtocol(
            limits=gateway.limits, dialect=transport.dialect, clock=gateway.clock.time
        )
        self.routes: dict[str, Route] = {}
        self._done = anyio.Event()
        self._released = False

    @property
    def principal(self) -> Principal | None:
        """Who authenticated (``None`` before)."""
        return self.protocol.principal

    @property
    def closed(self) -> bool:
        """Whether the connection is closing or closed."""
        return self.protocol.state >= State.CLOSING

    @property
    def close_code(self) -> int | None:
        """The close code, once closed."""
        return self.protocol.close_code

    @property
    def close_reason(self) -> str:
        """The close reason, once closed."""
        return self.protocol.close_reason

    async def wait_closed(self) -> None:
        """Wait until the gateway closed the connection (or it was disconnected)."""
        await self._done.wait()

    # -- driven by the transport ---------------------------------------------------------

    async def authenticate_from(self, credentials: Credentials | None = None) -> Principal | None:
        """Authenticate with credentials from the request (header, ``?token=``).

        Args:
            credentials: What to check (default: those given to ``connect``).

        Returns:
            The principal, or ``None`` when refused (the connection is then closed
            with 4401 and an ``authentication_failed`` error frame was sent).
        """
        if self.protocol.state is not State.CONNECTING:
            return self.principal
        self.protocol.present_credentials(credentials or self.credentials)
        await self._process()
        return self.principal if not self.closed else None

    async def receive(self, frame: str | bytes) -> None:
        """Handle one frame from the client (``bytes``: a binary frame).

        Never raises for bad input: the client gets an ``error`` frame or a close.
        """
        protocol = self.protocol
        if isinstance(frame, str):
            protocol.receive_text(frame)
        else:
            protocol.receive_bytes(frame)
        await self._process()

    def disconnected(self) -> None:
        """The peer went away: stop routing to it and forget it."""
        if self.protocol.state is not State.CLOSED:
            self.protocol.connection_lost()
        self._release()

    async def subscribe_sse(
        self,
        *,
        pattern: Mapping[str, Any] | None = None,
        filter: Mapping[str, Any] | None = None,  # noqa: A002 - the protocol's name
        since: str | None = None,
        id: str = "sse",  # noqa: A002
    ) -> None:
        """Start the one subscription of an SSE connection (after authenticating).

        Raises:
            ProtocolViolation: Not authenticated (``code`` ``not_authenticated``), or
                a bad ``pattern``/``filter``/``since`` (``code`` says which).
            InvalidPattern: The pattern or filter does not compile.
            Forbidden: The authorization hook refused the subscription.

        A ``since`` the log cannot resume from is not raised: the client gets
        ``resync-required``.
        """
        protocol = self.protocol
        if protocol.state is not State.OPEN:
            raise ProtocolViolation("authenticate first", code=ErrorCode.NOT_AUTHENTICATED.value)
        protocol.request(Subscribe(id, _object(pattern), _object(filter), since))
        self._flush()
        for event in protocol.events_received():
            if isinstance(event, SubscribeRequested):
                await self._subscribe(event.request, raising=True)
        self._flush()

    # -- handling ------------------------------------------------------------------------

    def _flush(self) -> None:
        protocol = self.protocol
        frames = protocol.data_to_send()
        if frames:
            send = self.transport.send
            for frame in frames:
                send(frame)
        if protocol.state >= State.CLOSING and not self._released:
            if protocol.state is State.CLOSING:
                self.transport.close(protocol.close_code or CloseCode.NORMAL, protocol.close_reason)
            self._release()

    def _release(self) -> None:
        if self._released:
            return
        self._released = True
        self.gateway._forget(self)
        self._done.set()

    def shutdown(self, code: int, reason: str) -> None:
        """Close the connection from the server side (revoked, slow, going away)."""
        self.protocol.close(code, reason)
        self._flush()

    async def _process(self) -> None:
        protocol = self.protocol
        self._flush()
        for event in protocol.events_received():
            if self._released:
                break
            if isinstance(event, AuthenticateRequested):
                await self._authenticate(event)
            elif isinstance(event, SubscribeRequested):
                await self._subscribe(event.request, raising=False)
            elif isinstance(event, UnsubscribeRequested):
                route = self.routes.pop(event.id, None)
                if route is not None:
                    self.gateway._routes.remove(route)
            self._flush()

    async def _authenticate(self, event: AuthenticateRequested) -> None:
        gateway = self.gateway
        protocol = self.protocol
        credentials = event.credentials
        if not credentials.headers and not credentials.query:
            base = self.credentials
            credentials = dataclasses.replace(credentials, headers=base.headers, query=base.query)
        try:
            principal = await gateway._authenticate(credentials)
        except AuthenticationFailed as exc:
            protocol.reject_authentication(str(exc) or "authentication failed")
            return
        except Exception:
            logger.exception("the authorizer failed")
            protocol.reject_authentication("authentication failed (server error)")
            return
        if protocol.state >= State.CLOSING:
            return  # timed out or revoked meanwhile
        now = gateway.clock.time()
        if principal.expires_at is not None and principal.expires_at <= now:
            protocol.reject_authentication("the credentials have expired")
            return
        if not event.refresh and not gateway._admit(self, principal):
            protocol.error(
                ErrorCode.AUTHENTICATION_FAILED,
                f"at most {gateway.limits.max_connections_per_principal} connections per principal",
            )
            protocol.reject_authentication("too many connections", code=CloseCode.TOO_MANY)
            return
        protocol.accept(principal, self.id)
        if protocol.state is State.OPEN:
            gateway._schedule_expiry(self, principal)

    async def _subscribe(self, request: SubscriptionRequest, *, raising: bool) -> None:
        protocol = self.protocol
        sid = request.id
        try:
            group, since = await self._authorize(request)
        except (Forbidden, InvalidPattern, ProtocolViolation) as exc:
            if isinstance(exc, Forbidden):
                code = ErrorCode.FORBIDDEN
            elif isinstance(exc, InvalidPattern):
                code = ErrorCode.INVALID_PATTERN
            else:
                code = ErrorCode(exc.code)
            if protocol.subscriptions.get(sid) == "pending":
                protocol.refuse(sid, code, str(exc))
            if raising:
                raise
            return
        if protocol.state is not State.OPEN or protocol.subscriptions.get(sid) != "pending":
            self.gateway._routes.drop_if_unused(group)
            return
        if since is None:
            route = Route(self, sid, group, self.gateway._head)
            self.routes[sid] = route
            self.gateway._routes.add(route)
            protocol.confirm(sid, route.position)
            return
        await self.gateway._resume(self, sid, group, since)

    async def _authorize(self, request: SubscriptionRequest) -> tuple[Group, str | None]:
        gateway = self.gateway
        hook = gateway.authorize_subscription
        principal = self.protocol.principal
        if hook is not None and principal is not None:
            try:
                narrowed = await hook(principal, request)
            except (Forbidden, InvalidPattern):
                raise
            except Exception as exc:
                logger.exception("the subscription authorizer failed")
                raise ProtocolViolation(
                    "the subscription could not be authorized (server error)",
                    code=ErrorCode.INTERNAL_ERROR.value,
                ) from exc
            checked: object = narrowed  # a hook's bug must not corrupt the routing
            if not isinstance(checked, SubscriptionRequest):
                logger.error("authorize_subscription returned %r", type(narrowed).__name__)
                raise ProtocolViolation(
                    "the subscription could not be authorized (server error)",
                    code=ErrorCode.INTERNAL_ERROR.value,
                )
            request = narrowed
        group = gateway._routes.group_for(request.pattern, request.filter)
        return group, request.since


def _object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ProtocolViolation(
            "a pattern or filter is a JSON object", code=ErrorCode.INVALID_FRAME.value
        )
    return dict(value)


class Gateway:
    """The real-time hub over an :class:`~eventpatterns.EventBus`.

    Use it as an async context manager inside the bus's. It holds one subscription
    on the bus for the whole process (a sink on the bus's reader) and every client
    subscription in one :class:`~eventpatterns.filters.PatternIndex`; each event is
    matched once, encoded once per (dialect, subscription id) with the bytes of
    ``Event.to_json()`` spliced into the frame, and queued on each matching
    connection's transport.

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
        limits: Limits | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.bus = bus
        self.authorizer = authorizer
        self.authorize_subscription = authorize_subscription
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
        self._timers: list[tuple[float, int, Connection, str]] = []
        self._timer_seq = itertools.count()
        self._timer_scope: anyio.CancelScope | None = None
        self._timer_due: float | None = None
        self._stop = anyio.CancelScope()
        self._counts = dict.fromkeys(("delivered", "dropped", "resyncs", "slow", "revoked"), 0)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        if self._tg is not None or self._closed:
            raise InvalidState("a Gateway can be entered only once", state="running")
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        try:
            self._head = await self.bus.attach(self._sink)
            await tg.start(self._run_timers)
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
        self.bus.detach(self._sink)
        for conn in list(self._connections.values()):
            conn.shutdown(CloseCode.GOING_AWAY, "the gateway is shutting down")
        self._stop.cancel()  # the timers; the code around the call goes on
        await anyio.lowlevel.checkpoint()

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
        for route in conn.routes.values():
            self._routes.remove(route)
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
        routes = self._routes
        everything = routes.everything
        groups = routes.groups
        match = routes.index.match
        indexed = len(routes.index) > 0
        counts = self._counts
        delivered = dropped = 0
        max_buffered = self.limits.max_buffered
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
            # Event.to_json() is exactly this encoding of to_dict(): one encoding per event.
            raw = _DUMPS(doc if doc is not None else event.to_dict())
            position = entry.position
            frames: dict[tuple[str, str], str] = {}
            for group in targets:
                for route in group.members():
                    if not route.active:
                        continue
                    merge = route.merge
                    if merge is not None:  # replaying: the merge orders it
                        merge.push([entry])
                        continue
                    conn = route.conn
                    key = (conn.dialect, route.id if conn.dialect == "ws" else "")
                    frame = frames.get(key)
                    if frame is None:
                        frame = frames[key] = encode_event(conn.dialect, route.id, position, raw)
                    transport = conn.transport
                    if transport.buffered_amount() + len(frame) > max_buffered:
                        dropped += 1
                        self._slow(route)
                        continue
                    transport.send(frame)
                    route.position = position
                    delivered += 1
        self._head = entries[-1].position
        counts["delivered"] += delivered
        counts["dropped"] += dropped

    async def _deliver(self, route: Route, entry: LogEntry) -> bool:
        """Queue one replayed event for one route, paced by the client.

        History is pulled from the log, so a replay can wait for the client to read
        (live entries meanwhile wait in the merge, or are re-read from the log): it
        waits until the buffer is half empty, up to ``limits.send_timeout`` seconds,
        before the slow-client policy applies.
        """
        conn = route.conn
        frame = encode_event(conn.dialect, route.id, entry.position, _DUMPS(entry.event.to_dict()))
        transport = conn.transport
        limit = self.limits.max_buffered
        if transport.buffered_amount() + len(frame) > limit:
            with anyio.move_on_after(self.limits.send_timeout):
                while transport.buffered_amount() > limit // 2 and route.active:
                    await anyio.sleep(0.005)
            if not route.active:
                return False
        if transport.buffered_amount() + len(frame) > limit:
            self._counts["dropped"] += 1
            self._slow(route)
            return False
        transport.send(frame)
        route.position = entry.position
        self._counts["delivered"] += 1
        return True

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

    # -- resume --------------------------------------------------------------------------

    async def _resume(self, conn: Connection, sid: str, group: Group, since: str) -> None:
        """Replay the log after ``since`` to a new route, then put it on the direct path.

        Live entries routed to it meanwhile are held in a :class:`ReplayMerge`, which
        goes live only after a page read that began after the last one it dropped
        came back empty; it drops the held entries the replay already covered, so
        there is no gap and no duplicate (see ``eventpatterns.bus._replay``).
        """
        protocol = conn.protocol
        backend = self.bus.backend
        after = None if since == EARLIEST else since
        if after is not None:
            try:
                backend.sort_key(after)
            except StalePosition:
                self._refuse_position(conn, sid, "stale_position")
                return
            except InvalidPosition:
                self._refuse_position(conn, sid, "invalid_position")
                return
        merge = ReplayMerge(
            backend.sort_key, buffer=self.limits.replay_buffer, overflow="drop_oldest"
        )
        merge.start_replay(after)
        route = Route(conn, sid, group, after)
        route.merge = merge
        conn.routes[sid] = route
        self._routes.add(route)
        if not await self._read_page(route):
            return
        if not route.active or protocol.state is not State.OPEN:
            return
        protocol.confirm(sid, since)
        conn._flush()
        while route.active:
            item = merge.next()
            if isinstance(item, LogEntry):
                if not await self._deliver(route, item):
                    return
            elif item is Need.PAGE:
                if not await self._read_page(route):
                    return
            elif isinstance(item, Gap):  # pragma: no cover - the merge is drained at once
                self._end_route(route, "overflow")
                return
            else:  # Need.WAIT: live, and every held entry handed out: join the direct path
                route.merge = None
                return

    def _refuse_position(self, conn: Connection, sid: str, reason: str) -> None:
        self._counts["resyncs"] += 1
        conn.protocol.resync_required(sid, reason, None)

    async def _read_page(self, route: Route) -> bool:
        merge = route.merge
        assert merge is not None  # noqa: S101 - only replaying routes read pages
        after = merge.page_after()
        reason: str | None = None
        try:
            page = await self.bus.backend.read(after, limit=self.limits.replay_page)
        except PositionExpired:
            reason = "position_expired"
        except StalePosition:
            reason = "stale_position"
        except InvalidPosition:
            reason = "invalid_position"
        except (BackendUnavailable, BusClosed) as exc:
            logger.warning("resuming subscription %s failed: %s", route.id, exc)
            conn = route.conn
            self._routes.remove(route)
            conn.routes.pop(route.id, None)
            merge.close()
            if conn.protocol.subscriptions.get(route.id) == "pending":
                conn.protocol.refuse(
                    route.id, ErrorCode.INTERNAL_ERROR, "the event log is unavailable"
                )
            else:
                self._counts["resyncs"] += 1
                conn.protocol.resync_required(route.id, "overflow", route.position)
            conn._flush()
            return False
        if reason is not None:
            route.position = None
            self._end_route(route, reason)
            return False
        if not route.active:
            return False
        matcher = route.group.matcher
        matched = (
            page if matcher is None else [e for e in page if matcher.matches(e.event.to_dict())]
        )
        merge.replayed(matched, page[-1].position if page else None)
        return True

    # -- timers: auth timeout, token expiry --------------------------------------------

    def _schedule(self, conn: Connection, when: float, kind: str) -> None:
        heapq.heappush(self._timers, (when, next(self._timer_seq), conn, kind))
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
        task_status.started()
        with self._stop:
            await self._timer_loop()

    async def _timer_loop(self) -> None:
        timers = self._timers
        while True:
            now = self.clock.time()
            while timers and timers[0][0] <= now:
                _, _, conn, kind = heapq.heappop(timers)
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
