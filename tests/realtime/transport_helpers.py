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


async def recv_json(ws: Any, timeout: float = 5) -> dict[str, Any]:
    """The next frame as JSON (a websockets client connection)."""
    with anyio.fail_after(timeout):
        raw = await ws.recv()
    assert isinstance(raw, str), raw
    frame = json.loads(raw)
    assert isinstance(frame, dict)
    return frame


async def recv_until(ws: Any, kind: str, timeout: float = 5) -> dict[str, Any]:
    """Skip frames until one of ``kind`` (``connected`` may come first, etc.)."""
    with anyio.fail_after(timeout):
        while True:
            frame = await recv_json(ws, timeout)
            if frame["type"] == kind:
                return frame


SMALL = Limits(max_frame_bytes=4096, auth_timeout=5)
