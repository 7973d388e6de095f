"""The ASGI endpoints under uvicorn on a free port: WebSocket and SSE, with real clients."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import connect

from eventpatterns.errors import AuthenticationFailed, Forbidden
from eventpatterns.realtime import Credentials, Gateway, Limits, Principal, SubscriptionRequest
from eventpatterns.realtime.asgi import routes, sse_endpoint, websocket_endpoint

from .sse_parser import Parser
from .transport_helpers import (
    SMALL,
    close_code,
    order,
    recv_json,
    recv_until,
    running_gateway,
    uvicorn_serving,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn


@asynccontextmanager
async def serving(gateway: Gateway) -> AsyncIterator[str]:
    async with uvicorn_serving(Starlette(routes=routes(gateway))) as address:
        yield address


async def test_websocket_endpoint_delivers_events() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serving(gateway) as address,
        connect(f"ws://{address}/ws") as ws,
    ):
        assert (await recv_json(ws))["type"] == "connected"
        await ws.send(json.dumps({"type": "subscribe", "id": "s1", "pattern": {"type": ["a"]}}))
        await recv_until(ws, "subscribed")
        await gateway.bus.publish(order(1).model_copy(update={"type": "b"}))
        await gateway.bus.publish(order(2).model_copy(update={"type": "a"}))
        event = await recv_until(ws, "event")
        assert event["event"]["data"]["n"] == 2
        await ws.send(b"binary")
        assert (await recv_until(ws, "error"))["code"] == "unsupported_data"
        await ws.send("{oops")
        assert (await recv_until(ws, "error"))["code"] == "invalid_json"


async def test_websocket_oversized_frame_closes_1009_others_unaffected() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serving(gateway) as address,
        connect(f"ws://{address}/ws") as good,
        connect(f"ws://{address}/ws") as bad,
    ):
        await recv_json(good)
        await good.send('{"type":"subscribe","id":"s1"}')
        await recv_until(good, "subscribed")
        await recv_json(bad)
        await bad.send(json.dumps({"type": "ping", "payload": "x" * 5000}))
        assert await close_code(bad) == 1009
        await gateway.bus.publish(order(3))
        assert (await recv_until(good, "event"))["event"]["data"]["n"] == 3


async def test_websocket_gateway_shutdown_sends_1001() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serving(gateway) as address,
        connect(f"ws://{address}/ws") as ws,
    ):
        await recv_json(ws)
        await gateway.aclose()
        assert await close_code(ws) == 1001


async def _sse_events(
    response: httpx.Response, parser: Parser, count: int, within: float = 5
) -> None:
    with anyio.fail_after(within):
        async for chunk in response.aiter_bytes():
            parser.feed(chunk)
            if len([m for m in parser.messages if m.type == "event"]) >= count:
                return
    raise AssertionError("the stream ended early")


async def test_sse_streams_events_and_resumes_with_last_event_id() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serving(gateway) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
    ):
        params = {"pattern": json.dumps({"type": ["order.created"]})}
        async with client.stream("GET", "/events", params=params) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-cache"
            parser = Parser()
            for n in range(3):
                await gateway.bus.publish(order(n))
            await _sse_events(response, parser, 3)
        assert parser.retry == 3000
        events = [m for m in parser.messages if m.type == "event"]
        assert [json.loads(m.data)["data"]["n"] for m in events] == [0, 1, 2]
        after_first = events[0].last_event_id
        for n in range(3, 5):
            await gateway.bus.publish(order(n))
        # Resume after the first: 1..4, no gap, no duplicate. The header wins over ?since=.
        headers = {"Last-Event-ID": after_first}
        resume = {**params, "since": events[2].last_event_id}
        async with client.stream("GET", "/events", params=resume, headers=headers) as response:
            parser = Parser()
            await _sse_events(response, parser, 4)
        resumed = [json.loads(m.data)["data"]["n"] for m in parser.messages if m.type == "event"]
        assert resumed == [1, 2, 3, 4]
        # ?since= alone resumes too.
        async with client.stream("GET", "/events", params=resume) as response:
            parser = Parser()
            await _sse_events(response, parser, 2)
        resumed = [json.loads(m.data)["data"]["n"] for m in parser.messages if m.type == "event"]
        assert resumed == [3, 4]


async def test_sse_sends_keep_alive_comments() -> None:
    limits = Limits(max_frame_bytes=4096, keepalive=0.05)
    async with (
        running_gateway(limits=limits) as gateway,
        serving(gateway) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
        client.stream("GET", "/events") as response,
    ):
        parser = Parser()
        with anyio.fail_after(5):
            async for chunk in response.aiter_bytes():
                parser.feed(chunk)
                if parser.comments.count("keep-alive") >= 2:
                    break
        assert parser.comments[:2] == ["keep-alive", "keep-alive"]


async def _problem(client: httpx.AsyncClient, status: int, **kwargs: Any) -> dict[str, Any]:
    response = await client.get("/events", **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return dict(body)


async def test_sse_errors_before_streaming_are_problem_documents() -> None:
    async def authorizer(credentials: Credentials) -> Principal:
        if credentials.token in ("alice", "bob"):
            return Principal(id=credentials.token)
        raise AuthenticationFailed("unknown token", reason="bad_signature")

    async def authorize(principal: Principal, request: SubscriptionRequest) -> SubscriptionRequest:
        if principal.id == "bob":
            raise Forbidden("bob may not subscribe", principal=principal.id)
        return request

    async with (
        running_gateway(
            limits=SMALL, authorizer=authorizer, authorize_subscription=authorize
        ) as gateway,
        serving(gateway) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
    ):
        ok = {"Authorization": "Bearer alice"}
        await _problem(client, 400, params={"pattern": "{nope"}, headers=ok)
        await _problem(client, 400, params={"pattern": "[1]"}, headers=ok)
        await _problem(client, 400, params={"pattern": "{}", "filter": "{}"}, headers=ok)
        await _problem(client, 400, params={"pattern": '{"a": 1}'}, headers=ok)
        await _problem(client, 400, headers={**ok, "Last-Event-ID": "x" * 300})
        await _problem(client, 401)
        response = await client.get("/events", params={"token": "mallory"})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        await _problem(client, 403, headers={"Authorization": "Bearer bob"})
        response = await client.post("/events", headers=ok)
        assert response.status_code == 405
        # Alice still streams.
        async with client.stream("GET", "/events", headers=ok) as response:
            assert response.status_code == 200
            parser = Parser()
            await gateway.bus.publish(order(1))
            await _sse_events(response, parser, 1)


async def test_sse_client_disconnect_frees_the_connection() -> None:
    async with (
        running_gateway(limits=SMALL) as gateway,
        serving(gateway) as address,
        httpx.AsyncClient(base_url=f"http://{address}") as client,
    ):
        async with client.stream("GET", "/events") as response:
            assert response.status_code == 200
            assert gateway.stats().connections == 1
        with anyio.fail_after(5):
            while gateway.stats().connections:  # noqa: ASYNC110 - no event to wait on
                await anyio.sleep(0.01)
        assert gateway.stats().subscriptions == 0


async def test_endpoints_refuse_the_other_scope_type() -> None:
    async with running_gateway(limits=SMALL) as gateway:
        from starlette.routing import Mount, WebSocketRoute

        app = Starlette(
            routes=[
                Mount("/ws", websocket_endpoint(gateway)),
                WebSocketRoute("/sse", sse_endpoint(gateway)),
            ]
        )
        async with (
            uvicorn_serving(app) as address,
            httpx.AsyncClient(base_url=f"http://{address}") as client,
        ):
            response = await client.get("/ws/")
            assert response.status_code == 400
            assert response.headers["content-type"] == "application/problem+json"
            with pytest.raises(Exception, match=r"1008|SSE only|403|rejected"):
                async with connect(f"ws://{address}/sse") as ws:
                    await ws.recv()
