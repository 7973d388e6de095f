"""The websockets transport, on real sockets (127.0.0.1, a free port), against the real gateway."""

from __future__ import annotations

import base64
import json
import os
import random
import socket
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from eventpatterns.realtime import Gateway, Limits, serve
from eventpatterns.realtime._websockets import WebSocketTransport

from .transport_helpers import SMALL, close_code, order, recv_json, recv_until, running_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the websockets library's asyncio implementation


async def _subscribe(ws: Any, sid: str = "s1", **extra: Any) -> dict[str, Any]:
    await ws.send(json.dumps({"type": "subscribe", "id": sid, **extra}))
    return await recv_until(ws, "subscribed")


async def test_subscribe_and_receive_events() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as ws,
    ):
        connected = await recv_json(ws)
        assert connected["type"] == "connected"
        assert connected["principal"] == "anonymous"
        await _subscribe(ws, pattern={"data": {"n": [{"numeric": [">=", 1]}]}})
        for n in range(3):
            await gateway.bus.publish(order(n))
        events = [await recv_until(ws, "event") for _ in range(2)]
        assert [e["event"]["data"]["n"] for e in events] == [1, 2]
        assert all(e["id"] == "s1" and e["position"] for e in events)


async def test_compression_is_off_by_default_and_configurable() -> None:
    async with running_gateway(limits=SMALL) as gateway:
        async with serve(gateway, "127.0.0.1", 0) as server, connect(server.url) as ws:
            # The client offers permessage-deflate; the server declines it.
            assert ws.response is not None
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await recv_json(ws)
        async with (
            serve(gateway, "127.0.0.1", 0, compression="deflate") as server,
            connect(server.url) as ws,
        ):
            assert ws.response is not None
            assert "permessage-deflate" in ws.response.headers["Sec-WebSocket-Extensions"]
            await recv_json(ws)
            await _subscribe(ws)
            # The deflate path (protocol.send_text), not the pre-built frame.
            await gateway.bus.publish(order(7, text="x" * 500))
            event = await recv_until(ws, "event")
            assert event["event"]["data"] == {"n": 7, "text": "x" * 500}


async def test_bad_input_gets_error_frames_and_the_connection_stays_open() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as ws,
    ):
        await recv_json(ws)
        await ws.send(b"\x00\x01binary")
        assert (await recv_until(ws, "error"))["code"] == "unsupported_data"
        await ws.send("{not json")
        assert (await recv_until(ws, "error"))["code"] == "invalid_json"
        await ws.send('{"type":"teleport"}')
        assert (await recv_until(ws, "error"))["code"] == "unknown_type"
        await ws.send('{"type":"subscribe","id":"s1","pattern":{"a":"not a list"}}')
        assert (await recv_until(ws, "error"))["code"] == "invalid_pattern"
        await ws.send('{"type":"ping","payload":42}')
        assert await recv_until(ws, "pong") == {"type": "pong", "payload": 42}


@pytest.mark.parametrize("size", [5000, 3 * 4096])
async def test_oversized_frame_closes_with_1009(size: int) -> None:
    # Up to twice the limit the gateway refuses it; beyond, websockets does: both 1009.
    async with (
        running_gateway(limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as bystander,
        connect(server.url) as ws,
    ):
        await recv_json(bystander)
        await _subscribe(bystander)
        await recv_json(ws)
        await ws.send(json.dumps({"type": "ping", "payload": "x" * size}))
        assert await close_code(ws) == 1009
        # The other connection is unaffected.
        await gateway.bus.publish(order(1))
        assert (await recv_until(bystander, "event"))["event"]["data"]["n"] == 1


async def test_header_token_authenticates_and_bad_token_closes_4401() -> None:
    from eventpatterns.errors import AuthenticationFailed
    from eventpatterns.realtime import Credentials, Principal

    async def authorizer(credentials: Credentials) -> Principal:
        if credentials.token == "good" or credentials.api_key == "key":
            return Principal(id="alice")
        raise AuthenticationFailed("bad token", reason="bad_signature")

    async with (
        running_gateway(limits=SMALL, authorizer=authorizer) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
    ):
        headers_and_urls: list[tuple[dict[str, str], str]] = [
            ({"Authorization": "Bearer good"}, server.url),
            ({"X-Api-Key": "key"}, server.url),
            ({}, server.url + "?token=good"),
        ]
        for headers, url in headers_and_urls:
            async with connect(url, additional_headers=headers) as ws:
                connected = await recv_json(ws)
                assert connected["principal"] == "alice"
        async with connect(server.url + "?token=bad") as ws:
            assert (await recv_until(ws, "error"))["code"] == "authentication_failed"
            assert await close_code(ws) == 4401
        # Without credentials in the request, the first frame authenticates.
        async with connect(server.url) as ws:
            await ws.send('{"type":"authenticate","token":"good"}')
            assert (await recv_until(ws, "connected"))["principal"] == "alice"


async def test_server_exit_closes_connections_with_1001() -> None:
    async with running_gateway(limits=SMALL) as gateway:
        async with serve(gateway, "127.0.0.1", 0) as server:
            ws = await connect(server.url)
            await recv_json(ws)
        # The server's exit closed it with 1001.
        assert await close_code(ws) == 1001


async def test_gateway_close_sends_1001() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as ws,
    ):
        await recv_json(ws)
        await gateway.aclose()
        assert await close_code(ws) == 1001


class _FaultyGateway(Gateway):
    """A gateway whose connections fail (a bug) on one magic frame."""

    def connect(self, transport: Any, credentials: Any = None) -> Any:
        conn = super().connect(transport, credentials)
        receive = conn.receive

        async def faulty(frame: str | bytes) -> None:
            if frame == "boom":
                raise RuntimeError("a bug in the gateway")
            await receive(frame)

        conn.receive = faulty  # type: ignore[method-assign]
        return conn


async def test_a_failing_connection_closes_1011_alone(caplog: pytest.LogCaptureFixture) -> None:
    from eventpatterns import EventBus

    async with (
        EventBus.from_url("memory://") as bus,
        _FaultyGateway(bus, limits=SMALL) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as good,
        connect(server.url) as bad,
    ):
        await recv_json(good)
        await _subscribe(good)
        await recv_json(bad)
        await bad.send("boom")
        assert await close_code(bad) == 1011
        await bus.publish(order(1))
        assert (await recv_until(good, "event"))["event"]["data"]["n"] == 1
    assert "a bug in the gateway" in caplog.text


def _random_frame(rng: random.Random) -> str | bytes:
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 64))
    if kind == 1:
        return "".join(chr(rng.randrange(1, 0x3000)) for _ in range(rng.randrange(0, 40)))
    if kind == 2:
        return json.dumps({"type": rng.choice(["subscribe", "unsubscribe", "ping", "x", 3])})
    if kind == 3:
        sid = rng.choice(["a", "b", "", "a" * 200, "ok-1", 5])
        pattern: object = rng.choice(
            [{}, {"type": "x"}, {"type": ["x"]}, [], None, {"data": {"n": [{}]}}]
        )
        return json.dumps({"type": "subscribe", "id": sid, "pattern": pattern})
    if kind == 4:
        return json.dumps({"type": "unsubscribe", "id": rng.choice(["a", "b", "zz"])})
    if kind == 5:
        return json.dumps({"type": "authenticate", "token": rng.choice(["", "x", None, 1])})
    if kind == 6:
        return "[" * rng.randrange(1, 200)
    return json.dumps({"type": "ping", "payload": rng.random()})


async def test_random_frames_leave_a_well_behaved_client_every_event() -> None:
    rng = random.Random(9)
    limits = Limits(max_frame_bytes=4096, rate=1e6, rate_burst=1_000_000)
    async with (
        running_gateway(limits=limits) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as good,
    ):
        await recv_json(good)
        await _subscribe(good, pattern={"type": ["order.created"]})
        sent = 0

        async def hostile(seed: int) -> None:
            nonlocal sent
            local = random.Random(seed)
            # It never reads: an unbounded receive queue keeps its closing handshake
            # from waiting behind unread error frames.
            async with connect(server.url, max_queue=None) as ws:
                for _ in range(1000):
                    try:
                        await ws.send(_random_frame(local))
                    except ConnectionClosed:  # e.g. a frame too deep: reconnect
                        return
                    sent += 1
                    if local.random() < 0.1:
                        await anyio.lowlevel.checkpoint()

        async with anyio.create_task_group() as tg:
            for _i in range(4):
                tg.start_soon(hostile, rng.randrange(1 << 30))
            for n in range(200):
                await gateway.bus.publish(order(n))
                if n % 20 == 0:
                    await anyio.lowlevel.checkpoint()
        received: list[int] = []
        while len(received) < 200:
            received.append((await recv_until(good, "event"))["event"]["data"]["n"])
        assert received == list(range(200))
        assert sent >= 3000, sent  # thousands of random frames
        # The server is still accepting connections.
        async with connect(server.url) as late:
            assert (await recv_json(late))["type"] == "connected"


async def test_transport_send_builds_frames_once_and_reports_the_buffer() -> None:
    from websockets.asyncio.server import serve as ws_serve

    captured: list[WebSocketTransport] = []

    async def handler(connection: Any) -> None:
        captured.append(WebSocketTransport(connection))
        await connection.wait_closed()

    async with ws_serve(handler, "127.0.0.1", 0, compression=None) as raw:
        port = next(iter(raw.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            with anyio.fail_after(5):
                while not captured:  # noqa: ASYNC110 - the handler's first step
                    await anyio.sleep(0.01)
            transport = captured[0]
            # 7-bit, 16-bit and 64-bit payload lengths (RFC 6455 5.2), one build each.
            for text in ["short", "é" * 200, "x" * 70000]:
                transport.send(text)
                assert await ws.recv() == text
            assert transport.buffered_amount() == 0
            transport.close(4000, "bye")
            transport.send("dropped after close")
            assert transport.buffered_amount() == 0


def _masked_text_frame(text: str) -> bytes:
    """A client's text frame (RFC 6455 5.3: clients mask)."""
    payload = text.encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes((0x81, 0x80 | len(payload))) + mask + masked


@pytest.mark.parametrize("policy", ["resync", "close"])
async def test_a_client_that_never_reads_gets_the_slow_client_policy(policy: str) -> None:
    limits = Limits(max_frame_bytes=4096, max_buffered=64 * 1024, slow_client=policy)  # type: ignore[arg-type]
    async with (
        running_gateway(limits=limits) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url, max_queue=None) as good,
    ):
        await recv_json(good)
        await _subscribe(good)
        # A raw client with a tiny receive window: it subscribes, then never reads.
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(5)
        await anyio.to_thread.run_sync(slow.connect, ("127.0.0.1", server.port))
        key = base64.b64encode(os.urandom(16)).decode()
        slow.sendall(
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        assert b" 101 " in await anyio.to_thread.run_sync(slow.recv, 4096)
        slow.sendall(_masked_text_frame('{"type":"subscribe","id":"s1"}'))
        with anyio.fail_after(5):
            while gateway.stats().subscriptions < 2:  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.01)
        try:
            count = 1500
            blob = "x" * 2000
            for start in range(0, count, 100):
                await gateway.bus.publish_batch(
                    order(n, blob=blob) for n in range(start, start + 100)
                )
            received = [
                (await recv_until(good, "event"))["event"]["data"]["n"] for _ in range(count)
            ]
            assert received == list(range(count))  # the good client got everything
            stats = gateway.stats()
            assert stats.dropped >= 1
            if policy == "resync":
                assert stats.resyncs == 1  # one subscription ended, with overflow
                assert stats.connections == 2
            else:
                assert stats.slow_closes == 1
                assert stats.connections == 1
        finally:
            slow.close()


async def test_subscribe_before_authenticating_and_the_auth_timeout() -> None:
    from eventpatterns.realtime import Credentials, Principal

    async def authorizer(credentials: Credentials) -> Principal:
        return Principal(id="alice")

    limits = Limits(max_frame_bytes=4096, auth_timeout=0.3)
    async with (
        running_gateway(limits=limits, authorizer=authorizer) as gateway,
        serve(gateway, "127.0.0.1", 0) as server,
        connect(server.url) as ws,
    ):
        await ws.send('{"type":"subscribe","id":"s1"}')
        assert (await recv_until(ws, "error"))["code"] == "not_authenticated"
        # Never authenticating: the gateway's timer closes it, through the handler's task.
        assert await close_code(ws) == 4408
