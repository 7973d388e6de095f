"""Shared helpers of the real-time gateway tests: authorizer, clients on MemoryTransport."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from eventpatterns.errors import AuthenticationFailed
from eventpatterns.realtime import Connection, Credentials, Gateway, MemoryTransport, Principal


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def token_authorizer(credentials: Credentials) -> Principal:
    """``user:<id>`` → that principal; ``user:<id>:<expires_at>`` with an expiry."""
    token = credentials.token or credentials.api_key or ""
    kind, _, rest = token.partition(":")
    if kind != "user" or not rest:
        raise AuthenticationFailed("unknown token", reason="invalid")
    pid, _, expires = rest.partition(":")
    return Principal(pid, expires_at=float(expires) if expires else None)


async def frames_until(transport: MemoryTransport, count: int, seconds: float = 5) -> list[Any]:
    """Receive exactly ``count`` frames (fails after ``seconds``)."""
    with anyio.fail_after(seconds):
        return [await transport.receive() for _ in range(count)]


async def client(
    gateway: Gateway, token: str = "user:alice", **kwargs: Any
) -> tuple[Connection, MemoryTransport]:
    """An authenticated connection whose ``connected`` frame was received."""
    transport = MemoryTransport(**kwargs)
    conn = gateway.connect(transport, Credentials())
    await conn.receive(f'{{"type":"authenticate","token":"{token}"}}')
    [hello] = await frames_until(transport, 1)
    assert hello["type"] == "connected", hello
    return conn, transport


async def subscribe(
    conn: Connection, transport: MemoryTransport, sid: str, **fields: Any
) -> dict[str, Any]:
    """Subscribe and return the ``subscribed`` (or error) frame."""
    import json

    await conn.receive(json.dumps({"type": "subscribe", "id": sid, **fields}))
    [answer] = await frames_until(transport, 1)
    return dict(answer)
