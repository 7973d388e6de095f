"""The ASGI endpoints driven in memory by a minimal ASGI server, on asyncio and trio.

uvicorn is asyncio-only; the endpoints are anyio code, so they also run on trio
(hypercorn's trio worker, for one). Here the "server" is two memory streams.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from eventpatterns.realtime.asgi import sse_endpoint, websocket_endpoint

from .sse_parser import Parser
from .transport_helpers import SMALL, order, running_gateway

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Peer:
    """The server side of one ASGI connection: what the app receives and what it sent."""

    def __init__(self) -> None:
        self.to_app: MemoryObjectSendStream[dict[str, Any]]
        self._app_in: MemoryObjectReceiveStream[dict[str, Any]]
        self.to_app, self._app_in = anyio.create_memory_object_stream(100)
        self._app_out: MemoryObjectSendStream[dict[str, Any]]
        self.from_app: MemoryObjectReceiveStream[dict[str, Any]]
        self._app_out, self.from_app = anyio.create_memory_object_stream(10_000)

    async def receive(self) -> dict[str, Any]:
        return await self._app_in.receive()

    async def send(self, message: Any) -> None:
        await self._app_out.send(dict(message))

    def close(self) -> None:
        for stream in (self.to_app, self._app_in, self._app_out, self.from_app):
            stream.close()

    async def next(self) -> dict[str, Any]:
        with anyio.fail_after(5):
            return await self.from_app.receive()


@asynccontextmanager
async def running(app: Any, scope: dict[str, Any]) -> AsyncIterator[Peer]:
    peer = Peer()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(app, scope, peer.receive, peer.send)
            yield peer
    finally:
        peer.close()


def _http(path: str, query: bytes = b"", headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "headers": headers or [],
    }


async def test_sse_endpoint_streams_and_ends_on_disconnect() -> None:
    async with running_gateway(limits=SMALL) as gateway:
        async with running(sse_endpoint(gateway), _http("/events")) as peer:
            await peer.to_app.send({"type": "http.request", "body": b"", "more_body": False})
            start = await peer.next()
            assert start["status"] == 200
            assert dict(start["headers"])[b"content-type"].startswith(b"text/event-stream")
            parser = Parser()
            for n in range(3):
                await gateway.bus.publish(order(n))
            while len([m for m in parser.messages if m.type == "event"]) < 3:
                parser.feed((await peer.next())["body"])
            assert parser.retry == 3000
            data = [json.loads(m.data)["data"]["n"] for m in parser.messages if m.type == "event"]
            assert data == [0, 1, 2]
            await peer.to_app.send({"type": "http.disconnect"})
        assert gateway.stats().connections == 0


async def test_sse_endpoint_bad_request_is_a_problem() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        running(sse_endpoint(gateway), _http("/events", b"filter=%7Bnope")) as peer,
    ):
        start = await peer.next()
        assert start["status"] == 400
        assert dict(start["headers"])[b"content-type"] == b"application/problem+json"
        body = json.loads((await peer.next())["body"])
        assert body["status"] == 400
        assert "filter" in body["detail"]


async def test_websocket_endpoint_round_trip_and_close() -> None:
    scope = {"type": "websocket", "path": "/ws", "query_string": b"", "headers": []}
    async with (
        running_gateway(limits=SMALL) as gateway,
        running(websocket_endpoint(gateway), scope) as peer,
    ):
        await peer.to_app.send({"type": "websocket.connect"})
        assert (await peer.next())["type"] == "websocket.accept"
        connected = json.loads((await peer.next())["text"])
        assert connected["type"] == "connected"
        await peer.to_app.send(
            {"type": "websocket.receive", "text": '{"type":"subscribe","id":"a"}'}
        )
        assert json.loads((await peer.next())["text"])["type"] == "subscribed"
        await peer.to_app.send({"type": "websocket.receive", "bytes": b"\x00"})
        assert json.loads((await peer.next())["text"])["code"] == "unsupported_data"
        await gateway.bus.publish(order(5))
        assert json.loads((await peer.next())["text"])["event"]["data"]["n"] == 5
        await gateway.aclose()
        assert await peer.next() == {
            "type": "websocket.close",
            "code": 1001,
            "reason": "the gateway is shutting down",
        }
        await peer.to_app.send({"type": "websocket.disconnect", "code": 1001})
