"""One client connection on the gateway: what a transport drives."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import AuthenticationFailed, Forbidden, InvalidPattern, ProtocolViolation
from ._auth import Credentials, Principal, SubscriptionRequest
from ._frames import CloseCode, ErrorCode, Subscribe
from ._protocol import (
    AuthenticateRequested,
    ServerProtocol,
    State,
    SubscribeRequested,
    UnsubscribeRequested,
)
from ._routing import Group, Route
from ._transport import Transport
from ._websockets import WebSocketTransport
from ._wire import FrameWriter

if TYPE_CHECKING:
    from ._gateway import Gateway

__all__ = ["Connection"]

logger = logging.getLogger("eventpatterns.realtime")


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
        #: Where the gateway writes pre-built WebSocket frames (``None``: ``send`` them).
        self.frames: FrameWriter | None = (
            transport.frames if isinstance(transport, WebSocketTransport) else None
        )
        self.protocol = ServerProtocol(
            limits=gateway.limits, dialect=transport.dialect, clock=gateway.clock.time
        )
        self.routes: dict[str, Route] = {}
        #: Presence channels joined, with how many of its subscriptions joined each.
        self.channels: dict[str, int] = {}
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
        presence: str | None = None,
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
        protocol.request(Subscribe(id, _object(pattern), _object(filter), since, presence))
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
                    self.gateway._presence_release(route)
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
            group, request = await self._authorize(request)
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
        presence = request.presence
        watch = request.watch and presence is not None
        if request.since is None:
            route = Route(self, sid, group, self.gateway._head)
            self.routes[sid] = route
            self.gateway._routes.add(route)
            self.gateway._presence_join(route, presence, watch=watch)
            protocol.confirm(sid, route.position)
            return
        await self.gateway._resume(self, sid, group, request.since, presence, watch=watch)

    async def _authorize(self, request: SubscriptionRequest) -> tuple[Group, SubscriptionRequest]:
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
        return group, request


def _object(value: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ProtocolViolation(
            "a pattern or filter is a JSON object", code=ErrorCode.INVALID_FRAME.value
        )
    return dict(value)
