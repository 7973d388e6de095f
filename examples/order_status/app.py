"""Live order-status updates pushed to a web page over a WebSocket.

Run: python examples/order_status/app.py            (the scripted scenario)
     python examples/order_status/app.py --serve    (then open the URL it prints;
                                                   $PORT picks another port than 8000)

``POST /orders`` publishes ``order.status`` (placed); a consumer group moves each order
along (paid, shipped, delivered), publishing every change on the bus; the gateway pushes
each customer's changes, and only theirs (``owner_only``), to the page. Set
``EVENTPATTERNS_BACKEND=redis://127.0.0.1:6379/0`` to run the bus on Redis, or an ``aws://``
URL (README.md) for EventBridge and SQS.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from eventpatterns import Event, EventBus
from eventpatterns.bff.asgi import served
from eventpatterns.errors import AuthenticationFailed
from eventpatterns.realtime import Credentials, Gateway, Principal, owner_only
from eventpatterns.realtime.asgi import credentials_from
from eventpatterns.realtime.asgi import routes as realtime_routes

NEXT = {"placed": "paid", "paid": "shipped", "shipped": "delivered"}
PAGE = Path(__file__).with_name("index.html")


async def authorizer(credentials: Credentials) -> Principal:
    if not credentials.token:  # a demo: use JWTAuthorizer or APIKeyAuthorizer for real
        raise AuthenticationFailed("no token", reason="missing")
    return Principal(credentials.token)


def status(order: str, customer: str, state: str) -> Event:
    # The id makes each change idempotent: a redelivered step publishes nothing new.
    data = {"order": order, "customer": customer, "status": state}
    return Event(id=f"{order}.{state}", type="order.status", source="/shop", data=data)


async def build(bus: EventBus, gateway: Gateway, *, step: float = 0.0) -> Starlette:
    async def fulfil(event: Event) -> None:  # payment, warehouse and courier, in one
        following = NEXT.get(event.data["status"])
        if following is not None:
            await anyio.sleep(step)
            await bus.publish(status(event.data["order"], event.data["customer"], following))

    await bus.consume("fulfilment", fulfil, pattern={"type": ["order.status"]})

    async def place(request: Request) -> JSONResponse:
        try:
            principal = await authorizer(credentials_from(request.headers, request.query_params))
        except AuthenticationFailed as exc:
            return JSONResponse({"title": str(exc)}, status_code=401)
        order = f"o-{uuid.uuid4().hex[:6]}"
        await bus.publish(status(order, principal.id, "placed"))
        return JSONResponse({"order": order}, status_code=201)

    async def page(request: Request) -> FileResponse:
        return FileResponse(PAGE)

    routes = [Route("/", page), Route("/orders", place, methods=["POST"])]
    return Starlette(routes=[*routes, *realtime_routes(gateway)])


async def watch(base: str, user: str, orders: int) -> None:
    """What the page does: subscribe, then show each change until the orders arrive."""
    seen: dict[str, list[str]] = {}
    async with websockets.connect(f"ws://{base}/ws?token={user}") as ws:
        await ws.recv()  # connected
        pattern = {"type": ["order.status"]}  # narrowed to this user's orders by the server
        await ws.send(json.dumps({"type": "subscribe", "id": "orders", "pattern": pattern}))
        await ws.recv()  # subscribed
        headers = {"authorization": f"Bearer {user}"}
        async with httpx.AsyncClient(base_url=f"http://{base}", headers=headers) as http:
            for _ in range(orders):
                assert (await http.post("/orders")).status_code == 201
        while sum(states[-1:] == ["delivered"] for states in seen.values()) < orders:
            data = json.loads(await ws.recv())["event"]["data"]
            assert data["customer"] == user, "another customer's order"
            print(f"{user}'s page: order {data['order']} is {data['status']}")
            seen.setdefault(data["order"], []).append(data["status"])
    assert all(states == ["placed", *NEXT.values()] for states in seen.values()), seen


async def serve(app: Starlette, scenario: Callable[[str], Awaitable[None]] | None) -> None:
    """Serve ``app`` on 127.0.0.1; run ``scenario("host:port")`` and stop, or (None) forever."""
    port = 0 if scenario else int(os.environ.get("PORT", "8000"))
    async with served(app, port=port) as where:
        base = f"127.0.0.1:{where.port}"
        if scenario is None:
            print(f"open http://{base}/?token=alice")
            await anyio.sleep_forever()
        else:
            with anyio.fail_after(20):
                await scenario(base)


async def scenario(base: str) -> None:
    async with httpx.AsyncClient() as http:
        assert "<title>Your orders</title>" in (await http.get(f"http://{base}/")).text
    async with anyio.create_task_group() as users:
        users.start_soon(watch, base, "alice", 1)
        users.start_soon(watch, base, "bob", 2)
    print("every customer saw only their own orders, in order")


async def main(serve_forever: bool = False) -> None:
    url = os.environ.get("EVENTPATTERNS_BACKEND", "memory://")
    hook = owner_only("data.customer")  # each customer sees only their own orders
    async with (
        EventBus.from_url(url) as bus,
        Gateway(bus, authorizer=authorizer, authorize_subscription=hook) as gateway,
    ):
        app = await build(bus, gateway, step=1.0 if serve_forever else 0.0)
        await serve(app, None if serve_forever else scenario)


if __name__ == "__main__":
    anyio.run(main, "--serve" in sys.argv)
