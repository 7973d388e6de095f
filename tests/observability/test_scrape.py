"""Real traffic through every pattern, then GET /metrics: the scrape reports exactly it."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.routing import Route
from websockets.asyncio.client import connect

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryDeviceRegistry, MemoryJobStore
from eventpatterns.bus import Backoff, Retry
from eventpatterns.jobs import JobContext, JobState, JobTracker
from eventpatterns.observability.asgi import metrics_app
from eventpatterns.push import (
    Notification,
    PushDispatcher,
    Registration,
    Vapid,
    VapidKeys,
    WebPushAdapter,
    WebPushProvider,
)
from eventpatterns.push._fatigue import FatiguePolicy
from eventpatterns.realtime import Gateway
from eventpatterns.realtime.asgi import routes
from eventpatterns.testing import WebPushReceiver

from .helpers import Scrape, delta, scrape, uvicorn_serving

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # uvicorn


@asynccontextmanager
async def serving(*extra: Any) -> AsyncIterator[str]:
    app = Starlette(routes=[*extra, Route("/metrics", endpoint=metrics_app())])
    async with uvicorn_serving(app) as address:
        yield address


async def recv(ws: Any, kind: str) -> dict[str, Any]:
    with anyio.fail_after(5):
        while True:
            frame: dict[str, Any] = json.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


async def test_bus_and_gateway_traffic_is_scraped_exactly() -> None:
    quick = Retry(max_attempts=2, backoff=Backoff(initial=0.001, maximum=0.001, jitter=0))

    async def bill(event: Event) -> None:
        if event.data == 0:
            raise RuntimeError("card declined")

    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus) as gateway,
        serving(*routes(gateway)) as address,
    ):
        before = await scrape(address)
        consumer = await bus.consume(
            "obs-billing", bill, pattern={"type": ["order.paid"]}, retry=quick
        )
        async with connect(f"ws://{address}/ws") as ws:
            await recv(ws, "connected")
            subscribe = {"type": "subscribe", "id": "s1", "pattern": {"type": ["order.paid"]}}
            await ws.send(json.dumps(subscribe))
            await recv(ws, "subscribed")
            for n in range(5):
                await bus.publish(Event(type="order.paid", source="/shop", data=n))
            await bus.publish(Event(type="order.viewed", source="/shop"))
            for _ in range(5):
                await recv(ws, "event")
            with anyio.fail_after(10):
                await consumer.drain()
            during = await scrape(address)
        with anyio.fail_after(5):
            while gateway.stats().connections:  # noqa: ASYNC110 - the server side notices the close
                await anyio.sleep(0.01)
        after = await scrape(address)

    name = "eventpatterns_bus_%s_total"
    assert delta(during, before, name % "published") == 6
    assert delta(during, before, name % "delivered", group="obs-billing") == 4
    assert delta(during, before, name % "retried", group="obs-billing") == 1
    assert delta(during, before, name % "dead_lettered", group="obs-billing") == 1
    assert delta(during, before, name % "dropped", reason="filtered_out") == 1
    assert delta(during, before, "eventpatterns_gateway_frames_delivered_total") == 5
    assert during[("eventpatterns_gateway_connections", frozenset())] == 1
    assert during[("eventpatterns_gateway_subscriptions", frozenset())] == 1
    group = frozenset({("group", "obs-billing")})
    assert during[("eventpatterns_bus_group_dead_letters", group)] == 1
    assert during[("eventpatterns_bus_group_lag", group)] == 0
    assert during[("eventpatterns_bus_group_pending", group)] == 0
    assert after[("eventpatterns_gateway_connections", frozenset())] == 0


async def test_a_job_to_succeeded_and_a_web_push_are_scraped_exactly() -> None:
    async def render(ctx: JobContext[Any]) -> str:
        await ctx.progress(0.5)
        return "done"

    vapid = Vapid(VapidKeys.generate(), subject="mailto:ops@example.com")
    registry = MemoryDeviceRegistry()
    async with (
        EventBus.from_url("memory://") as bus,
        WebPushReceiver() as receiver,
        WebPushProvider(vapid, padding=0) as provider,
        serving() as address,
    ):
        tracker = JobTracker(bus, MemoryJobStore())
        tracker.worker("obs-render")(render)
        dispatcher = PushDispatcher(
            registry,
            {"webpush": WebPushAdapter(provider)},
            policy=FatiguePolicy(user_budget=None),
        )
        async with tracker, dispatcher:
            before = await scrape(address)
            job = await tracker.submit("obs-render", None, owner="u1")
            done = await tracker.wait(job.id, timeout=10)
            sub = receiver.subscribe()
            b64 = base64.urlsafe_b64encode
            registration = Registration(
                "webpush",
                sub.endpoint,
                p256dh=b64(sub.p256dh).rstrip(b"=").decode(),
                auth=b64(sub.auth).rstrip(b"=").decode(),
            )
            await registry.register("alice", registration, now=time.time())
            result = await dispatcher.notify("alice", Notification(title="Shipped"))
            after = await scrape(address)
    assert done.state is JobState.SUCCEEDED
    assert [d.status for d in result.deliveries] == ["delivered"]
    assert len(receiver.messages) == 1
    states = "eventpatterns_jobs_state_changes_total"
    assert delta(after, before, states, state="pending") == 1
    assert delta(after, before, states, state="running") == 1
    assert delta(after, before, states, state="succeeded") == 1
    pushes = "eventpatterns_push_results_total"
    assert delta(after, before, pushes, provider="webpush", outcome="delivered") == 1
    dead = (pushes, frozenset({("provider", "webpush"), ("outcome", "dead_token")}))
    assert after.get(dead, 0.0) == before.get(dead, 0.0)  # other tests may have counted some


def test_delta_reads_the_scrape() -> None:
    scraped: Scrape = {("x_total", frozenset()): 3.0}
    assert delta(scraped, {}, "x_total") == 3.0
    with pytest.raises(AssertionError):
        delta(scraped, {}, "y_total")
