"""The ASGI WebSocket endpoint refuses bad request credentials at the handshake.

Real uvicorn servers on free ports (both of its WebSocket implementations), real
``websockets`` clients: a refused token gets an HTTP response, never a WebSocket.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from eventpatterns.errors import AuthenticationFailed
from eventpatterns.realtime import Credentials, Gateway, Limits, Principal
from eventpatterns.realtime.asgi import routes

from .transport_helpers import close_code, order, recv_json, recv_until, running_gateway
from .transport_helpers import uvicorn_serving as serve_app

pytestmark = pytest.mark.anyio

LIMITS = Limits(max_frame_bytes=4096, auth_timeout=5, max_connections_per_principal=2)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn


class Tokens:
    """An authorizer that knows two tokens and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, credentials: Credentials) -> Principal:
        self.calls += 1
        if credentials.token in ("alice", "bob"):
            return Principal(id=credentials.token)
        raise AuthenticationFailed("unknown token", reason="bad_signature")


async def refused(url: str, **options: Any) -> tuple[int, dict[str, Any]]:
    """Open ``url`` expecting the handshake to be refused; return (status, JSON body)."""
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **options):
            pass  # pragma: no cover - the handshake must fail
    response = info.value.response
    body = json.loads(response.body) if response.body else {}
    return response.status_code, body


@pytest.mark.parametrize("ws", ["websockets-sansio", "wsproto"])
async def test_bad_request_credentials_get_401_before_accept(ws: str) -> None:
    tokens = Tokens()
    async with (
        running_gateway(limits=LIMITS, authorizer=tokens) as gateway,
        serve_app(Starlette(routes=routes(gateway)), ws=ws) as address,
    ):
        status, body = await refused(
            f"ws://{address}/ws", additional_headers={"Authorization": "Bearer mallory"}
        )
        assert status == 401
        assert body["status"] == 401
        assert "unknown token" in body["detail"]
        status, body = await refused(f"ws://{address}/ws?token=mallory")
        assert (status, body["title"]) == (401, "Unauthorized")
        assert tokens.calls == 2
        assert gateway.stats().connections == 0
        # Good credentials in the request: accepted and connected at once.
        async with connect(f"ws://{address}/ws?token=alice") as ws_alice:
            connected = await recv_json(ws_alice)
            assert connected["type"] == "connected"
            assert connected["principal"] == "alice"
            await ws_alice.send('{"type":"subscribe","id":"s1"}')
            await recv_until(ws_alice, "subscribed")
            await gateway.bus.publish(order(7))
            assert (await recv_until(ws_alice, "event"))["event"]["data"]["n"] == 7


async def test_too_many_connections_is_429_at_the_handshake() -> None:
    async with (
        running_gateway(limits=LIMITS, authorizer=Tokens()) as gateway,
        serve_app(Starlette(routes=routes(gateway))) as address,
    ):
        url = f"ws://{address}/ws"
        headers = {"Authorization": "Bearer bob"}
        async with (
            connect(url, additional_headers=headers) as one,
            connect(url, additional_headers=headers) as two,
        ):
            assert (await recv_json(one))["type"] == "connected"
            assert (await recv_json(two))["type"] == "connected"
            status, body = await refused(url, additional_headers=headers)
            assert status == 429
            assert "too many connections" in body["detail"]
            assert gateway.stats().connections == 2


async def test_first_frame_authentication_still_accepts_then_closes_4401() -> None:
    tokens = Tokens()
    async with (
        running_gateway(limits=LIMITS, authorizer=tokens) as gateway,
        serve_app(Starlette(routes=routes(gateway))) as address,
    ):
        async with connect(f"ws://{address}/ws") as good:
            assert tokens.calls == 0  # no credentials in the request: accepted as is
            await good.send('{"type":"authenticate","token":"alice"}')
            assert (await recv_json(good))["type"] == "connected"
        async with connect(f"ws://{address}/ws") as bad:
            await bad.send('{"type":"authenticate","token":"mallory"}')
            error = await recv_json(bad)
            assert error["code"] == "authentication_failed"
            assert await close_code(bad) == 4401


def strip_extensions(app: Any) -> Any:
    """Hide the server's ``websocket.http.response`` extension from ``app``."""

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        await app({**scope, "extensions": {}}, receive, send)

    return wrapped


async def test_without_the_extension_a_refusal_is_a_close_before_accept_403() -> None:
    async with (
        running_gateway(limits=LIMITS, authorizer=Tokens()) as gateway,
        serve_app(strip_extensions(Starlette(routes=routes(gateway)))) as address,
    ):
        status, _ = await refused(f"ws://{address}/ws?token=mallory")
        assert status == 403
        async with connect(f"ws://{address}/ws?token=alice") as ws:
            assert (await recv_json(ws))["type"] == "connected"


async def test_a_closed_gateway_refuses_the_handshake_with_503() -> None:
    async with running_gateway(limits=LIMITS) as gateway:
        app = Starlette(routes=routes(gateway))
    assert isinstance(gateway, Gateway)
    async with serve_app(app) as address:
        status, body = await refused(f"ws://{address}/ws")
        assert status == 503
        assert "shutting down" in body["detail"]
