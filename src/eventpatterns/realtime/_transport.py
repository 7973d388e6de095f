"""The seam between the gateway and a transport, and an in-memory transport for tests."""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Protocol

import anyio

from ._frames import Dialect

__all__ = ["MemoryTransport", "Transport"]


class Transport(Protocol):
    """One client connection as the gateway writes to it; each transport implements it.

    The gateway calls these from its own tasks (the bus reader's, and the task that
    feeds the connection's frames in); none may block or await.
    """

    #: How the gateway encodes frames for this transport (``"ws"`` or ``"sse"``).
    dialect: Dialect

    def send(self, frame: str, /) -> None:
        """Queue one frame (already encoded for the dialect); never block.

        Called only while :meth:`buffered_amount` is under ``Limits.max_buffered``
        (plus a few small control frames), so the queue is bounded by the gateway.
        """
        ...

    def buffered_amount(self) -> int:
        """Return the bytes queued but not yet written to the network."""
        ...

    def close(self, code: int, reason: str, /) -> None:
        """Start closing with a WebSocket close code (SSE: end the response); never block.

        Frames queued before it should still be written, as far as the peer reads them.
        """
        ...


class MemoryTransport:
    """A :class:`Transport` whose peer is the test: frames queue in memory.

    A test reads what the gateway sent with :meth:`receive` (JSON frames come back
    parsed; SSE messages as text). A peer that never calls :meth:`receive` is a client
    that never reads: its :meth:`buffered_amount` grows until the gateway's
    ``max_buffered`` stops it.

    Args:
        dialect: ``"ws"`` or ``"sse"``.

    Attributes:
        closed: Whether :meth:`close` was called.
        close_code: The close code, once closed.
        close_reason: The close reason.
        sent: Frames sent so far (counting those already received).
    """

    def __init__(self, dialect: Dialect = "ws") -> None:
        self.dialect: Dialect = dialect
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0
        self._queue: deque[str] = deque()
        self._buffered = 0
        self._waiter: anyio.Event | None = None

    def send(self, frame: str, /) -> None:
        """Queue a frame for the peer (ignored once closed)."""
        if self.closed:
            return
        self._queue.append(frame)
        self._buffered += len(frame)  # the gateway's frames are ASCII but for event data
        self.sent += 1
        self._wake()

    def buffered_amount(self) -> int:
        """Return the characters queued and not received yet."""
        return self._buffered

    def close(self, code: int, reason: str, /) -> None:
        """Record the close (first one wins); frames queued before stay receivable."""
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.close_reason = reason
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def receive_text(self) -> str | None:
        """Return the next frame's text at once, or ``None`` when none is queued."""
        if not self._queue:
            return None
        frame = self._queue.popleft()
        self._buffered -= len(frame)
        return frame

    async def receive(self) -> Any:
        """Wait for the next frame; return it parsed (``ws``) or as text (``sse``).

        Raises:
            EOFError: The transport was closed and every frame was received.
        """
        while True:
            text = self.receive_text()
            if text is not None:
                return json.loads(text) if self.dialect == "ws" else text
            if self.closed:
                raise EOFError(f"closed with {self.close_code} {self.close_reason!r}")
            waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def drain(self) -> list[Any]:
        """Return every frame queued now (parsed for ``ws``), without waiting."""
        out: list[Any] = []
        while (text := self.receive_text()) is not None:
            out.append(json.loads(text) if self.dialect == "ws" else text)
        return out
