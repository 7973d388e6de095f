"""A local downstream service for the BFF tests: real HTTP over a socket (hypercorn)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio

from eventpatterns.testing._fake_server import Receive, Scope, Send, read_request, respond


class Upstream:
    """Answers by path: ``/users/<id>``, ``/slow``, ``/flaky``, ``/down``, ``/pair/<a|b>``."""

    def __init__(self, *, flaky_failures: int = 2) -> None:
        self.hits: Counter[str] = Counter()
        self.raw_paths: list[str] = []
        self.flaky_failures = flaky_failures
        self.arrived = {"a": anyio.Event(), "b": anyio.Event()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        path = request.path
        self.raw_paths.append(scope["raw_path"].decode())
        head = "/" + path.strip("/").split("/")[0]
        self.hits[head] += 1
        body: Any
        if head == "/users":
            body = {"id": path.split("/", 2)[2], "query": scope["query_string"].decode()}
            await respond(send, 200, body)
        elif head == "/slow":
            await anyio.sleep(5)
            await respond(send, 200, {"late": True})
        elif head == "/flaky":
            if self.hits[head] <= self.flaky_failures:
                await respond(send, 503, {"error": "busy"})
            else:
                await respond(send, 200, {"attempt": self.hits[head]})
        elif head == "/down":
            await respond(send, 503, None)
        elif head == "/missing":
            await respond(send, 404, {"error": "no"})
        elif head == "/huge":
            await respond(send, 200, b"x" * 1_000_000)
        elif head == "/chunked":  # no content-length: the size is known only by reading
            await send({"type": "http.response.start", "status": 200, "headers": []})
            for _ in range(20):
                await send({"type": "http.response.body", "body": b"y" * 10_000, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        elif head == "/text":
            await respond(send, 200, b"plain words")
        elif head == "/pair":
            # Each half answers only once the other half has arrived: both calls must be
            # in flight at the same time, or this deadlocks (and fails on the timeout).
            me = path.rsplit("/", 1)[1]
            self.arrived[me].set()
            other = "b" if me == "a" else "a"
            with anyio.fail_after(5):
                await self.arrived[other].wait()
            await respond(send, 200, {"half": me})
        else:
            await respond(send, 200, json.dumps({"path": path}).encode())


@asynccontextmanager
async def running(upstream: Upstream) -> AsyncIterator[str]:
    """Serve ``upstream`` and yield its base URL."""
    from eventpatterns.testing._fake_server import serve_asgi

    async with serve_asgi(upstream) as port:
        yield f"http://127.0.0.1:{port}"
