"""``eventpatterns serve --backend aws://...`` on moto_server: what another process publishes.

The serve subprocess runs the composed app over EventBridge and SQS (its live tap queue);
this test is the other process: it publishes straight to the AWS bus, and the event
reaches a WebSocket client of the serve; ``POST /publish`` reaches it too.
"""

from __future__ import annotations

import json
import signal

import anyio
import httpx
import pytest
from websockets.asyncio.client import connect

from bff.test_serve import served  # tests/ is on sys.path (the rootdir conftest)
from eventpatterns import Event, EventBus
from realtime.transport_helpers import recv_json, recv_until

from .conftest import REGION

pytestmark = [pytest.mark.aws, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_serve_on_aws_delivers_what_another_process_and_publish_send(aws: str) -> None:
    # poll=1: the tap queue's long poll, so that closing takes a second, not five.
    url = f"aws://?region={REGION}&endpoint_url={aws}&prefix=serve&poll=1"
    async with served("--backend", url) as (process, urls):
        async with connect(urls["WebSocket"]) as ws:
            await recv_json(ws)
            await ws.send('{"type":"subscribe","id":"s1","pattern":{"type":["t.aws"]}}')
            await recv_until(ws, "subscribed")
            async with EventBus.from_url(url) as bus:
                await bus.publish(Event(type="t.aws", source="/other", data={"n": 1}))
            frame = await recv_until(ws, "event", within=20)
            assert frame["event"]["source"] == "/other"
            assert frame["event"]["data"] == {"n": 1}
            body = {"specversion": "1.0", "id": "e-2", "type": "t.aws", "source": "/http"}
            async with httpx.AsyncClient() as http:
                answer = await http.post(
                    urls["Publish"],
                    content=json.dumps({**body, "data": {"n": 2}}),
                    headers={"content-type": "application/cloudevents+json"},
                )
                assert answer.status_code == 202, answer.text
                health = await http.get(urls["Health"])
            assert health.json()["components"] == {"bus": "ok", "gateway": "ok"}
            frame = await recv_until(ws, "event", within=20)
            assert (frame["event"]["id"], frame["event"]["data"]) == ("e-2", {"n": 2})
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(30):
            assert await process.wait() == 0
