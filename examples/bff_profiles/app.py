"""One backend, two frontends: the web page and the mobile app get the same events,
each shaped for it (a Backend for Frontend).

Run: python examples/bff_profiles/app.py

The web page (a WebSocket) gets every event whole, as a CloudEvent. The iOS app (over
server-sent events, what a mobile client on a flaky network resumes most easily) gets
order events only, in a compact form: three fields under short names, the status in
French; internal events never reach it. ``GET /orders/{id}`` answers the latest status in
the caller's shape too. Set ``EVENTPATTERNS_BACKEND=redis://127.0.0.1:6379/0`` for the bus
on Redis, or an ``aws://`` URL (README.md) for EventBridge and SQS.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import uvicorn
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from eventpatterns import Event, EventBus
from eventpatterns.bff import Profile, Profiles, Projection
from eventpatterns.core import EventModel, EventRegistry
from eventpatterns.errors import AuthenticationFailed
from eventpatterns.realtime import Credentials, Gateway, Principal
from eventpatterns.realtime.asgi import credentials_from
from eventpatterns.realtime.asgi import routes as realtime_routes

registry = EventRegistry("shop")


class OrderShipped(EventModel, type="shop.order.shipped", registry=registry):
    order_id: str
    total_cents: int
    status: str = "order.shipped"
    carrier: str | None = None
    warehouse: str | None = None


MESSAGES = {("order.shipped", "fr"): "Expédiée", ("order.shipped", "en"): "Shipped"}
PROFILES = Profiles(
    [
        Profile(name="web"),  # every event as it is
        Profile(
            name="ios",
            projections={
                OrderShipped: Projection.parse(
                    "order_id as id, total_cents as total, status",
                    form="compact",
                    localize="status",
                )
            },
            unlisted="drop",  # event types without a projection are not sent to iOS
            locale="fr",
        ),
    ],
    registry=registry,
    localizer=lambda key, locale: MESSAGES.get((key, locale), key),
)
ORDERS = {"type": [OrderShipped.event_type]}
TOKENS = {"t-web": ("ann", "web"), "t-ios": ("ann", "ios")}


async def authorizer(credentials: Credentials) -> Principal:
    if credentials.token not in TOKENS:  # a demo: use JWTAuthorizer for real
        raise AuthenticationFailed("unknown token", reason="invalid")
    user, profile = TOKENS[credentials.token]
    return Principal(user, claims={"profile": profile})  # the profile is a claim


def build(gateway: Gateway, latest: dict[str, Event]) -> Starlette:
    async def order(request: Request) -> Response:
        try:
            principal = await authorizer(credentials_from(request.headers, request.query_params))
        except AuthenticationFailed as exc:
            return JSONResponse({"title": str(exc)}, status_code=401)
        event = latest.get(request.path_params["id"])
        text = None if event is None else PROFILES.encode(PROFILES.profile_of(principal), event)
        if text is None:
            return JSONResponse({"title": "no such order"}, status_code=404)
        return Response(text, media_type="application/json")

    return Starlette(routes=[Route("/orders/{id}", order), *realtime_routes(gateway)])


async def sse_messages(response: httpx.Response) -> AsyncIterator[tuple[str, str]]:
    """A minimal server-sent events reader: ``(event, data)`` per message."""
    kind = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, line[6:]
        elif not line:  # the end of a message
            kind = "message"


async def scenario(bus: EventBus, base: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The web page (a WebSocket) and the iOS app (SSE) connect; the shop publishes."""
    async with (
        websockets.connect(f"ws://{base}/ws?token=t-web") as web,
        httpx.AsyncClient(timeout=10) as http,
        http.stream("GET", f"http://{base}/events?token=t-ios") as ios,
    ):
        await web.recv()  # connected
        await web.send(json.dumps({"type": "subscribe", "id": "all"}))
        await web.recv()  # subscribed
        ios_messages = sse_messages(ios)
        async for kind, _ in ios_messages:  # connected, then subscribed
            if kind == "subscribed":
                break

        audit = {"who": "ops", "what": "refund check"}
        await bus.publish(Event(type="shop.audit", source="/shop", data=audit))  # internal
        shipped = OrderShipped(order_id="o-1", total_cents=1999, carrier="DHL", warehouse="W3")
        await bus.publish(shipped.to_event(source="/shop"))

        for _ in range(2):
            event = json.loads(await web.recv())["event"]
            print(f"web page gets {event['type']}: {json.dumps(event['data'], ensure_ascii=False)}")
        kind, data = await anext(ios_messages)  # not the audit event: the order
        assert kind == "event"
        print(f"iOS app gets  {json.loads(data)['type']}: {data}")
        shown: tuple[dict[str, Any], dict[str, Any]] = (event, json.loads(data))
        return shown


async def main() -> None:
    url = os.environ.get("EVENTPATTERNS_BACKEND", "memory://")
    latest: dict[str, Event] = {}  # a read model of the latest event per order

    async def remember(event: Event) -> None:
        latest[event.data["order_id"]] = event

    async with (
        EventBus.from_url(url) as bus,
        Gateway(bus, authorizer=authorizer, profiles=PROFILES) as gateway,
    ):
        consumer = await bus.consume("orders-read-model", remember, pattern=ORDERS)
        app = build(gateway, latest)
        config = uvicorn.Config(app, lifespan="off", log_level="warning", ws="websockets-sansio")
        server = uvicorn.Server(config)
        sock = socket.create_server(("127.0.0.1", 0))
        base = f"127.0.0.1:{sock.getsockname()[1]}"
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            while not server.started:  # noqa: ASYNC110 - uvicorn has no readiness hook
                await anyio.sleep(0.01)
            with anyio.fail_after(20):
                web, ios = await scenario(bus, base)
                await consumer.drain()
                async with httpx.AsyncClient(base_url=f"http://{base}") as http:
                    for token, (_, profile) in TOKENS.items():
                        answer = await http.get("/orders/o-1", params={"token": token})
                        print(f"GET /orders/o-1 as {profile}: {answer.text}")
            server.should_exit = True
    assert web["data"]["warehouse"] == "W3"  # the whole event
    assert ios["data"] == {"id": "o-1", "total": 1999, "status": "Expédiée"}
    print("the same events, shaped for each client")


if __name__ == "__main__":
    anyio.run(main)
