"""Three ``eventpatterns serve`` processes on one Redis bus; one is killed with SIGKILL.

Every client receives every event published from anywhere exactly once, in order; the
clients of the killed gateway reconnect to another one and resume from the last
position they saw, with no gap and no duplicate (counted).
"""

from __future__ import annotations

import json
import signal
import uuid
from contextlib import AsyncExitStack
from typing import Any

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from bff.test_serve import CE, served
from eventpatterns import Event, EventBus

pytestmark = [pytest.mark.anyio, pytest.mark.redis, pytest.mark.slow]

EVENTS = 240
KILL_AFTER = 80  # events the killed gateway's clients have seen when it is killed
CLIENTS_PER_GATEWAY = 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Client:
    """A well-behaved client: resumes with ``since`` on another gateway when cut off."""

    def __init__(self, name: str, urls: list[str], home: int) -> None:
        self.name = name
        self.urls = urls
        self.home = home
        self.received: list[int] = []
        self.position: str | None = None
        self.subscribed = anyio.Event()
        self.reconnects = 0
        self.dead: set[int] = set()

    async def run(self) -> None:
        index = self.home
        while True:
            try:
                if await self._session(index):
                    return
            except (ConnectionClosed, OSError):
                pass
            self.reconnects += 1
            self.dead.add(index)
            index = next(i for i in range(len(self.urls)) if i not in self.dead)
            await anyio.sleep(0.05)

    async def _session(self, index: int) -> bool:
        async with connect(self.urls[index]) as ws:
            assert json.loads(await ws.recv())["type"] == "connected"
            subscribe: dict[str, Any] = {
                "type": "subscribe",
                "id": "s1",
                "pattern": {"type": ["t"]},
            }
            if self.position is not None:
                subscribe["since"] = self.position
            await ws.send(json.dumps(subscribe))
            async for raw in ws:
                frame = json.loads(raw)
                if frame["type"] == "subscribed":
                    if self.position is None:
                        self.position = frame["position"]
                    self.subscribed.set()
                elif frame["type"] == "event":
                    self.position = frame["position"]
                    n = frame["event"]["data"]["n"]
                    if n == "end":
                        return True
                    self.received.append(n)
                else:
                    raise AssertionError(f"{self.name} got {frame}")
        return False  # the server closed cleanly: reconnect


async def test_three_gateways_deliver_exactly_once_and_survive_a_sigkill() -> None:
    url = f"redis://127.0.0.1:6379/0?prefix=test-scale-{uuid.uuid4().hex[:8]}&max_entries=10000"
    async with AsyncExitStack() as stack:
        gateways = [await stack.enter_async_context(served("--bus", url)) for _ in range(3)]
        ws_urls = [urls["WebSocket"] for _, urls in gateways]
        publish_urls = [urls["Publish"] for _, urls in gateways]
        bus = await stack.enter_async_context(EventBus.from_url(url))
        # A first event, so every subscription starts from a real position.
        await bus.publish(Event(type="warm-up", source="/test"))
        clients = [
            Client(f"g{g}c{c}", ws_urls, g) for g in range(3) for c in range(CLIENTS_PER_GATEWAY)
        ]
        victims = [c for c in clients if c.home == 0]
        http = await stack.enter_async_context(httpx.AsyncClient())

        async def publish_all() -> None:
            for n in range(EVENTS):
                if n == KILL_AFTER:  # kill gateway 0 once its clients are mid-stream
                    with anyio.fail_after(30):
                        while min(len(v.received) for v in victims) < KILL_AFTER - 10:  # noqa: ASYNC110
                            await anyio.sleep(0.01)
                    gateways[0][0].send_signal(signal.SIGKILL)
                if n % 3 == 0:  # from a gateway still alive, over HTTP
                    target = publish_urls[1 + n % 2]
                    body = json.dumps(
                        {"specversion": "1.0", "id": f"e{n}", "type": "t", "source": "/http",
                         "data": {"n": n}}
                    ).encode()  # fmt: skip
                    response = await http.post(target, content=body, headers=CE)
                    assert response.status_code == 202, response.text
                else:  # from another process straight to the bus
                    await bus.publish(Event(type="t", source="/bus", data={"n": n}))
                await anyio.sleep(0.002)
            await bus.publish(Event(type="t", source="/bus", data={"n": "end"}))

        with anyio.fail_after(90):
            async with anyio.create_task_group() as tg:
                for client in clients:
                    tg.start_soon(client.run)
                for client in clients:
                    await client.subscribed.wait()
                tg.start_soon(publish_all)

        assert gateways[0][0].returncode == -signal.SIGKILL
        for client in clients:
            duplicates = sorted({n for n in client.received if client.received.count(n) > 1})
            missing = sorted(set(range(EVENTS)) - set(client.received))
            assert client.received == list(range(EVENTS)), (
                client.name,
                duplicates,
                missing,
            )  # no gap, no duplicate
        assert [c.reconnects for c in victims] == [1] * CLIENTS_PER_GATEWAY
        assert all(c.reconnects == 0 for c in clients if c.home != 0)
        for process, _ in gateways[1:]:
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(15):
                assert await process.wait() == 0
