"""Pre-built WebSocket frames, written straight to a connection's asyncio transport.

A server's frames are not masked (RFC 6455 §5.1, §5.2), so without an extension
(per-message deflate compresses each connection's frames with that connection's own
context, RFC 7692 §7.2.1) the complete wire bytes of a text frame — header and
payload — are the same for every recipient. The gateway builds them once per event
and subscription id (:func:`text_frame`) and hands the bytes to the
:class:`FrameWriter` of each matching connection, which writes them to the asyncio
transport under ``websockets``' connection: no framing, no UTF-8 encoding and no copy
of the payload per connection. ``websockets`` still runs the handshake, reads the
client's frames, answers pings and runs the closing handshake.

Ordering. Everything a connection sends goes through its one asyncio transport in
the order it is written: ``websockets``' own frames (pong, ping, close), the gateway's
control frames (:meth:`FrameWriter.write`) and its event frames. Event frames the
gateway *holds* while it routes a batch (``held``, to join them into one write) are
written before anything else given to the writer, and before it closes.

A frame is written only while ``websockets``' protocol state is OPEN: once a close
frame was sent or received nothing more may follow it (RFC 6455 §5.5.1), so frames
given afterwards are dropped, as :func:`websockets.asyncio.server.broadcast` drops
them for connections that are not open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import asyncio

    from websockets.protocol import Protocol

__all__ = ["FLUSH_AT", "FrameWriter", "text_frame"]

#: Bytes of frames held for one write; more are written at once (a batch of big events
#: is not held back, so that a client that reads keeps its buffer near empty, and the
#: joined copy stays small).
FLUSH_AT = 16 * 1024


def text_frame(payload: bytes) -> bytes:
    """Return the wire bytes of one unmasked, final text frame carrying ``payload``.

    RFC 6455 §5.2: FIN set, opcode 0x1, no mask, and the payload length in 7 bits,
    or 126 and 16 bits, or 127 and 64 bits (network byte order).

    Args:
        payload: The UTF-8 text.

    Returns:
        The header followed by the payload, as ``websockets`` would send it
        (``Frame(Opcode.TEXT, payload).serialize(mask=False)``).
    """
    length = len(payload)
    if length < 126:
        return bytes((0x81, length)) + payload
    if length < 65536:
        return b"\x81\x7e" + length.to_bytes(2, "big") + payload
    return b"\x81\x7f" + length.to_bytes(8, "big") + payload


def _discard(data: bytes, /) -> None:
    """The writer's ``write`` once it is closed: drop what comes."""


class FrameWriter:
    """Where pre-built frames for one WebSocket connection go (its asyncio transport).

    The gateway's routing loop holds an event's frame with ``held.append(frame)`` and
    ``held_size += len(frame)`` (inlined there: it runs once per delivery) and calls
    :meth:`flush` at the end of the batch, or at once when ``held_size`` reaches
    :data:`FLUSH_AT`. Everything else goes through :meth:`write`.

    Args:
        protocol: The connection's ``websockets`` sans-I/O protocol (its ``state``
            says whether frames may still be written).
        transport: The connection's asyncio transport.

    Attributes:
        held: Frames held for the next write, in order.
        held_size: Their total size in bytes.
        buffered: The transport's ``get_write_buffer_size``: bytes the kernel has not
            taken yet (bound once; the routing loop calls it for each delivery).
    """

    __slots__ = ("_open", "_protocol", "_transport", "_write", "buffered", "held", "held_size")

    def __init__(self, protocol: Protocol, transport: asyncio.WriteTransport) -> None:
        from websockets.protocol import State

        self._protocol = protocol
        self._open = State.OPEN  # looked up once: websockets is imported lazily
        self._transport = transport
        self._write: Callable[[bytes], None] = transport.write
        self.buffered = transport.get_write_buffer_size
        self.held: list[bytes] = []
        self.held_size = 0

    def writable(self) -> bool:
        """Tell whether a frame written now would go out (the WebSocket is OPEN)."""
        return self._protocol.state is self._open and not self._transport.is_closing()

    def buffered_amount(self) -> int:
        """Return the bytes held plus those in the transport's write buffer."""
        return self.held_size + self.buffered()

    def write(self, frame: bytes, /) -> None:
        """Write one frame after the held ones (dropped unless the WebSocket is OPEN)."""
        if self.held:
            self.flush()
        if self.writable():
            self._write(frame)

    def flush(self) -> None:
        """Write the held frames as one write (dropped unless the WebSocket is OPEN)."""
        held = self.held
        if not held:
            return
        self.held = []
        self.held_size = 0
        if self.writable():
            self._write(held[0] if len(held) == 1 else b"".join(held))

    def close(self) -> None:
        """Write the held frames, then drop every frame given from now on."""
        self.flush()
        self._write = _discard
