"""The standalone WebSocket server: the gateway on the ``websockets`` library (asyncio).

One handler task per connection drives the gateway's :class:`Connection`: every
incoming message goes to ``conn.receive()``; the gateway writes back through
:class:`WebSocketTransport`, whose :meth:`~WebSocketTransport.send` never blocks.

Send path. ``websockets``' own :func:`websockets.asyncio.server.broadcast` calls
``connection.protocol.send_text()`` and ``connection.send_data()`` for each
connection: it builds the frame header and copies the payload once per connection.
The gateway sends the *same* frame string to every connection that matches an event,
so this transport builds the whole RFC 6455 frame (RFC 6455 §5.2: a server's frames
are not masked) once, keeps it in a one-entry cache keyed by the string's identity,
and writes those bytes straight to each connection's asyncio transport while the
WebSocket is OPEN, joining the frames of one event-loop iteration into one write
(one system call per connection per routed batch). With per-message deflate
negotiated (RFC 7692) every connection compresses with its own context, so the
transport falls back to ``protocol.send_text()``. ``docs/realtime-transports.md`` has
the measurements.

Slow clients, in one paragraph as ``broadcast()`` states its own: ``send()`` never
waits for a client. What it cannot write at once stays in the connection's asyncio
write buffer, which :meth:`~WebSocketTransport.buffered_amount` reports; the gateway
compares it with ``Limits.max_buffered`` after each send and applies its slow-client
policy (drop and send ``resync-required``, or close with 4409), so memory per
connection stays bounded by that limit plus one frame. ``websockets``' own write
limit (``write_limit``) only pauses its own ``send()`` coroutines, which the gateway
does not use.

Compression is off by default: per-message deflate costs a zlib context per
connection and, for small JSON frames, halves throughput. Pass
``compression="deflate"`` to enable it.
"""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ._asgi import credentials_from, wants_authentication
from ._auth import Credentials

if TYPE_CHECKING:
    import asyncio

    from websockets.asyncio.server import Server, ServerConnection

    from ._gateway import Gateway

__all__ = ["WebSocketServer", "WebSocketTransport", "serve"]

log = logging.getLogger("eventpatterns.realtime")


#: Bytes of frames held for one write; more are written at once (a batch of big events
#: is not held back, so that a client that reads keeps its buffer near empty).
_FLUSH_AT = 16 * 1024


class _FrameCache:
    """The last frame built and the transports waiting for this iteration's flush.

    The gateway sends one string to many connections in a row: the frame is built once.
    """

    __slots__ = ("dirty", "frame", "loop", "text", "wire")

    def __init__(self) -> None:
        self.text: str | None = None
        self.frame = b""
        self.wire = b""  # UTF-8 payload without the header (the fallback path's input)
        self.dirty: list[WebSocketTransport] = []
        self.loop: asyncio.AbstractEventLoop | None = None

    def build(self, text: str) -> bytes:
        payload = text.encode("utf-8", "surrogatepass")
        length = len(payload)
        # RFC 6455 §5.2: FIN + opcode 0x1 (text); unmasked; 7-bit, 16-bit or 64-bit length.
        if length < 126:
            header = bytes((0x81, length))
        elif length < 65536:
            header = b"\x81\x7e" + length.to_bytes(2, "big")
        else:
            header = b"\x81\x7f" + length.to_bytes(8, "big")
        self.text = text
        self.wire = payload
        self.frame = header + payload
        return self.frame

    def mark(self, transport: WebSocketTransport) -> None:
        """Flush ``transport`` at the end of this loop iteration (one write per batch)."""
        if not self.dirty:
            if self.loop is None:
                import asyncio

                self.loop = asyncio.get_running_loop()
            # A loop callback, not a task: it only writes bytes, never awaits or fails.
            self.loop.call_soon(self.flush)
        self.dirty.append(transport)

    def flush(self) -> None:
        dirty, self.dirty = self.dirty, []
        for transport in dirty:
            transport._flush()


class WebSocketTransport:
    """The gateway's :class:`~eventpatterns.realtime.Transport` over one ``websockets`` connection.

    Built by :func:`serve` for each connection; exposed for custom ``websockets``
    handlers that drive a :class:`~eventpatterns.realtime.Gateway` themselves.

    Frames sent in one event-loop iteration (the gateway routes a batch of events at
    once) are joined and written with one ``transport.write()`` at the end of the
    iteration, or as soon as 16 KiB are held: one system call per connection per batch
    rather than per frame.

    Args:
        connection: The server-side ``websockets`` connection (asyncio implementation).
        cache: Shared by the transports of one server (see the module docstring); a
            transport of its own when omitted.
    """

    dialect: Literal["ws", "sse"] = "ws"
    __slots__ = (
        "_cache",
        "_close_requested",
        "_closing",
        "_open",
        "_pending",
        "_pending_size",
        "_protocol",
        "_raw",
        "_transport",
        "connection",
    )

    def __init__(self, connection: ServerConnection, cache: _FrameCache | None = None) -> None:
        from websockets.protocol import State

        self.connection = connection
        self._protocol = connection.protocol
        self._transport: asyncio.Transport = connection.transport
        self._cache = cache if cache is not None else _FrameCache()
        # Raw frames are only valid without extensions (no deflate context to keep in step).
        self._raw = not connection.protocol.extensions
        self._closing: tuple[int, str] | None = None
        self._close_requested = anyio.Event()
        self._open = State.OPEN  # looked up once: websockets is imported lazily
        self._pending: list[bytes] = []
        self._pending_size = 0

    def send(self, frame: str, /) -> None:
        """Queue one text frame for writing; never blocks (a closed connection drops it)."""
        if self._protocol.state is not self._open or self._closing is not None:
            return
        cache = self._cache
        if cache.text is not frame:
            cache.build(frame)
        if self._raw:
            if not self._pending:
                cache.mark(self)
            data = cache.frame
            self._pending.append(data)
            self._pending_size += len(data)
            if self._pending_size >= _FLUSH_AT:
                self._flush()
        else:
            self._protocol.send_text(cache.wire)
            self.connection.send_data()

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        self._pending_size = 0
        # Still OPEN: websockets may have answered a close frame since (then drop them).
        if self._protocol.state is self._open and not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def buffered_amount(self) -> int:
        """Return the bytes sent that the socket has not taken yet (queued or buffered)."""
        return self._pending_size + self._transport.get_write_buffer_size()

    def close(self, code: int, reason: str, /) -> None:
        """Start the closing handshake with ``code`` and ``reason``; never blocks.

        Frames sent before are written first; the connection's handler task runs the
        handshake (bounded by the server's ``close_timeout``); frames sent after this
        call are dropped.
        """
        if self._closing is None:
            self._closing = (code, reason)
            self._flush()
            self._close_requested.set()


class _State:
    """Per-server state shared by the handlers."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.cache = _FrameCache()


def _credentials(connection: ServerConnection) -> Credentials:
    request = connection.request
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    if request is not None:
        for name, value in request.headers.raw_items():
            headers.setdefault(name.lower(), value)
        raw_query = urllib.parse.urlsplit(request.path).query
        query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
    return credentials_from(headers, query)


async def _handle(state: _State, connection: ServerConnection) -> None:
    """Drive one connection: each message into the gateway, until either side closes."""
    from websockets.exceptions import ConnectionClosed

    from ..errors import InvalidState

    gateway = state.gateway
    transport = WebSocketTransport(connection, state.cache)
    credentials = _credentials(connection)
    try:
        conn = gateway.connect(transport, credentials)
    except InvalidState:  # the gateway is shutting down
        await connection.close(1001, "the gateway is shutting down")  # CloseCode.GOING_AWAY
        return

    async def closer() -> None:
        await transport._close_requested.wait()
        code, reason = transport._closing or (1000, "")
        await connection.close(code, reason)

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(closer)
            try:
                if wants_authentication(gateway, credentials):
                    await conn.authenticate_from(credentials)
                async for message in connection:
                    if transport._closing is None:  # after close(), input is moot
                        await conn.receive(message)
            except ConnectionClosed:
                pass
            except Exception:
                # A bug in the gateway for this connection: close it alone, keep serving.
                log.exception("real-time connection %s failed", getattr(conn, "id", "?"))
                transport.close(1011, "internal error")  # CloseCode.INTERNAL_ERROR
            if transport._closing is None:
                tg.cancel_scope.cancel()
    finally:
        conn.disconnected()


class WebSocketServer:
    """A running :func:`serve` server: its address, and how to stop it.

    Attributes:
        server: The underlying ``websockets`` server.
    """

    def __init__(self, server: Server) -> None:
        self.server = server

    @property
    def port(self) -> int:
        """The TCP port of the first socket (useful with ``port=0``)."""
        return int(next(iter(self.server.sockets)).getsockname()[1])

    @property
    def url(self) -> str:
        """``ws://host:port/`` of the first socket."""
        host = next(iter(self.server.sockets)).getsockname()[0]
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self.port}/"

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        await self.server.serve_forever()


@asynccontextmanager
async def serve(
    gateway: Gateway,
    host: str | None = "127.0.0.1",
    port: int = 8000,
    *,
    compression: Literal["deflate"] | None = None,
    max_size: int | None = None,
    ping_interval: float | None = 20,
    close_timeout: float | None = 10,
    **options: Any,
) -> AsyncIterator[WebSocketServer]:
    """Serve ``gateway`` over WebSocket with the ``websockets`` library (asyncio only).

    Every path is the WebSocket endpoint (SSE needs an HTTP server: mount
    :func:`eventpatterns.realtime.asgi.sse_endpoint` in an ASGI app for it). On exit
    every connection is closed with 1001 (going away) and the server stops.

    Args:
        gateway: An entered :class:`~eventpatterns.realtime.Gateway`.
        host: The interface to listen on; ``None`` for every interface.
        port: The TCP port; ``0`` picks a free one (see :attr:`WebSocketServer.port`).
        compression: ``None`` (default: small frames are sent fastest uncompressed) or
            ``"deflate"`` for per-message deflate (RFC 7692).
        max_size: The largest incoming message in bytes; a bigger one closes the
            connection with 1009. By default twice the gateway's
            ``Limits.max_frame_bytes`` (the gateway refuses what is over that limit,
            with ``frame_too_large`` and 1009).
        ping_interval: Seconds between keep-alive pings; ``None`` disables them.
        close_timeout: Seconds to wait for the client's side of a closing handshake.
        **options: Passed to :func:`websockets.asyncio.server.serve`.

    Example:
        ```python
        async with serve(gateway, "127.0.0.1", 0) as server:
            print(server.url)
            await server.serve_forever()
        ```
    """
    from websockets.asyncio.server import serve as ws_serve

    state = _State(gateway)
    if max_size is None:
        # Twice the gateway's limit: the gateway answers frames up to that with
        # frame_too_large and 1009; beyond it websockets closes with 1009 unread.
        max_size = 2 * gateway.limits.max_frame_bytes

    async def handler(connection: ServerConnection) -> None:
        await _handle(state, connection)

    async with ws_serve(
        handler,
        host,
        port,
        compression=compression,
        max_size=max_size,
        ping_interval=ping_interval,
        close_timeout=close_timeout,
        **options,
    ) as server:
        try:
            yield WebSocketServer(server)
        finally:
            # 1001: the gateway is going away (websockets' close() sends it to every
            # connection and waits for the handlers, bounded by close_timeout).
            server.close(close_connections=True)
            with anyio.CancelScope(shield=True):
                await server.wait_closed()
