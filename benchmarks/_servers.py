"""The servers of the gateway benchmark, one per process, each with its publisher.

Each server listens on a free port and publishes in its own process when told to
(through a pipe from the benchmark), so the publish call's cost counts as the
server's. Every message is about 100 bytes of JSON with ``@`` + the publisher's
``time.monotonic_ns()`` taken just before the publish call (see ``_wsclient``).

Kinds: ``ws-broadcast`` (``websockets.broadcast()``), ``ws-send`` (``await
connection.send()`` per connection), ``ws-frame`` (one pre-built frame written to
each asyncio transport: the ceiling), ``broadcaster`` (encode/broadcaster on
``memory://`` behind Starlette + uvicorn, one task per connection), ``socketio``
(python-socketio, ASGI under uvicorn), ``gateway-ws`` (eventpatterns' Gateway on its
websockets transport) and ``gateway-asgi`` (the Gateway's ASGI WebSocket and SSE
endpoints under uvicorn).
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
import urllib.parse
from collections.abc import AsyncIterable, Awaitable, Callable
from multiprocessing.connection import Connection as Pipe
from typing import Any, cast

PAD = "x" * 40
MessageSender = Callable[[int, int, int], Awaitable[None]]  # (seq, user, stamp)


def payload(seq: int, user: int, stamp: int) -> dict[str, Any]:
    """The message: ~100 bytes as compact JSON."""
    return {"t": f"@{stamp:020d}", "seq": seq, "user": f"u{user}", "pad": PAD}


def text(seq: int, user: int, stamp: int) -> str:
    return f'{{"t":"@{stamp:020d}","seq":{seq},"user":"u{user}","pad":"{PAD}"}}'


def listen() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def frame(data: bytes) -> bytes:
    """A server text frame (RFC 6455 §5.2: unmasked)."""
    n = len(data)
    if n < 126:
        return bytes((0x81, n)) + data
    if n < 65536:
        return b"\x81\x7e" + n.to_bytes(2, "big") + data
    return b"\x81\x7f" + n.to_bytes(8, "big") + data


# -- websockets baselines ---------------------------------------------------------------


async def websockets_server(kind: str, sock: socket.socket) -> tuple[Any, MessageSender]:
    from websockets.asyncio.server import ServerConnection, broadcast, serve

    everyone: list[ServerConnection] = []
    by_user: dict[str, ServerConnection] = {}

    async def handler(connection: ServerConnection) -> None:
        assert connection.request is not None
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(connection.request.path).query)
        user = query.get("user", ["all"])[0]
        if user == "all":
            everyone.append(connection)
        else:
            by_user[user] = connection
        await connection.send("ready")
        await connection.wait_closed()

    server = await serve(
        handler, sock=sock, compression=None, ping_interval=None, max_queue=None
    ).__aenter__()

    def targets(user: int) -> list[ServerConnection]:
        return everyone if not by_user else [by_user[f"u{user}"]]

    async def send_broadcast(seq: int, user: int, stamp: int) -> None:
        broadcast(targets(user), text(seq, user, stamp))

    async def send_loop(seq: int, user: int, stamp: int) -> None:
        message = text(seq, user, stamp)
        for connection in targets(user):
            await connection.send(message)

    async def send_frame(seq: int, user: int, stamp: int) -> None:
        data = frame(text(seq, user, stamp).encode())
        for connection in targets(user):
            connection.transport.write(data)

    senders = {"ws-broadcast": send_broadcast, "ws-send": send_loop, "ws-frame": send_frame}
    return server, senders[kind]


# -- uvicorn-hosted peers ---------------------------------------------------------------


async def uvicorn_serve(app: Any, sock: socket.socket) -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="off",
        http="h11",
        ws="websockets-sansio",
        ws_ping_interval=None,
        ws_per_message_deflate=False,
        ws_max_queue=1_000_000,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    return task


async def broadcaster_server(sock: socket.socket) -> tuple[Any, MessageSender]:
    from broadcaster import Broadcast
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocket

    broadcast = Broadcast("memory://")
    await broadcast.connect()

    async def endpoint(websocket: WebSocket) -> None:
        await websocket.accept()
        user = websocket.query_params.get("user", "all")
        async with broadcast.subscribe(channel=user) as subscriber:
            await websocket.send_text("ready")
            # broadcaster annotates Subscriber.__aiter__ as returning "... | None".
            async for event in cast("AsyncIterable[Any]", subscriber):
                await websocket.send_text(event.message)

    app = Starlette(routes=[WebSocketRoute("/ws", endpoint)])
    task = await uvicorn_serve(app, sock)
    p2p: list[bool] = []

    async def send(seq: int, user: int, stamp: int) -> None:
        channel = f"u{user}" if p2p and p2p[0] else "all"
        await broadcast.publish(channel=channel, message=text(seq, user, stamp))

    send.p2p = p2p  # type: ignore[attr-defined]
    return task, send


async def socketio_server(sock: socket.socket) -> tuple[Any, MessageSender]:
    import socketio  # type: ignore[import-untyped]

    sio = socketio.AsyncServer(async_mode="asgi", ping_interval=600, ping_timeout=600)

    @sio.event  # type: ignore[untyped-decorator,unused-ignore]
    async def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any] | None) -> None:
        if auth and "user" in auth:
            await sio.enter_room(sid, auth["user"])

    task = await uvicorn_serve(socketio.ASGIApp(sio), sock)
    p2p: list[bool] = []

    async def send(seq: int, user: int, stamp: int) -> None:
        room = f"u{user}" if p2p and p2p[0] else None
        await sio.emit("tick", payload(seq, user, stamp), to=room)

    send.p2p = p2p  # type: ignore[attr-defined]
    return task, send


# -- eventpatterns ------------------------------------------------------------------------


async def gateway_server(kind: str, sock: socket.socket, stack: Any) -> tuple[Any, MessageSender]:
    from eventpatterns import Event, EventBus
    from eventpatterns.realtime import Gateway, serve

    bus = await stack.enter_async_context(EventBus.from_url("memory://", max_entries=200_000))
    gateway = await stack.enter_async_context(Gateway(bus))
    if kind == "gateway-ws":
        # serve() binds its own socket; this one only reserved a free port.
        port = sock.getsockname()[1]
        sock.close()
        server = await stack.enter_async_context(
            serve(gateway, "127.0.0.1", port, ping_interval=None, backlog=2048)
        )
    else:
        from starlette.applications import Starlette

        from eventpatterns.realtime.asgi import routes

        server = await uvicorn_serve(Starlette(routes=routes(gateway)), sock)
    publish = bus.publish

    async def send(seq: int, user: int, stamp: int) -> None:
        await publish(Event(type="bench.tick", source="/bench", data=payload(seq, user, stamp)))

    return server, send


# -- the process ----------------------------------------------------------------------------


async def publish(send: MessageSender, n: int, users: int, rate: float | None) -> tuple[int, int]:
    """Publish ``n`` messages (to user ``i % users``), at ``rate`` per second or flat out."""
    clock = time.monotonic_ns
    sleep = asyncio.sleep
    first = clock()
    if rate is None:
        for i in range(n):
            await send(i, i % users, clock())
            await sleep(0)  # let the loop write: every contender gets the same chance
    else:
        interval = 1e9 / rate
        for i in range(n):
            due = first + int(i * interval)
            now = clock()
            if due > now:
                await sleep((due - now) / 1e9)
            await send(i, i % users, clock())
    return first, clock()


async def serve_process(kind: str, pipe: Pipe) -> None:
    from contextlib import AsyncExitStack

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Any] = asyncio.Queue()
    loop.add_reader(pipe.fileno(), lambda: inbox.put_nowait(pipe.recv()))
    sock = listen()
    port = sock.getsockname()[1]
    extra = int(os.environ.get("EVENTPATTERNS_BENCH_BASELINE_PAD", "0"))
    if extra and not kind.startswith("gateway"):
        global PAD  # the baselines' messages only: frames as large as the gateway's
        PAD = "x" * (40 + extra)
    async with AsyncExitStack() as stack:
        if kind.startswith("ws-"):
            server, send = await websockets_server(kind, sock)
        elif kind == "broadcaster":
            server, send = await broadcaster_server(sock)
        elif kind == "socketio":
            server, send = await socketio_server(sock)
        else:
            server, send = await gateway_server(kind, sock, stack)
        assert server is not None  # kept alive until the process exits
        pipe.send(("port", port))
        while True:
            command = await inbox.get()
            if command[0] == "run":
                _, n, users, rate, p2p, profile = command
                flag = getattr(send, "p2p", None)
                if flag is not None:
                    flag[:] = [p2p]
                profiler = None
                if profile and rate is None:
                    import cProfile

                    profiler = cProfile.Profile(time.process_time)
                    profiler.enable()
                cpu0 = time.process_time()
                first, last = await publish(send, n, users, rate)
                stop = await inbox.get()
                cpu = time.process_time() - cpu0
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(f"gateway-{kind}.prof")
                assert stop[0] == "stop", stop
                pipe.send(("ran", first, last, cpu))
            else:
                pipe.send(("bye",))
                os._exit(0)


def server_main(kind: str, pipe: Pipe) -> None:
    asyncio.run(serve_process(kind, pipe))
    # No graceful shutdown: the clients are gone and the peers' handlers would only
    # log their cancellation.
    os._exit(0)
