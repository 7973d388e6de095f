"""A minimal raw client for the gateway benchmark: many connections in one process.

RFC 6455 by hand (handshake, unmasked server frames read in bulk, masked client
frames), Engine.IO v4 / Socket.IO v5 over WebSocket, and SSE over HTTP/1.1 (chunked
or not). Each connection is an ``asyncio.Protocol``: one ``data_received`` call parses
every complete frame of a read with a few byte operations per frame and takes the
clock once, so one client process keeps up with far more than any server here
delivers (the benchmark reports the client's CPU share to show it).

Latency: every message carries ``@`` and the publisher's ``time.monotonic_ns()`` as
20 digits (one clock for every process of the machine, CLOCK_MONOTONIC); the client
subtracts it from its own reading at receipt.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
import urllib.parse
from array import array
from collections.abc import Callable
from typing import Any

STAMP = 64  # b"@": the marker before the 20-digit publish timestamp


def client_frame(payload: bytes, opcode: int = 1) -> bytes:
    """Return a masked client frame (RFC 6455 §5.3: every client frame is masked)."""
    mask = os.urandom(4)
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    if n == 0:
        return header + mask
    key = (mask * (n // 4 + 1))[:n]
    masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
    return header + mask + masked


class Tally:
    """Counts and latencies of every connection of one client process, for one run."""

    def __init__(self) -> None:
        self.expected: list[int] = []
        self.counts: list[int] = []
        self.latency = array("q")
        self.measure = False
        self.remaining = 0
        self.last_ns = 0
        self.first_ns = 0
        self.frame_bytes = 0
        self.done: asyncio.Event = asyncio.Event()

    def arm(self, expected: list[int], *, measure: bool) -> None:
        self.expected = expected
        self.counts = [0] * len(expected)
        self.latency = array("q")
        self.measure = measure
        self.remaining = sum(1 for e in expected if e > 0)
        self.last_ns = self.first_ns = 0
        self.done = asyncio.Event()
        if self.remaining == 0:
            self.done.set()

    def got(self, index: int, n: int, now: int, size: int) -> None:
        self.frame_bytes = size
        counts = self.counts
        before = counts[index]
        counts[index] = after = before + n
        if not self.first_ns:
            self.first_ns = now
        self.last_ns = now
        expected = self.expected[index]
        if before < expected <= after:
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()


class _Base(asyncio.Protocol):
    """Shared state: the handshake, then frames handed to ``on_message``."""

    def __init__(self, index: int, tally: Tally, request: bytes) -> None:
        self.index = index
        self.tally = tally
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handshaken = False
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.headers = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection {self.index} lost: {exc}"))

    def fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"connection {self.index}: {why}"))

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            self.headers = bytes(buf[:end])
            status = self.headers.split(b"\r\n", 1)[0]
            if not self.status_ok(status):
                self.fail(f"handshake refused: {status!r}")
                return
            del buf[: end + 4]
            self.handshaken = True
            self.opened()
        self.parse(time.monotonic_ns())

    def status_ok(self, status: bytes) -> bool:
        return b" 101 " in status

    def opened(self) -> None:
        """The handshake is done (the place to send a first frame)."""

    def parse(self, now: int) -> None:
        raise NotImplementedError

    def send_text(self, text: str) -> None:
        assert self.transport is not None
        self.transport.write(client_frame(text.encode()))


class WSClient(_Base):
    """A WebSocket connection: RFC 6455 frames, ``on_text`` per text message."""

    def parse(self, now: int) -> None:
        buf = self.buf
        n = len(buf)
        i = 0
        count = 0
        tally = self.tally
        measure = tally.measure
        latency = tally.latency
        ready = self.ready.done()
        size = 0
        while n - i >= 2:
            length = buf[i + 1] & 0x7F
            head = 2
            if length == 126:
                if n - i < 4:
                    break
                length = (buf[i + 2] << 8) | buf[i + 3]
                head = 4
            elif length == 127:
                if n - i < 10:
                    break
                length = int.from_bytes(buf[i + 2 : i + 10], "big")
                head = 10
            start = i + head
            end = start + length
            if end > n:
                break
            opcode = buf[i] & 0x0F
            if opcode == 1:
                if ready and self.is_event(buf, start, end):
                    count += 1
                    size = end - i
                    if measure:
                        p = buf.find(STAMP, start, end)
                        latency.append(now - int(buf[p + 1 : p + 21]))
                else:
                    self.control(bytes(buf[start:end]))
                    ready = self.ready.done()
            elif opcode == 9:  # ping -> pong with the same payload (RFC 6455 §5.5.3)
                assert self.transport is not None
                self.transport.write(client_frame(bytes(buf[start:end]), 0xA))
            elif opcode == 8:
                self.fail(f"closed by the server: {bytes(buf[start:end])!r}")
            i = end
        if i:
            del buf[:i]
        if count:
            tally.got(self.index, count, now, size)

    def is_event(self, buf: bytearray, start: int, end: int) -> bool:
        return True

    def control(self, message: bytes) -> None:
        """A message before the connection is ready (plain servers send ``ready``)."""
        if message == b"ready" and not self.ready.done():
            self.ready.set_result(None)


class GatewayClient(WSClient):
    """The eventpatterns gateway protocol: subscribe once, count ``event`` frames."""

    def __init__(self, index: int, tally: Tally, request: bytes, pattern: dict[str, Any]) -> None:
        super().__init__(index, tally, request)
        self.pattern = pattern

    def is_event(self, buf: bytearray, start: int, end: int) -> bool:
        return buf.startswith(b'{"type":"event"', start, end)

    def control(self, message: bytes) -> None:
        frame = json.loads(message)
        kind = frame.get("type")
        if kind == "connected":
            self.send_text(json.dumps({"type": "subscribe", "id": "s", "pattern": self.pattern}))
        elif kind == "subscribed" and not self.ready.done():
            self.ready.set_result(None)
        elif kind in ("error", "resync-required"):
            self.fail(f"gateway said {frame}")


class SocketIOClient(WSClient):
    """Engine.IO v4 / Socket.IO v5 over WebSocket: ``0`` open, ``40`` connect, ``42`` events."""

    def __init__(self, index: int, tally: Tally, request: bytes, auth: dict[str, Any]) -> None:
        super().__init__(index, tally, request)
        self.auth = auth

    def is_event(self, buf: bytearray, start: int, end: int) -> bool:
        if buf.startswith(b"42", start, end):
            return True
        if buf.startswith(b"2", start, end):  # an Engine.IO ping: answer pong
            self.send_text("3" + buf[start + 1 : end].decode())
        return False

    def control(self, message: bytes) -> None:
        if message.startswith(b"0"):  # Engine.IO open -> Socket.IO connect with auth
            self.send_text("40" + json.dumps(self.auth, separators=(",", ":")))
        elif message.startswith(b"40") and not self.ready.done():
            self.ready.set_result(None)
        elif message.startswith(b"2"):
            self.send_text("3" + message[1:].decode())
        elif message.startswith(b"44"):
            self.fail(f"socket.io refused: {message!r}")


class SSEClient(_Base):
    """Server-sent events over HTTP/1.1: de-chunk, split on blank lines, count ``event``."""

    def __init__(self, index: int, tally: Tally, request: bytes) -> None:
        super().__init__(index, tally, request)
        self.chunked = False
        self.text = bytearray()  # the event stream, de-chunked
        self.want = -1  # bytes left in the current chunk (-1: a size line comes next)

    def status_ok(self, status: bytes) -> bool:
        return b" 200 " in status

    def opened(self) -> None:
        self.chunked = b"transfer-encoding: chunked" in self.headers.lower()

    def parse(self, now: int) -> None:
        if self.chunked:
            self._dechunk()
        else:
            self.text += self.buf
            self.buf.clear()
        text = self.text
        tally = self.tally
        measure = tally.measure
        latency = tally.latency
        count = size = 0
        i = 0
        while True:
            end = text.find(b"\n\n", i)
            if end < 0:
                break
            if text.startswith(b"id: ", i, end) and text.find(b"\nevent: event\n", i, end) > 0:
                if self.ready.done():
                    count += 1
                    size = end + 2 - i
                    if measure:
                        p = text.find(STAMP, i, end)
                        latency.append(now - int(text[p + 1 : p + 21]))
            elif text.find(b"event: subscribed", i, end) >= 0:
                if not self.ready.done():
                    self.ready.set_result(None)
            elif text.find(b"event: error", i, end) >= 0 or text.find(b"resync", i, end) >= 0:
                self.fail(f"gateway said {bytes(text[i:end])!r}")
            i = end + 2
        if i:
            del text[:i]
        if count:
            tally.got(self.index, count, now, size)

    def _dechunk(self) -> None:
        # RFC 9112 §7.1: the size in hex and CRLF, the data, CRLF.
        raw = self.buf
        out = self.text
        i = 0
        n = len(raw)
        while i < n:
            if self.want < 0:
                eol = raw.find(b"\r\n", i)
                if eol < 0:
                    break
                self.want = int(raw[i:eol].split(b";", 1)[0], 16) + 2  # data + CRLF
                i = eol + 2
            take = min(self.want, n - i)
            out += raw[i : i + take]
            i += take
            self.want -= take
            if self.want == 0:
                del out[-2:]  # the CRLF after the data
                self.want = -1
        del raw[:i]


# -- one client process ---------------------------------------------------------------


def ws_request(port: int, path: str) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def sse_request(port: int, path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()


def user_of(index: int) -> str:
    return f"u{index}"


def make_factory(
    client: str, port: int, slot: int, user: str, tally: Tally, *, p2p: bool
) -> Callable[[], _Base]:
    """The protocol factory for the connection in ``slot`` (of ``tally``) of a user."""
    index = slot
    if client == "ws":  # plain servers: the query names the user (p2p) or "all"
        path = f"/ws?user={user if p2p else 'all'}"
        return lambda: WSClient(index, tally, ws_request(port, path))
    pattern: dict[str, Any] = {"data": {"user": [user]}} if p2p else {"type": ["bench.tick"]}
    if client == "gateway":
        return lambda: GatewayClient(index, tally, ws_request(port, "/ws"), pattern)
    if client == "sse":
        query = urllib.parse.urlencode({"pattern": json.dumps(pattern, separators=(",", ":"))})
        return lambda: SSEClient(index, tally, sse_request(port, f"/events?{query}"))
    if client == "socketio":
        path = "/socket.io/?EIO=4&transport=websocket"
        return lambda: SocketIOClient(index, tally, ws_request(port, path), {"user": user})
    raise ValueError(f"unknown client kind {client!r}")


async def open_all(
    client: str, port: int, indexes: range, tally: Tally, *, p2p: bool, parallel: int = 50
) -> list[_Base]:
    """Open every connection (``parallel`` handshakes at a time) and wait until each is ready."""
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(parallel)
    tally.arm([0] * len(indexes), measure=False)

    async def one(slot: int, index: int) -> _Base:
        async with gate:
            factory = make_factory(client, port, slot, user_of(index), tally, p2p=p2p)
            _, protocol = await loop.create_connection(factory, "127.0.0.1", port)
            await asyncio.wait_for(protocol.ready, 30)
            return protocol

    return list(await asyncio.gather(*(one(s, i) for s, i in enumerate(indexes))))


def cpu_time() -> float:
    return time.process_time()
