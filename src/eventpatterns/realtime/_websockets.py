"""The standalone WebSocket server: the gateway on the ``websockets`` library (asyncio).

One handler task per connection drives the gateway's :class:`Connection`: every
incoming message goes to ``conn.receive()``; the gateway writes back through
:class:`WebSocketTransport`, whose :meth:`~WebSocketTransport.send` never blocks.

Send path. ``websockets``' own :func:`websockets.asyncio.server.broadcast` calls
``connection.protocol.send_text()`` and ``connection.send_data()`` for each
connection: it builds the frame header and copies the payload once per connection.
Without per-message deflate a server's frames are the same bytes for every recipient
(RFC 6455 §5.2: not masked), so the gateway builds each event's whole frame once per
subscription id and gives the bytes to each connection's
:class:`~eventpatterns.realtime._wire.FrameWriter`, which writes them straight to the
connection's asyncio transport while the WebSocket is OPEN; the frames of one routed
batch, and of those routed in the next four loop iterations (at most 2 ms), are
joined into one write per connection (one system call for them all). With
per-message deflate negotiated (RFC 7692) every connection compresses with its own
context, so the transport has no writer and falls back to ``protocol.send_text()``.
``docs/realtime-transports.md`` has the measurements.

Slow clients, in one paragraph as ``broadcast()`` states its own: ``send()`` never
waits for a client. What it cannot write at once stays in the connection's asyncio
write buffer, which :meth:`~WebSocketTransport.buffered_amount` reports; before each
event frame the gateway compares it with ``Limits.max_buffered`` and applies its
slow-client policy (drop and send ``resync-required``, or close with 4409), so memory
per connection stays bounded by that limit plus one frame. ``websockets``' own write
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
from ._wire import FrameWriter, text_frame

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection

    from ._gateway import Gateway

__all__ = ["WebSocketServer", "WebSocketTransport", "serve"]

log = logging.getLogger("eventpatterns.realtime")


class WebSocketTransport:
    """The gateway's :class:`~eventpatterns.realtime.Transport` over one ``websockets`` connection.

    Built by :func:`serve` for each connection; exposed for custom ``websockets``
    handlers that drive a :class:`~eventpatterns.realtime.Gateway` themselves.

    Without extensions (compression off, the default) the gateway writes event frames
    through :attr:`frames`, pre-built once per event for every connection, and
    :meth:`send` writes each control frame the same way; everything goes to the
    connection's asyncio transport in the order it was sent.

    Args:
        connection: The server-side ``websockets`` connection (asyncio implementation).

    Attributes:
        frames: Where pre-built frames are written (``None`` with per-message deflate:
            each frame is then built and compressed by ``websockets``).
    """

    dialect: Literal["ws", "sse"] = "ws"
    __slots__ = ("_close_requested", "_closing", "_open", "_protocol", "connection", "frames")

    def __init__(self, connection: ServerConnection) -> None:
        from websockets.protocol import State

        self.connection = connection
        self._protocol = connection.protocol
        # Raw frames are only valid without extensions (no deflate context to keep in step).
        self.frames: FrameWriter | None = None
        if not connection.protocol.extensions:
            self.frames = FrameWriter(connection.protocol, connection.transport)
        self._closing: tuple[int, str] | None = None
        self._close_requested = anyio.Event()
        self._open = State.OPEN  # looked up once: websockets is imported lazily

    def send(self, frame: str, /) -> None:
        """Write one text frame after those already sent; never blocks.

        Dropped once :meth:`close` was called or the WebSocket is no longer open.
        """
        if self._closing is not None:
            return
        payload = frame.encode("utf-8", "surrogatepass")
        frames = self.frames
        if frames is not None:
            frames.write(text_frame(payload))
        elif self._protocol.state is self._open:
            self._protocol.send_text(payload)
            self.connection.send_data()

    def buffered_amount(self) -> int:
        """Return the bytes sent that the socket has not taken yet (held or buffered)."""
        frames = self.frames
        if frames is not None:
            return frames.buffered_amount()
        return self.connection.transport.get_write_buffer_size()

    def close(self, code: int, reason: str, /) -> None:
        """Start the closing handshake with ``code`` and ``reason``; never blocks.

        Frames sent before are written first; the connection's handler task runs the
        handshake (bounded by the server's ``close_timeout``); frames sent after this
        call are dropped.
        """
        if self._closing is None:
            self._closing = (code, reason)
            if self.frames is not None:
                self.frames.close()
            self._close_requested.set()


class _State:
    """Per-server state shared by the handlers."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway


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
    transport = WebSocketTransport(connection)
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
