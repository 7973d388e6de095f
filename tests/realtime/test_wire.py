"""Pre-built WebSocket frames written straight to the transport: bytes, order, backpressure."""

from __future__ import annotations

import base64
import json
import os
import socket
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from websockets.asyncio.client import connect
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from eventpatterns.realtime import Limits, serve
from eventpatterns.realtime._websockets import WebSocketTransport
from eventpatterns.realtime._wire import text_frame

from .transport_helpers import SMALL, order, recv_until, running_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the websockets library's asyncio implementation


def parse_frames(data: bytes) -> list[Frame]:
    """Parse server frames (unmasked) with websockets' own parser: every byte, whole frames."""
    frames = _complete(data)
    assert sum(len(f.serialize(mask=False)) for f in frames) == len(data), "a truncated frame"
    return frames


@settings(max_examples=60, deadline=None)
@given(
    st.one_of(
        st.integers(0, 300), st.integers(65500, 65600), st.sampled_from([125, 126, 65535, 65536])
    ),
    st.text(max_size=4),
)
def test_text_frame_is_what_websockets_sends_and_parses_back(size: int, tail: str) -> None:
    payload = (b"x" * size) + tail.encode()
    wire = text_frame(payload)
    assert wire == Frame(Opcode.TEXT, payload).serialize(mask=False)
    [frame] = parse_frames(wire)
    assert frame.opcode is Opcode.TEXT
    assert frame.fin
    assert frame.data == payload


def _masked(text: str) -> bytes:
    """A client's text frame (RFC 6455 5.3: clients mask)."""
    return Frame(Opcode.TEXT, text.encode()).serialize(mask=True)


async def _raw_client(port: int, *, rcvbuf: int | None = None) -> socket.socket:
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    await anyio.to_thread.run_sync(sock.connect, ("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += await anyio.to_thread.run_sync(sock.recv, 1)
    assert b" 101 " in head
    return sock


async def _read_until(sock: socket.socket, done: Any) -> bytes:
    """Read until ``done(data)`` or the peer closes."""
    data = b""
    with anyio.fail_after(10):
        while not done(data):
            chunk = await anyio.to_thread.run_sync(sock.recv, 1 << 16)
            if not chunk:
                break
            data += chunk
    return data


def _complete(data: bytes) -> list[Frame]:
    """The complete frames at the front of ``data``."""
    frames = []
    reader = StreamReader()
    reader.feed_data(data)
    while True:
        parser = Frame.parse(reader.read_exact, mask=False)
        try:
            next(parser)
        except StopIteration as done:
            frames.append(done.value)
        else:
            return frames


def _closed(data: bytes) -> bool:
    return any(f.opcode is Opcode.CLOSE for f in _complete(data))


async def _read_through_close(sock: socket.socket) -> bytes:
    """Read until the server's close frame, answer it, and read on until the end."""
    data = await _read_until(sock, _closed)
    assert _closed(data)
    sock.sendall(Frame(Opcode.CLOSE, b"\x03\xe8").serialize(mask=True))
    return data + await _read_until(sock, lambda d: False)


def _json(frames: list[Frame]) -> list[dict[str, Any]]:
    return [json.loads(bytes(f.data)) for f in frames if f.opcode is Opcode.TEXT]


async def test_event_frames_on_the_wire_are_websockets_frames_in_order_before_the_close() -> None:
    async with running_gateway(limits=SMALL) as gateway, serve(gateway, "127.0.0.1", 0) as server:
        sock = await _raw_client(server.port)
        try:
            sock.sendall(_masked('{"type":"subscribe","id":"s1"}'))
            await _read_until(sock, lambda d: b'"subscribed"' in d)
            [conn] = gateway._connections.values()
            assert isinstance(conn.transport, WebSocketTransport)
            assert conn.transport.frames is not None  # the pre-built path
            positions = await gateway.bus.publish_batch(order(n) for n in range(50))
            with anyio.fail_after(5):
                while gateway.stats().position != positions[-1]:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            # Closed after routing: every event frame written before goes out first.
            await gateway.revoke("anonymous", reason="test")
            data = await _read_through_close(sock)
        finally:
            sock.close()
    frames = list(parse_frames(data))
    assert frames[-1].opcode is Opcode.CLOSE  # nothing after the close frame
    assert int.from_bytes(frames[-1].data[:2], "big") == 4403
    events = [f for f in _json(frames[:-1]) if f["type"] == "event"]
    assert [e["event"]["data"]["n"] for e in events] == list(range(50))
    assert [e["position"] for e in events] == positions
    # The bytes are exactly the frame websockets would have built for that text.
    first = next(f for f in frames if b'"type":"event"' in bytes(f.data))
    assert text_frame(bytes(first.data)) in data


@pytest.mark.parametrize("policy", ["resync", "close"])
async def test_a_slow_raw_client_is_bounded_and_gets_the_policy_after_its_events(
    policy: str,
) -> None:
    max_buffered = 32 * 1024
    limits = Limits(max_frame_bytes=4096, max_buffered=max_buffered, slow_client=policy)  # type: ignore[arg-type]
    async with running_gateway(limits=limits) as gateway, serve(gateway, "127.0.0.1", 0) as server:
        sock = await _raw_client(server.port, rcvbuf=4096)
        try:
            # Two subscriptions on one connection: frames of both, in log order.
            sock.sendall(_masked('{"type":"subscribe","id":"a"}'))
            sock.sendall(_masked('{"type":"subscribe","id":"b"}'))
            with anyio.fail_after(5):
                while gateway.stats().subscriptions < 2:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            [conn] = gateway._connections.values()
            sort_key = gateway.bus.backend.sort_key
            transport = conn.transport
            assert isinstance(transport, WebSocketTransport)
            # A small kernel send buffer, so that the asyncio buffer fills soon.
            server_sock = transport.connection.transport.get_extra_info("socket")
            server_sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
            blob = "x" * 1500
            worst = 0
            for start in range(0, 400, 40):
                positions = await gateway.bus.publish_batch(
                    order(n, blob=blob) for n in range(start, start + 40)
                )
                with anyio.fail_after(5):
                    while gateway.stats().position != positions[-1]:  # noqa: ASYNC110
                        await anyio.sleep(0.005)
                worst = max(worst, transport.buffered_amount())
            # Never over the limit, but for the small resync-required frames that follow.
            assert 0 < worst <= max_buffered + 2 * 256
            stats = gateway.stats()
            assert stats.dropped >= 1
            if policy == "resync":
                data = await _read_until(sock, lambda d: d.count(b'"resync-required"') == 2)
            else:
                data = await _read_through_close(sock)
        finally:
            sock.close()
    frames = _complete(data)
    texts = _json(frames)
    events = [f for f in texts if f["type"] == "event"]
    assert events
    # Log order on the connection across both subscriptions; each in order, no gap.
    keys = [sort_key(e["position"]) for e in events]
    assert keys == sorted(keys)
    for sid in ("a", "b"):
        mine = [e["event"]["data"]["n"] for e in events if e["id"] == sid]
        assert mine == list(range(len(mine)))
    if policy == "resync":
        assert stats.resyncs == 2
        assert stats.connections == 1
        for sid in ("a", "b"):
            resync = next(f for f in texts if f["type"] == "resync-required" and f["id"] == sid)
            index = texts.index(resync)
            mine = [f for f in texts if f.get("id") == sid and f["type"] == "event"]
            # Its resync comes after its last event and names that position.
            assert all(texts.index(e) < index for e in mine)
            assert resync["position"] == mine[-1]["position"]
    else:
        assert stats.slow_closes == 1
        assert frames[-1].opcode is Opcode.CLOSE
        assert int.from_bytes(frames[-1].data[:2], "big") == 4409


async def test_with_compression_frames_take_websockets_path() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0, compression="deflate") as server,
        connect(server.url, compression="deflate") as ws,
    ):
        await recv_until(ws, "connected")
        await ws.send('{"type":"subscribe","id":"s1"}')
        await recv_until(ws, "subscribed")
        [conn] = gateway._connections.values()
        assert isinstance(conn.transport, WebSocketTransport)
        assert conn.transport.frames is None  # each connection compresses its own frames
        assert conn.transport.buffered_amount() == 0
        await gateway.bus.publish_batch(order(n, blob="y" * 500) for n in range(20))
        got = [(await recv_until(ws, "event"))["event"]["data"]["n"] for _ in range(20)]
        assert got == list(range(20))


async def test_frames_given_after_close_or_once_the_peer_closed_are_dropped() -> None:
    async with running_gateway(limits=SMALL) as gateway, serve(gateway, "127.0.0.1", 0) as server:
        async with connect(server.url) as ws:
            await recv_until(ws, "connected")
            [conn] = gateway._connections.values()
            transport = conn.transport
            assert isinstance(transport, WebSocketTransport)
            writer = transport.frames
            assert writer is not None
            writer.held.append(text_frame(b'{"type":"held"}'))
            writer.held_size += 17
            transport.send('{"type":"after"}')  # flushes what is held first
            assert (await recv_until(ws, "held"))["type"] == "held"
            assert (await recv_until(ws, "after"))["type"] == "after"
            assert transport.buffered_amount() == 0
            transport.close(4000, "bye")
            transport.send('{"type":"dropped"}')
            writer.held.append(text_frame(b'{"type":"dropped"}'))
            writer.flush()
            with anyio.fail_after(5):
                await ws.wait_closed()
            assert ws.close_code == 4000
        writer.write(text_frame(b"{}"))  # closed: nothing to write to, no error
        assert not writer.writable()


async def test_frames_held_while_events_keep_coming_all_arrive_in_order() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as ws,
    ):
        await recv_until(ws, "connected")
        await ws.send('{"type":"subscribe","id":"s1"}')
        await recv_until(ws, "subscribed")
        # One event per loop iteration: the gateway routes on every iteration and holds
        # the frames (up to HOLD_SECONDS), then writes them together.
        for n in range(300):
            await gateway.bus.publish(order(n))
            await anyio.lowlevel.checkpoint()
        got = [(await recv_until(ws, "event"))["event"]["data"]["n"] for _ in range(300)]
        assert got == list(range(300))
        assert not gateway._dirty  # every held frame was written


async def test_each_subscription_id_gets_its_own_frame_built_once() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as one,
        connect(server.url) as two,
        connect(server.url) as three,
    ):
        # Ids a, b, a in one group: the frame for "a" is built once, reused for the third.
        for ws, sid in ((one, "a"), (two, "b"), (three, "a")):
            await recv_until(ws, "connected")
            await ws.send(json.dumps({"type": "subscribe", "id": sid}))
            await recv_until(ws, "subscribed")
        await gateway.bus.publish(order(7))
        frames = [await recv_until(ws, "event") for ws in (one, two, three)]
        assert [f["id"] for f in frames] == ["a", "b", "a"]
        assert frames[0] == frames[2]
        assert {f["event"]["data"]["n"] for f in frames} == {7}
