"""Shared pieces of the transport tests: a gateway on the memory bus, events, JSON frames."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from eventpatterns import Event, EventBus
from eventpatterns.realtime import Gateway, Limits


@asynccontextmanager
async def running_gateway(**options: Any) -> AsyncIterator[Gateway]:
    async with EventBus.from_url("memory://") as bus, Gateway(bus, **options) as gateway:
        yield gateway


def order(n: int, **data: Any) -> Event:
    return Event(type="order.created", source="/tests", data={"n": n, **data})


async def recv_json(ws: Any, within: float = 5) -> dict[str, Any]:
    """The next frame as JSON (a websockets client connection)."""
    with anyio.fail_after(within):
        raw = await ws.recv()
    assert isinstance(raw, str), raw
    frame = json.loads(raw)
    assert isinstance(frame, dict)
    return frame


async def recv_until(ws: Any, kind: str, within: float = 5) -> dict[str, Any]:
    """Skip frames until one of ``kind`` (``connected`` may come first, etc.)."""
    with anyio.fail_after(within):
        while True:
            frame = await recv_json(ws, within)
            if frame["type"] == kind:
                return frame


SMALL = Limits(max_frame_bytes=4096, auth_timeout=5)


@asynccontextmanager
async def uvicorn_serving(app: Any, *, ws: str = "websockets-sansio") -> AsyncIterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1, a free port; yield ``host:port``.

    ``ws`` is uvicorn's WebSocket implementation (``websockets-sansio``, ``wsproto``).
    """
    import contextlib
    import socket

    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            yield

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", ws=ws)
    server = Server(config)
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn has no readiness hook
                await anyio.sleep(0.01)
        try:
            yield f"127.0.0.1:{port}"
        finally:
            server.should_exit = True
    sock.close()


async def close_code(ws: Any, within: float = 10) -> int:
    """Read until the connection closes; return the close code the server sent."""
    from websockets.exceptions import ConnectionClosed

    try:
        with anyio.fail_after(within):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        received = closed.rcvd
    if received is None:
        raise AssertionError("closed without a close frame")
    return int(received.code)
