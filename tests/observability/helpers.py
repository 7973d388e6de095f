"""Serving an ASGI app with uvicorn on a free port, and reading /metrics back."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
from prometheus_client.parser import text_string_to_metric_families

Scrape = dict[tuple[str, frozenset[tuple[str, str]]], float]


@contextlib.asynccontextmanager
async def uvicorn_serving(app: Any) -> AsyncIterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1, a free port; yield ``host:port``."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
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


def parse(text: str) -> Scrape:
    """Every sample of a Prometheus text page: (name, labels) -> value."""
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return out


async def scrape(address: str) -> Scrape:
    """GET /metrics from a running server and parse it."""
    async with httpx.AsyncClient() as client:
        response = await client.get(f"http://{address}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text)


def delta(after: Scrape, before: Scrape, name: str, **labels: str) -> float:
    """How much one sample grew between two scrapes."""
    key = (name, frozenset(labels.items()))
    assert key in after, f"{name}{labels} is not in the scrape"
    return after[key] - before.get(key, 0.0)
