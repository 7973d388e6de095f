"""One client connection's protocol, sans I/O (the shape of websockets' ``protocol.py``).

:class:`ServerProtocol` parses what a client sends, keeps the connection's state and
subscription ids, enforces the per-connection limits (frame size, rate, number of
subscriptions), and produces the server's control frames. It does no I/O and never
awaits: a transport (through the :class:`~eventpatterns.realtime.Gateway`) drives it.

Call order, for the code driving it:

1. For each frame received, call :meth:`~ServerProtocol.receive_text` (or
   :meth:`~ServerProtocol.receive_bytes` for a binary frame).
2. Then call :meth:`~ServerProtocol.events_received` and handle each request it
   returns, in order, answering with :meth:`~ServerProtocol.accept`,
   :meth:`~ServerProtocol.reject_authentication`, :meth:`~ServerProtocol.confirm`,
   :meth:`~ServerProtocol.refuse` (a request may be answered after awaiting, e.g.
   an authorizer; frames received meanwhile should wait).
3. After every call above, and after any other method that says it queues a
   frame, call :meth:`~ServerProtocol.data_to_send` and write the frames it returns,
   in order, before writing any event frame; then, if
   :meth:`~ServerProtocol.close_expected` is true, close the transport with
   :attr:`~ServerProtocol.close_code` and :attr:`~ServerProtocol.close_reason`.
4. When the transport sees the peer go away, call
   :meth:`~ServerProtocol.connection_lost`.

Client input never makes a method raise: a bad frame becomes an ``error`` frame or a
documented close. Calling a method the state does not allow (a driver bug) raises
:class:`~eventpatterns.errors.InvalidState` naming the state.

States (:class:`State`)::

    CONNECTING ──accept()──> OPEN ──close()/a fatal frame──> CLOSING ──connection_lost()──> CLOSED
        └──────reject_authentication(), too large, rate──────────┘
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidState, ProtocolViolation
from ._auth import Credentials, Principal, SubscriptionRequest
from ._frames import (
    Authenticate,
    CloseCode,
    Dialect,
    ErrorCode,
    Ping,
    Subscribe,
    Unsubscribe,
    encode_frame,
    parse_client_frame,
)
from ._limits import Limits

__all__ = [
    "AuthenticateRequested",
    "ProtocolEvent",
    "ServerProtocol",
    "State",
    "SubscribeRequested",
    "UnsubscribeRequested",
]


class State(enum.IntEnum):
    """Where a connection is; see the module docstring for the transitions."""

    CONNECTING = 0  #: waiting for credentials
    OPEN = 1  #: authenticated
    CLOSING = 2  #: a close was decided; the transport should close
    CLOSED = 3  #: the transport is gone


@dataclass(frozen=True, slots=True)
class AuthenticateRequested:
    """Check these credentials; answer with ``accept()`` or ``reject_authentication()``.

    ``refresh`` is true for an ``authenticate`` on an open connection (a new token for
    the same principal).
    """

    credentials: Credentials
    refresh: bool = False


@dataclass(frozen=True, slots=True)
class SubscribeRequested:
    """Authorize and start this subscription; answer with ``confirm()`` or ``refuse()``.

    ``presence``: the presence channel the client asked to join with it, if any.
    """

    request: SubscriptionRequest
    presence: str | None = None


@dataclass(frozen=True, slots=True)
class UnsubscribeRequested:
    """Stop routing to this subscription (the ``unsubscribed`` frame is already queued)."""

    id: str


ProtocolEvent = AuthenticateRequested | SubscribeRequested | UnsubscribeRequested

PENDING = "pending"
ACTIVE = "active"


class ServerProtocol:
    """The state machine of one client connection.

    Args:
        limits: The bounds enforced (frame size, rate, subscriptions).
        dialect: How control frames are encoded (``"ws"`` JSON text, ``"sse"``).
        clock: Seconds, monotonic; drives the rate limit (inject one in tests).

    Attributes:
        state: The :class:`State`.
        principal: Who authenticated, once ``OPEN``.
        connection_id: The id given to :meth:`accept`.
        subscriptions: Subscription id → ``"pending"`` (being authorized) or
            ``"active"``.
        close_code: The close code decided, once ``CLOSING``.
        close_reason: Its reason text.

    Example:
        >>> import json
        >>> p = ServerProtocol()
        >>> p.receive_text('{"type":"subscribe","id":"s1"}')
        >>> json.loads(p.data_to_send()[0])["code"]
        'not_authenticated'
    """

    def __init__(
        self,
        *,
        limits: Limits | None = None,
        dialect: Dialect = "ws",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits = limits if limits is not None else Limits()
        self.dialect: Dialect = dialect
        self.clock = clock
        self.state = State.CONNECTING
        self.principal: Principal | None = None
        self.connection_id: str | None = None
        self.subscriptions: dict[str, str] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self._auth_pending = False
        self._events: list[ProtocolEvent] = []
        self._out: list[str] = []
        self._tokens = float(limits.rate_burst)
        self._refilled = clock()
        self._violations = 0

    def _guard(self, action: str, *allowed: State) -> None:
        if self.state not in allowed:
            raise InvalidState(
                f"cannot {action}: the connection is {self.state.name.lower()}",
                state=self.state.name.lower(),
            )

    # -- input ---------------------------------------------------------------------------

    def receive_text(self, text: str | bytes) -> None:
        """Take one text frame (``str``, or its UTF-8 bytes).

        Then call :meth:`events_received` and :meth:`data_to_send`. Ignored once
        ``CLOSING`` or ``CLOSED``.
        """
        if self.state >= State.CLOSING or not self._allow():
            return
        limits = self.limits
        try:
            frame = parse_client_frame(
                text, max_bytes=limits.max_frame_bytes, max_depth=limits.max_json_depth
            )
        except ProtocolViolation as exc:
            code = ErrorCode(exc.code)
            self.error(code, str(exc))
            if code is ErrorCode.FRAME_TOO_LARGE:
                self._close(CloseCode.MESSAGE_TOO_BIG, "frame too large")
            return
        if isinstance(frame, Ping):
            pong: dict[str, Any] = {"type": "pong"}
            if frame.has_payload:
                pong["payload"] = frame.payload
            self._send(pong)
        elif isinstance(frame, Authenticate):
            self._authenticate(frame)
        elif self.state is not State.OPEN:
            self.error(
                ErrorCode.NOT_AUTHENTICATED,
                'authenticate first: send {"type":"authenticate","token":...}',
                frame.id,
            )
        elif isinstance(frame, Subscribe):
            self.request(frame)
        elif isinstance(frame, Unsubscribe):
            if self.subscriptions.get(frame.id) is not ACTIVE:
                self.error(
                    ErrorCode.UNKNOWN_SUBSCRIPTION, f"no subscription {frame.id!r}", frame.id
                )
                return
            del self.subscriptions[frame.id]
            self._send({"type": "unsubscribed", "id": frame.id})
            self._events.append(UnsubscribeRequested(frame.id))

    def receive_bytes(self, data: bytes) -> None:
        """Take one binary frame: refused with ``unsupported_data`` (the protocol is text)."""
        if self.state >= State.CLOSING or not self._allow():
            return
        if len(data) > self.limits.max_frame_bytes:
            self.error(
                ErrorCode.FRAME_TOO_LARGE,
                f"the frame is over the limit of {self.limits.max_frame_bytes} bytes",
            )
            self._close(CloseCode.MESSAGE_TOO_BIG, "frame too large")
            return
        self.error(ErrorCode.UNSUPPORTED_DATA, "binary frames are not supported; send JSON text")

    def present_credentials(self, credentials: Credentials) -> None:
        """Authenticate with credentials the transport found (a header, ``?token=``).

        Queues an :class:`AuthenticateRequested`. Allowed only while ``CONNECTING``
        and before any other authentication began.

        Raises:
            InvalidState: Not ``CONNECTING``, or an authentication is pending.
        """
        self._guard("present credentials", State.CONNECTING)
        if self._auth_pending:
            raise InvalidState(
                "cannot present credentials: already authenticating", state="connecting"
            )
        self._auth_pending = True
        self._events.append(AuthenticateRequested(credentials))

    def _allow(self) -> bool:
        """Spend a token of the rate limit (a token bucket); tell whether to go on."""
        limits = self.limits
        now = self.clock()
        tokens = self._tokens + (now - self._refilled) * limits.rate
        self._refilled = now
        if tokens >= limits.rate_burst:
            tokens = float(limits.rate_burst)
            self._violations = 0  # the client was quiet long enough: forgive
        if tokens >= 1.0:
            self._tokens = tokens - 1.0
            return True
        self._tokens = tokens
        self._violations += 1
        if self._violations > limits.max_rate_violations:
            self._close(CloseCode.TOO_MANY, "message rate exceeded")
        else:
            self.error(
                ErrorCode.RATE_LIMITED,
                f"over {limits.rate:g} frames per second (burst {limits.rate_burst});"
                " the frame was ignored",
            )
        return False

    def _authenticate(self, frame: Authenticate) -> None:
        if self._auth_pending:
            self.error(ErrorCode.INVALID_FRAME, "an authentication is already in progress")
            return
        self._auth_pending = True
        refresh = self.state is State.OPEN
        self._events.append(AuthenticateRequested(Credentials(token=frame.token), refresh))

    def request(self, frame: Subscribe) -> None:
        """Take a subscription request as if the client had sent it (SSE's one).

        Queues a :class:`SubscribeRequested`, or an ``error`` (not authenticated,
        duplicate id, too many subscriptions).
        """
        if self.state is not State.OPEN:
            self.error(ErrorCode.NOT_AUTHENTICATED, "authenticate first", frame.id)
            return
        subs = self.subscriptions
        if frame.id in subs:
            self.error(
                ErrorCode.DUPLICATE_ID,
                f"subscription id {frame.id!r} is in use on this connection",
                frame.id,
            )
            return
        if len(subs) >= self.limits.max_subscriptions:
            self.error(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self.limits.max_subscriptions} subscriptions per connection",
                frame.id,
            )
            return
        subs[frame.id] = PENDING
        request = SubscriptionRequest(
            frame.id, frame.pattern, frame.filter, frame.since, frame.presence, frame.watch
        )
        self._events.append(SubscribeRequested(request, frame.presence))

    # -- output --------------------------------------------------------------------------

    def events_received(self) -> list[ProtocolEvent]:
        """Return the requests parsed since the last call (and forget them)."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str]:
        """Return the frames to write, in order, since the last call (and forget them)."""
        out, self._out = self._out, []
        return out

    def close_expected(self) -> bool:
        """Tell whether the transport should now close (with ``close_code``)."""
        return self.state is State.CLOSING

    def _send(self, frame: dict[str, Any]) -> None:
        self._out.append(encode_frame(frame, self.dialect))

    def _close(self, code: int, reason: str) -> None:
        if self.state < State.CLOSING:
            self.state = State.CLOSING
            self.close_code = int(code)
            self.close_reason = reason
            self.subscriptions.clear()

    # -- answers from the driver ---------------------------------------------------------

    def accept(self, principal: Principal, connection: str) -> None:
        """Answer an :class:`AuthenticateRequested`: the credentials are good.

        The first time, the connection opens and ``connected`` is queued. On a refresh,
        a principal with another id is refused (close 4401); the same id updates the
        principal (its new ``expires_at``).

        Raises:
            InvalidState: No authentication is pending.
        """
        self._guard("accept", State.CONNECTING, State.OPEN, State.CLOSING)
        if self.state is State.CLOSING:
            return
        if not self._auth_pending:
            raise InvalidState(
                "cannot accept: no authentication is pending", state=self.state.name.lower()
            )
        self._auth_pending = False
        if self.state is State.OPEN:
            assert self.principal is not None  # noqa: S101 - OPEN implies a principal
            if principal.id != self.principal.id:
                self.reject_authentication("a refreshed token must be for the same principal")
                return
            self.principal = principal
            return
        self.state = State.OPEN
        self.principal = principal
        self.connection_id = connection
        self._send(
            {
                "type": "connected",
                "connection": connection,
                "principal": principal.id,
                "expires_at": principal.expires_at,
            }
        )

    def reject_authentication(
        self, message: str, *, code: int = CloseCode.AUTHENTICATION_FAILED
    ) -> None:
        """Refuse the connection's credentials: queue an error, close (4401 by default)."""
        self._guard("reject authentication", State.CONNECTING, State.OPEN, State.CLOSING)
        self._auth_pending = False
        if self.state is State.CLOSING:
            return
        self.error(ErrorCode.AUTHENTICATION_FAILED, message)
        self._close(code, message[:120])

    def confirm(self, subscription: str, position: str | None) -> None:
        """Answer a :class:`SubscribeRequested`: it is live; queue ``subscribed``.

        Args:
            subscription: Its id.
            position: Where a client that receives nothing should resume from.

        Raises:
            InvalidState: Not ``OPEN``, or the id is not pending.
        """
        if self.state is State.CLOSING:
            return
        self._guard("confirm a subscription", State.OPEN)
        if self.subscriptions.get(subscription) is not PENDING:
            raise InvalidState(f"cannot confirm {subscription!r}: it is not pending", state="open")
        self.subscriptions[subscription] = ACTIVE
        self._send({"type": "subscribed", "id": subscription, "position": position})

    def refuse(self, subscription: str, code: ErrorCode, message: str) -> None:
        """Answer a :class:`SubscribeRequested`: refused; queue an ``error`` with its id."""
        if self.state is State.CLOSING:
            return
        self._guard("refuse a subscription", State.OPEN)
        if self.subscriptions.get(subscription) is not PENDING:
            raise InvalidState(f"cannot refuse {subscription!r}: it is not pending", state="open")
        del self.subscriptions[subscription]
        self.error(code, message, subscription)

    def resync_required(self, subscription: str, reason: str, position: str | None) -> None:
        """End a subscription server-side; queue ``resync-required`` (no-op if gone)."""
        if self.state is not State.OPEN or subscription not in self.subscriptions:
            return
        del self.subscriptions[subscription]
        self._send(
            {"type": "resync-required", "id": subscription, "reason": reason, "position": position}
        )

    def presence(self, subscription: str, fields: Mapping[str, Any]) -> None:
        """Queue a ``presence`` frame for a watching subscription (no-op if it is gone).

        Args:
            subscription: The subscription's id (pending or active).
            fields: The frame's other members (``event``, ``channel``...).
        """
        if self.state is State.OPEN and subscription in self.subscriptions:
            self._send({"type": "presence", "id": subscription, **fields})

    def token_expiring(self, expires_at: float) -> None:
        """Queue ``token-expiring``: the client should authenticate again before then."""
        if self.state is State.OPEN:
            self._send({"type": "token-expiring", "expires_at": expires_at})

    def error(self, code: ErrorCode, message: str, subscription: str | None = None) -> None:
        """Queue an ``error`` frame (the connection stays as it is)."""
        if self.state >= State.CLOSING:
            return
        frame: dict[str, Any] = {"type": "error", "code": code.value, "message": message}
        if subscription is not None:
            frame["id"] = subscription
        self._send(frame)

    def close(self, code: int, reason: str) -> None:
        """Decide to close (the server's own reason: revoked, going away...)."""
        self._close(code, reason)

    def connection_lost(self) -> None:
        """The transport is gone: ``CLOSED``; everything after is ignored."""
        if self.close_code is None:
            self.close_code = CloseCode.GOING_AWAY
            self.close_reason = "the client went away"
        self.state = State.CLOSED
        self.subscriptions.clear()
        self._out.clear()
        self._events.clear()
