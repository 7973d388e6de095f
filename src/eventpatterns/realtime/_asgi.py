"""ASGI transports: a WebSocket endpoint and an SSE endpoint over one gateway.

Both are plain ASGI callables (``async def app(scope, receive, send)``, starlette's
``ASGIApp`` contract), so they mount in Starlette, FastAPI or any ASGI router; only
:func:`routes` imports Starlette (extra ``server``).

Each connection gets a bounded send queue and a writer task in the endpoint's task
group: :meth:`_QueueTransport.send` appends and never waits; the writer awaits the
ASGI ``send``, which is where a slow client makes the server wait. The queue's size
is what :meth:`~_QueueTransport.buffered_amount` reports (characters of queued text,
which for the gateway's ASCII JSON is bytes); the gateway applies its slow-client
policy past ``Limits.max_buffered``. As a last line of defence the queue refuses to
grow past four times that and closes the connection with 4409 (slow consumer).
"""

from __future__ import annotations

import contextlib
import json
import logging
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ..errors import InvalidState
from . import _sse
from ._auth import Credentials

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ._connection import Connection
    from ._gateway import Gateway

__all__ = ["routes", "sse_endpoint", "websocket_endpoint"]

log = logging.getLogger("eventpatterns.realtime")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_SLOW_CONSUMER = 4409  # CloseCode.SLOW_CONSUMER
_INTERNAL_ERROR = 1011  # CloseCode.INTERNAL_ERROR


class _QueueTransport:
    """A gateway Transport over an ASGI ``send``: a bounded queue drained by a writer task."""

    __slots__ = ("_queue", "_queued", "_wake", "closing", "dialect", "hard_limit")

    def __init__(self, dialect: Literal["ws", "sse"], hard_limit: int) -> None:
        self.dialect: Literal["ws", "sse"] = dialect
        self.hard_limit = hard_limit
        self._queue: deque[str] = deque()
        self._queued = 0
        self._wake = anyio.Event()
        self.closing: tuple[int, str] | None = None

    def send(self, frame: str, /) -> None:
        """Queue one frame; never blocks. Dropped once closing."""
        if self.closing is not None:
            return
        size = len(frame)
        if self._queued + size > self.hard_limit:
            self.close(_SLOW_CONSUMER, "send buffer overflow")
            return
        self._queue.append(frame)
        self._queued += size
        self._wake.set()

    def buffered_amount(self) -> int:
        """Return the size of the frames queued but not yet handed to the server."""
        return self._queued

    def close(self, code: int, reason: str, /) -> None:
        """Ask the writer to flush what is queued, then close; never blocks."""
        if self.closing is None:
            self.closing = (code, reason)
            self._wake.set()

    async def next_batch(self, idle: float | None = None) -> list[str] | None:
        """Return the queued frames (``[]`` after ``idle`` s idle); ``None`` once closing."""
        if not self._queue:
            if self.closing is not None:
                return None
            self._wake = anyio.Event()
            if idle is None:
                await self._wake.wait()
            else:
                with anyio.move_on_after(idle):
                    await self._wake.wait()
            if not self._queue:
                return None if self.closing is not None else []
        batch = list(self._queue)
        self._queue.clear()
        self._queued = 0
        return batch


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers


def _query(scope: Scope) -> dict[str, str]:
    raw = scope.get("query_string", b"").decode("latin-1")
    return dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))


def credentials_from(headers: Mapping[str, str], query: Mapping[str, str]) -> Credentials:
    """Build Credentials: ``Authorization: Bearer``, ``X-Api-Key`` or ``?token=``."""
    token: str | None = None
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        token = value.strip()
    elif query.get("token"):
        token = query["token"]
    api_key = headers.get("x-api-key") or None
    return Credentials(token=token, api_key=api_key, headers=dict(headers), query=dict(query))


def wants_authentication(gateway: Gateway, credentials: Credentials) -> bool:
    """Whether to authenticate from the request before any frame.

    With credentials in the request, yes; without an authorizer (open mode) too, so
    that a client is connected as ``anonymous`` at once. Otherwise the client must
    send an ``authenticate`` frame within ``Limits.auth_timeout``.
    """
    return (
        credentials.token is not None
        or credentials.api_key is not None
        or gateway.authorizer is None
    )


def _hard_limit(gateway: Gateway) -> int:
    return 4 * int(gateway.limits.max_buffered)


# -- WebSocket -------------------------------------------------------------------------


class _WebSocketEndpoint:
    """An ASGI app (a class, so that Starlette routes it as an app, not a request handler)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.active = 0  # connections being served (a server drains them on shutdown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            if scope["type"] == "http":
                await _problem(send, 400, "Bad Request", "this endpoint only speaks WebSocket")
            return
        if (await receive())["type"] != "websocket.connect":
            return
        self.active += 1
        try:
            await _run_websocket(self.gateway, scope, receive, send)
        finally:
            self.active -= 1


def websocket_endpoint(gateway: Gateway) -> ASGIApp:
    """Return an ASGI app that serves ``gateway``'s WebSocket protocol.

    Mount it on a WebSocket route (``WebSocketRoute("/ws", websocket_endpoint(gw))``
    in Starlette; ``app.router.routes.append(...)`` or ``app.mount`` in FastAPI).
    Credentials come from ``Authorization: Bearer``, ``X-Api-Key`` or ``?token=``, or
    else from the client's ``authenticate`` frame.

    Credentials in the request are checked during the handshake, before the
    WebSocket is accepted: refused ones get an HTTP response instead of a WebSocket
    (an RFC 9457 problem document with 401, or 429 for too many connections per
    principal, 503 while the gateway shuts down) through the ASGI
    ``websocket.http.response`` extension when the server offers it, or else a
    close before accept, which the server answers with 403. Credentials in the
    ``authenticate`` frame are checked after accept (a refusal closes with 4401).
    """
    return _WebSocketEndpoint(gateway)


async def _run_websocket(gateway: Gateway, scope: Scope, receive: Receive, send: Send) -> None:
    transport = _QueueTransport("ws", _hard_limit(gateway))
    credentials = credentials_from(_headers(scope), _query(scope))
    try:
        conn = gateway.connect(transport, credentials)
    except InvalidState:  # the gateway is shutting down
        await _refuse_handshake(scope, send, 503, "the gateway is shutting down")
        return
    try:
        if wants_authentication(gateway, credentials):
            await conn.authenticate_from(credentials)
            if transport.closing is not None:  # refused: bad credentials, too many
                code, reason = transport.closing
                status = _STATUS_FOR_CLOSE.get(code, 403)
                await _refuse_handshake(scope, send, status, reason or "refused")
                return
        await send({"type": "websocket.accept"})
        await _serve_websocket(conn, transport, receive, send)
    finally:
        conn.disconnected()


async def _refuse_handshake(scope: Scope, send: Send, status: int, detail: str) -> None:
    """Refuse a WebSocket handshake with an HTTP response, or a close before accept."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await _problem(send, status, _PROBLEM_TITLES[status], detail, prefix="websocket.http")
    else:  # the server answers a close before accept with 403 (ASGI spec)
        await send({"type": "websocket.close", "code": 1008, "reason": detail[:120]})


async def _serve_websocket(
    conn: Connection, transport: _QueueTransport, receive: Receive, send: Send
) -> None:
    gone = False

    async def writer() -> None:
        nonlocal gone
        try:
            while (batch := await transport.next_batch()) is not None:
                for frame in batch:
                    await send({"type": "websocket.send", "text": frame})
            code, reason = transport.closing or (1000, "")
            await send({"type": "websocket.close", "code": code, "reason": reason})
        except OSError:  # the client went away mid-write (ClientDisconnected is one)
            gone = True

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    gone = True
                    break
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if transport.closing is None:
                    await conn.receive(data)
        except Exception:
            log.exception("real-time connection failed")
            transport.close(_INTERNAL_ERROR, "internal error")
        if gone:
            tg.cancel_scope.cancel()


# -- SSE -------------------------------------------------------------------------------

_PROBLEM_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


async def _problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    *,
    extra: Mapping[str, str] | None = None,
    prefix: str = "http",
) -> None:
    """Answer with an RFC 9457 problem document (``application/problem+json``).

    ``prefix`` is ``"websocket.http"`` to refuse a WebSocket handshake (the ASGI
    ``websocket.http.response`` extension).
    """
    body = json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        ensure_ascii=True,
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    if status == 401:  # RFC 9110 §11.6.1: a 401 names the scheme it wants
        headers.append((b"www-authenticate", b"Bearer"))
    for name, value in (extra or {}).items():
        headers.append((name.encode("latin-1"), value.encode("latin-1")))
    await send({"type": f"{prefix}.response.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}.response.body", "body": body})


#: A refusal before streaming, as a close code, to its HTTP status.
_STATUS_FOR_CLOSE = {4401: 401, 4408: 401, 4403: 403, 4429: 429, 1001: 503}


class _BadRequest(Exception):
    pass


def _json_param(query: Mapping[str, str], name: str) -> Mapping[str, Any] | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise _BadRequest(f"?{name}= is not valid JSON ({str(exc)[:100]})") from exc
    if not isinstance(value, dict):
        raise _BadRequest(f"?{name}= must be a JSON object")
    return value


def _status_for(exc: Exception) -> int | None:
    """Map a gateway error raised before streaming to an HTTP status (None: not ours)."""
    from ..errors import (
        AuthenticationFailed,
        Forbidden,
        InvalidPattern,
        InvalidPosition,
        LimitExceeded,
        ProtocolViolation,
    )

    if isinstance(exc, AuthenticationFailed):
        return 401
    if isinstance(exc, Forbidden):
        return 403
    if isinstance(exc, LimitExceeded):
        return 429
    if isinstance(exc, (InvalidPattern, InvalidPosition, ProtocolViolation)):
        return 400
    return None


def sse_endpoint(gateway: Gateway, *, retry: int = 3000) -> ASGIApp:
    """Return an ASGI app that streams one subscription as server-sent events.

    ``GET`` with ``?pattern=<JSON>`` (EventBridge) or ``?filter=<JSON>`` (AppSync
    filter group), or neither for every event the principal may see; resume with the
    ``Last-Event-ID`` header or ``?since=`` (the header wins). Credentials as for
    :func:`websocket_endpoint`. Errors before the stream starts are RFC 9457
    ``application/problem+json`` responses: 400 (bad parameters, invalid pattern or
    position), 401 (no or bad credentials), 403 (subscription refused), 429 (too many
    connections). The stream sends ``retry:`` first, then ``event`` messages with the
    position as ``id``, and a ``: keep-alive`` comment after ``Limits.keepalive``
    seconds without output.

    Args:
        gateway: An entered :class:`~eventpatterns.realtime.Gateway`.
        retry: The client's reconnection delay in milliseconds (the ``retry:`` field).
    """
    return _SSEEndpoint(gateway, retry)


class _SSEEndpoint:
    """An ASGI app (a class, so that Starlette routes it as an app, not a request handler)."""

    def __init__(self, gateway: Gateway, retry: int) -> None:
        self.gateway = gateway
        self.retry = retry
        self.active = 0  # requests being served (a server drains them on shutdown)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "SSE only"})
            return
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await _problem(send, 405, "Method Not Allowed", "use GET", extra={"allow": "GET"})
            return
        self.active += 1
        try:
            await _run_sse(self.gateway, scope, receive, send, self.retry)
        finally:
            self.active -= 1


async def _run_sse(
    gateway: Gateway, scope: Scope, receive: Receive, send: Send, retry: int
) -> None:
    headers = _headers(scope)
    query = _query(scope)
    transport = _QueueTransport("sse", _hard_limit(gateway))
    try:
        pattern = _json_param(query, "pattern")
        filter_ = _json_param(query, "filter")
        if pattern is not None and filter_ is not None:
            raise _BadRequest("give ?pattern= or ?filter=, not both")
        header = headers.get("last-event-id")
        try:
            since = _sse.parse_last_event_id(header if header is not None else query.get("since"))
        except ValueError as exc:
            raise _BadRequest(str(exc)) from exc
    except _BadRequest as exc:
        await _problem(send, 400, "Bad Request", str(exc))
        return
    credentials = credentials_from(headers, query)
    try:
        conn = gateway.connect(transport, credentials)
    except InvalidState:
        await _problem(send, 503, "Service Unavailable", "the gateway is shutting down")
        return
    try:
        try:
            if await conn.authenticate_from(credentials) is not None:
                await conn.subscribe_sse(pattern=pattern, filter=filter_, since=since)
        except Exception as exc:
            status = _status_for(exc)
            if status is None:
                raise
            await _problem(send, status, _PROBLEM_TITLES[status], str(exc)[:500])
            return
        if transport.closing is not None:  # refused: bad credentials, too many connections
            code, reason = transport.closing
            status = _STATUS_FOR_CLOSE.get(code, 400)
            await _problem(send, status, _PROBLEM_TITLES[status], reason or "refused")
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", _sse.CONTENT_TYPE.encode()),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
                ],
            }
        )
        if scope.get("method") == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        await _stream_sse(gateway, transport, receive, send, retry)
    finally:
        conn.disconnected()


async def _stream_sse(
    gateway: Gateway, transport: _QueueTransport, receive: Receive, send: Send, retry: int
) -> None:
    keepalive = float(gateway.limits.keepalive)
    keepalive_frame = _sse.comment("keep-alive")

    async def writer() -> None:
        await send(
            {
                "type": "http.response.body",
                "body": f"retry: {retry}\n\n".encode(),
                "more_body": True,
            }
        )
        while (batch := await transport.next_batch(keepalive)) is not None:
            body = "".join(batch).encode("utf-8", "replace") if batch else keepalive_frame
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def watch_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async with anyio.create_task_group() as tg:

        async def run_writer() -> None:
            with contextlib.suppress(OSError):
                await writer()
            tg.cancel_scope.cancel()

        async def run_watch() -> None:
            await watch_disconnect()
            tg.cancel_scope.cancel()

        tg.start_soon(run_writer)
        tg.start_soon(run_watch)


def routes(
    gateway: Gateway, *, websocket_path: str = "/ws", sse_path: str = "/events"
) -> list[BaseRoute]:
    """Return Starlette routes for both endpoints (needs the ``server`` extra).

    Example:
        ```python
        from starlette.applications import Starlette

        app = Starlette(routes=routes(gateway))
        ```
    """
    from starlette.routing import Route, WebSocketRoute

    return [
        WebSocketRoute(websocket_path, websocket_endpoint(gateway)),
        Route(sse_path, sse_endpoint(gateway), methods=["GET", "HEAD"]),
    ]
