"""Chat rooms with presence (who is here) and resume after a dropped connection.

Run: python examples/chat/app.py            (the scripted scenario)
     python examples/chat/app.py --serve    (then open http://127.0.0.1:8000/?token=ann;
                                           $PORT picks another port)

Messages are posted over HTTP and published on the bus; each client holds a WebSocket
subscription to its room that also lists it in the room's presence and watches the
room's joins and leaves. A client whose connection dropped subscribes again with
``since`` = the last position it saw and gets what it missed, no gap, no duplicate. Set
``EVENTPATTERNS_BACKEND=redis://127.0.0.1:6379/0`` for the bus and presence on Redis, or an
``aws://`` URL (README.md) for EventBridge, SQS and DynamoDB.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Route

from eventpatterns import Event, EventBus
from eventpatterns.backends import stores_from_url
from eventpatterns.bff.asgi import served
from eventpatterns.errors import AuthenticationFailed
from eventpatterns.realtime import Credentials, Gateway, Principal
from eventpatterns.realtime.asgi import credentials_from
from eventpatterns.realtime.asgi import routes as realtime_routes

PAGE = Path(__file__).with_name("index.html")


async def authorizer(credentials: Credentials) -> Principal:
    if not credentials.token:  # a demo: use JWTAuthorizer or APIKeyAuthorizer for real
        raise AuthenticationFailed("no token", reason="missing")
    return Principal(credentials.token)


def build(bus: EventBus, gateway: Gateway) -> Starlette:
    async def post(request: Request) -> JSONResponse:
        try:
            user = await authorizer(credentials_from(request.headers, request.query_params))
        except AuthenticationFailed as exc:
            return JSONResponse({"title": str(exc)}, status_code=401)
        try:
            text = str((await request.json())["text"])[:500]
        except (ValueError, KeyError, TypeError):  # not JSON, or not {"text": ...}
            return JSONResponse({"title": 'expected {"text": "..."}'}, status_code=400)
        data = {"room": request.path_params["room"], "from": user.id, "text": text}
        position = await bus.publish(Event(type="chat.message", source="/chat", data=data))
        return JSONResponse({"position": position}, status_code=201)

    async def page(request: Request) -> FileResponse:
        return FileResponse(PAGE)

    routes = [Route("/", page), Route("/rooms/{room}/messages", post, methods=["POST"])]
    return Starlette(routes=[*routes, *realtime_routes(gateway)])


class Client:
    """What the page does, for one user: join a room, show what happens there."""

    def __init__(self, base: str, user: str) -> None:
        self.base, self.user = base, user
        self.last: str | None = None  # the position of the last message seen
        self.here: set[str] = set()  # who is in the room
        self.messages: list[str] = []  # what the page shows
        self.http = httpx.AsyncClient(
            base_url=f"http://{base}", headers={"authorization": f"Bearer {user}"}
        )

    async def join(self, room: str) -> websockets.ClientConnection:
        ws = await websockets.connect(f"ws://{self.base}/ws?token={self.user}")
        pattern = {"type": ["chat.message"], "data": {"room": [room]}}
        subscribe = {
            "type": "subscribe",
            "id": "room",
            "pattern": pattern,
            "presence": f"room:{room}",
        }
        since = {} if self.last is None else {"since": self.last}  # resume: missed, then live
        await ws.send(json.dumps({**subscribe, "watch": True, **since}))
        await self.until(ws, lambda frame: frame["type"] == "subscribed")
        return ws

    async def until(
        self, ws: websockets.ClientConnection, done: Callable[[dict[str, Any]], bool]
    ) -> None:
        """Show frames until ``done`` says so; keep the room's members as a set."""
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == "event":
                self.last = frame["position"]
                data = frame["event"]["data"]
                self.messages.append(data["text"])
                print(f"  {self.user} sees  {data['from']}: {data['text']}")
            elif frame["type"] == "presence":  # a sync replaces the set; joins and leaves edit it
                if frame["event"] == "sync":
                    self.here = set(frame["members"])
                else:
                    (self.here.add if frame["event"] == "join" else self.here.discard)(
                        frame["member"]
                    )
                print(f"  {self.user} sees  here: {sorted(self.here)}")
            if done(frame):
                return

    async def say(self, room: str, text: str) -> None:
        assert (
            await self.http.post(f"/rooms/{room}/messages", json={"text": text})
        ).status_code == 201


def said(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame["type"] == "event" and frame["event"]["data"]["text"] == text


async def scenario(base: str) -> None:
    ann, bob = Client(base, "ann"), Client(base, "bob")
    ann_ws = await ann.join("lobby")
    bob_ws = await bob.join("lobby")
    await ann.until(ann_ws, lambda _: ann.here == {"ann", "bob"})
    await bob.say("lobby", "hi ann")
    await ann.until(ann_ws, said("hi ann"))
    print("ann's network drops")
    await ann_ws.close()
    await bob.until(bob_ws, lambda _: bob.here == {"bob"})
    await bob.say("lobby", "are you there?")
    await bob.say("lobby", "call me back")
    print("ann reconnects and resumes after", ann.last)
    ann_ws = await ann.join("lobby")
    await ann.until(ann_ws, said("call me back"))
    assert ann.messages == ["hi ann", "are you there?", "call me back"], ann.messages
    await bob.until(bob_ws, lambda _: bob.here == {"ann", "bob"})
    for client, ws in ((ann, ann_ws), (bob, bob_ws)):
        await ws.close()
        await client.http.aclose()
    print("ann missed nothing and saw nothing twice")


async def serve(app: Starlette, scenario: Callable[[str], Awaitable[None]] | None) -> None:
    """Serve ``app`` on 127.0.0.1; run ``scenario("host:port")`` and stop, or (None) forever."""
    port = 0 if scenario else int(os.environ.get("PORT", "8000"))
    async with served(app, port=port) as where:
        base = f"127.0.0.1:{where.port}"
        if scenario is None:
            print(f"open http://{base}/?token=ann (and ?token=bob in another tab)")
            await anyio.sleep_forever()
        else:
            with anyio.fail_after(20):
                await scenario(base)


async def main(serve_forever: bool = False) -> None:
    url = os.environ.get("EVENTPATTERNS_BACKEND", "memory://")
    # The bus and the presence from one URL: on Redis, the room's members are shared by
    # every gateway process; entering the presence runs its expiry sweeper.
    async with (
        stores_from_url(url) as stores,
        EventBus(stores.bus) as bus,
        stores.presence as presence,
        Gateway(bus, authorizer=authorizer, presence=presence) as gateway,
    ):
        await serve(build(bus, gateway), None if serve_forever else scenario)


if __name__ == "__main__":
    anyio.run(main, "--serve" in sys.argv)
