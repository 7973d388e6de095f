"""``served``: an app on uvicorn for the length of an ``async with``, HTTP and WebSocket."""

from __future__ import annotations

import socket

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from eventpatterns.bff.asgi import Served, served

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text((await websocket.receive_text()).upper())
    await websocket.close()


APP = Starlette(routes=[Route("/", hello), WebSocketRoute("/ws", echo)])


async def test_http_and_websocket_are_served_on_a_free_port_then_stopped() -> None:
    async with served(APP) as where, httpx.AsyncClient() as client:
        assert where.host == "127.0.0.1"
        assert where.port > 0
        assert where.url == f"http://127.0.0.1:{where.port}"
        assert (await client.get(where.url + "/")).text == "hello"
        async with connect(where.ws_url + "/ws") as ws:
            await ws.send("abc")
            assert await ws.recv() == "ABC"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", where.port)):
        pass  # the port is closed once the block has ended


def test_urls_bracket_an_ipv6_host() -> None:
    assert Served("::1", 8000).url == "http://[::1]:8000"
    assert Served("::1", 8000).ws_url == "ws://[::1]:8000"
