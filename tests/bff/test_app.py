"""``create_app``: every component's routes in one app, ingest, health, OpenAPI, mounting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
from openapi_spec_validator import validate
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Mount, Route
from websockets.asyncio.client import connect

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryBlobStore, MemoryDeviceRegistry, MemoryJobStore
from eventpatterns.bff import Aggregator, Part, Upstream, View
from eventpatterns.bff.asgi import create_app
from eventpatterns.core import EventModel, EventRegistry
from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.jobs import JobContext, JobTracker, URLSigner
from eventpatterns.realtime import Credentials, Gateway, Principal
from eventpatterns.testing._fake_server import serve_asgi

pytestmark = pytest.mark.anyio

CE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}
SCOPES = {"pub": {"publish"}, "admin": {"admin"}, "nobody": set()}
CONTRACTS = EventRegistry("tests.bff.app")


class OrderPlaced(EventModel, type="com.example.order.placed", registry=CONTRACTS):
    order_id: str
    total_cents: int


class Job(BaseModel):
    n: int


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


#: For tests whose clients are asyncio-only (the websockets client, redis.asyncio).
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


async def authorizer(credentials: Credentials) -> Principal:
    scopes = SCOPES.get(credentials.token or "")
    if scopes is None:
        raise AuthenticationFailed("unknown token", reason="invalid")
    return Principal(credentials.token or "", scopes=frozenset(scopes))


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"e{n}", "type": "t", "source": "/s", **fields}


@dataclass
class Stack:
    bus: EventBus
    gateway: Gateway
    tracker: JobTracker
    app: Starlette
    client: httpx.AsyncClient


async def _metrics(scope: Any, receive: Any, send: Any) -> None:
    """A tiny ASGI app standing in for the Prometheus one."""
    body = b"eventpatterns_up 1\n"
    headers = [(b"content-type", b"text/plain; version=0.0.4")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def stack(**options: Any) -> AsyncIterator[Stack]:
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gateway:
        signer = URLSigner(b"k" * 32, base_url="http://test/blobs")
        blobs = MemoryBlobStore(signer=signer)
        tracker = JobTracker(bus, MemoryJobStore(), blobs=blobs)

        @tracker.worker("double")
        async def double(ctx: JobContext[Job]) -> Any:
            return {"n": ctx.input.n * 2}

        del double
        aggregator = Aggregator(
            [Upstream("users", "http://127.0.0.1:9")], allowed_hosts={"127.0.0.1"}
        )
        view = View("me", "/me/{user_id}", parts=(Part("user", "users", "/users/{user_id}"),))
        async with tracker:
            app = create_app(
                bus,
                gateway=gateway,
                tracker=tracker,
                blobs=blobs,
                signer=signer,
                registry=MemoryDeviceRegistry(),
                aggregator=aggregator,
                views=[view],
                contracts=CONTRACTS,
                metrics=_metrics,
                max_batch=3,
                **options,
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                yield Stack(bus, gateway, tracker, app, client)


async def test_publish_is_idempotent_on_the_event_id() -> None:
    async with stack() as s, s.bus.subscribe() as sub:
        first = await s.client.post("/publish", content=json.dumps(event(1)), headers=CE)
        again = await s.client.post("/publish", content=json.dumps(event(1)), headers=CE)
        other = await s.client.post("/publish", content=json.dumps(event(2)), headers=CE)
        assert first.status_code == again.status_code == other.status_code == 202
        assert first.json() == {"id": "e1", "position": first.json()["position"]}
        assert again.json() == {**first.json(), "duplicate": True}
        assert "duplicate" not in other.json()
        assert other.json()["position"] != first.json()["position"]
        got = [(await sub.receive()).id, (await sub.receive()).id]
        assert got == ["e1", "e2"]  # the repeat was not appended again


async def test_a_repeat_first_published_elsewhere_has_the_position_but_no_flag() -> None:
    async with stack() as s:
        position = await s.bus.publish(Event(id="e1", type="t", source="/s"))
        again = await s.client.post("/publish", content=json.dumps(event(1)), headers=CE)
        assert again.json() == {"id": "e1", "position": position}


async def test_binary_mode_and_batches_publish_in_order() -> None:
    async with stack() as s, s.bus.subscribe() as sub:
        headers = {"ce-specversion": "1.0", "ce-id": "b1", "ce-type": "t", "ce-source": "/s"}
        binary = await s.client.post(
            "/publish", content=b'{"k": 1}', headers={**headers, "content-type": "application/json"}
        )
        assert binary.status_code == 202, binary.text
        batch = await s.client.post(
            "/publish", content=json.dumps([event(1), event(2)]), headers=BATCH
        )
        assert batch.status_code == 202, batch.text
        assert [e["id"] for e in batch.json()["events"]] == ["e1", "e2"]
        received = [await sub.receive() for _ in range(3)]
        assert [e.id for e in received] == ["b1", "e1", "e2"]
        assert received[0].data == {"k": 1}


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{", CE, 400, "JSON"),
        (json.dumps(event(1, specversion="0.3")).encode(), CE, 400, "specversion"),
        (b"[]", BATCH, 400, "empty"),
        (json.dumps([event(1), {"id": "x"}]).encode(), BATCH, 400, "[1]"),
        (json.dumps([event(n) for n in range(4)]).encode(), BATCH, 413, "at most 3"),
        (b"{}", {"content-type": "text/plain"}, 400, ""),
    ],
)
async def test_bad_publishes_are_problems_naming_what_is_wrong(
    body: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    async with stack() as s:
        answer = await s.client.post("/publish", content=body, headers=headers)
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert words in answer.json()["detail"]


# On trio, httpx's ASGITransport warns about the request body the app did not read.
@asyncio_only
async def test_a_body_over_the_limit_is_a_413_before_it_is_read_whole() -> None:
    async with stack() as s:
        answer = await s.client.post("/publish", content=b"x" * (1024 * 1024 + 1), headers=CE)
        assert answer.status_code == 413
        assert answer.json()["detail"] == f"the body is over {1024 * 1024} bytes"


async def test_declared_types_are_validated_with_pydantic_locations() -> None:
    async with stack() as s:
        good = OrderPlaced(order_id="o1", total_cents=5).to_event(source="/shop")
        ok = await s.client.post("/publish", content=good.to_json(), headers=CE)
        assert ok.status_code == 202
        bad = event(2, type="com.example.order.placed", data={"order_id": "o2"})
        refused = await s.client.post("/publish", content=json.dumps(bad), headers=CE)
        assert refused.status_code == 422
        problem = refused.json()
        assert problem["event_id"] == "e2"
        assert [e["loc"] for e in problem["errors"]] == [["total_cents"]]
        mixed = [event(3), event(4, type="com.example.order.placed", data={"total_cents": "x"})]
        batch = await s.client.post("/publish", content=json.dumps(mixed), headers=BATCH)
        assert batch.status_code == 422
        assert batch.json()["index"] == 1
        assert {tuple(e["loc"]) for e in batch.json()["errors"]} == {
            ("order_id",),
            ("total_cents",),
        }
        # None of the refused batch was published: e3 is still new.
        again = await s.client.post("/publish", content=json.dumps(event(3)), headers=CE)
        assert again.status_code == 202


async def test_publishing_and_dead_letters_need_their_scopes() -> None:
    async with stack(authorizer=authorizer) as s:
        body = json.dumps(event(1))
        assert (await s.client.post("/publish", content=body, headers=CE)).status_code == 401
        nobody = await s.client.post("/publish", content=body, headers={**CE, **bearer("nobody")})
        assert nobody.status_code == 403
        assert "'publish'" in nobody.json()["detail"]
        ok = await s.client.post("/publish", content=body, headers={**CE, **bearer("pub")})
        assert ok.status_code == 202
        assert (await s.client.get("/dlq/g", headers=bearer("pub"))).status_code == 403
        unknown = await s.client.get("/dlq/g", headers=bearer("admin"))
        assert unknown.status_code == 404
        assert "'g'" in unknown.json()["detail"]


async def _dead_letters(bus: EventBus, count: int) -> None:
    from eventpatterns.bus import Retry
    from eventpatterns.testing import eventually

    async def fail(event: Event) -> None:
        raise ValueError(f"no {event.id}")

    consumer = await bus.consume("g", fail, start="earliest", retry=Retry(max_attempts=1))
    for n in range(count):
        await bus.publish(Event(id=f"d{n}", type="t", source="/s"))
    await eventually(lambda: consumer.stats.dead_lettered == count)
    consumer.stop()


async def test_dead_letters_list_show_redrive_and_discard() -> None:
    async with stack() as s:
        await _dead_letters(s.bus, 3)
        listed = await s.client.get("/dlq/g")
        assert listed.status_code == 200
        letters = listed.json()["dead_letters"]
        assert [d["event"]["id"] for d in letters] == ["d0", "d1", "d2"]
        assert letters[0]["error"] == "ValueError: no d0"
        shown = await s.client.get(f"/dlq/g/{letters[1]['id']}")
        assert shown.json()["event"]["id"] == "d1"
        assert (await s.client.get("/dlq/g/nope")).status_code == 404
        assert (await s.client.get("/dlq/g?limit=0")).status_code == 400
        redriven = await s.client.post("/dlq/g/redrive", json={"ids": [letters[0]["id"]]})
        assert redriven.json() == {"group": "g", "count": 1}
        bad = await s.client.post("/dlq/g/discard", json={"ids": [1]})
        assert bad.status_code == 400
        assert bad.json()["field"] == "ids"
        discarded = await s.client.post("/dlq/g/discard", content=b"")
        assert discarded.json()["count"] == 2
        assert (await s.client.get("/dlq/g")).json()["dead_letters"] == []


async def test_open_mode_dead_letters_are_for_loopback_clients_only() -> None:
    async with stack() as s:
        await _dead_letters(s.bus, 1)
        transport = httpx.ASGITransport(app=s.app, client=("192.0.2.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as remote:
            refused = await remote.get("/dlq/g")
            assert refused.status_code == 403
            assert "loopback" in refused.json()["detail"]
        assert len((await s.client.get("/dlq/g")).json()["dead_letters"]) == 1


async def test_jobs_devices_views_and_metrics_are_mounted() -> None:
    async with stack() as s:
        submitted = await s.client.post("/jobs/double", json={"n": 21})
        assert submitted.status_code == 202, submitted.text
        status = await s.client.get(f"{submitted.headers['location']}?wait=5")
        assert status.json()["state"] == "succeeded"
        result = await s.client.get(f"{submitted.headers['location']}/result")
        assert result.json() == {"n": 42}
        assert (await s.client.get("/devices")).json() == {"devices": []}
        view = await s.client.get("/me/u1")  # the upstream is down: a required part? no
        assert view.status_code == 200
        assert view.json()["complete"] is False
        metrics = await s.client.get("/metrics")
        assert metrics.text == "eventpatterns_up 1\n"


async def test_health_says_which_component_closed() -> None:
    async with stack() as s:
        healthy = await s.client.get("/healthz")
        assert healthy.json() == {
            "status": "ok",
            "components": {"bus": "ok", "gateway": "ok", "jobs": "ok"},
        }
        await s.gateway.aclose()
        sick = await s.client.get("/healthz")
        assert sick.status_code == 503
        assert sick.json()["components"]["gateway"] == "closed"


async def test_router_errors_are_problem_documents() -> None:
    async with stack() as s:
        missing = await s.client.get("/nowhere")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"
        wrong = await s.client.delete("/publish")
        assert wrong.status_code == 405
        assert wrong.headers["allow"] == "POST"


async def _hello(request: Request) -> Response:
    return PlainTextResponse(f"hello {request.path_params['name']}")


async def test_openapi_describes_every_http_route_mounted() -> None:
    extra = Route("/hello/{name}", _hello, methods=["GET"])
    async with stack(extra_routes=[extra]) as s:
        doc = (await s.client.get("/openapi.json")).json()
        validate(doc)
        mounted: set[tuple[str, str]] = set()
        for route in s.app.routes:
            if isinstance(route, Route):
                path = route.path.replace(":path}", "}")
                for method in (route.methods or {"GET", "POST", "DELETE", "PUT"}) - {"HEAD"}:
                    mounted.add((path, method.lower()))
        described = {(p, m) for p, ops in doc["paths"].items() for m in ops}
        # POST /jobs/{kind} shares the template of /jobs/{job_id} (OpenAPI forbids both).
        mounted = {("/jobs/{job_id}", m) if p == "/jobs/{kind}" else (p, m) for p, m in mounted}
        # The device routes take every method and answer 405 for the ones not listed.
        assert described <= mounted
        assert {(p, m) for p, m in mounted if not p.startswith("/devices")} <= described
        publish = doc["paths"]["/publish"]["post"]
        assert "application/cloudevents-batch+json" in publish["requestBody"]["content"]
        assert "422" in publish["responses"]
        result = doc["paths"]["/jobs/{job_id}/result"]["get"]["responses"]
        assert "303" in result
        assert doc["x-websocket"] == {"path": "/ws", "description": "the real-time gateway"}
        assert doc["servers"] == [{"url": "/"}]


async def test_bad_arguments_are_configuration_errors() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(ConfigurationError, match="aggregator"):
            create_app(bus, views=[View("v", "/v", parts=(Part("p", "u", "/p"),))])
        with pytest.raises(ConfigurationError, match="signer"):
            create_app(bus, blobs=MemoryBlobStore())
        with pytest.raises(ConfigurationError, match="max_batch"):
            create_app(bus, max_batch=0)


@asyncio_only
async def test_mounted_under_a_prefix_over_http_and_websocket() -> None:
    async with EventBus.from_url("memory://") as bus, Gateway(bus) as gateway:
        outer = Starlette(routes=[Mount("/rt", app=create_app(bus, gateway=gateway))])
        async with serve_asgi(outer) as port, httpx.AsyncClient() as client:
            base = f"127.0.0.1:{port}/rt"
            async with connect(f"ws://{base}/ws") as ws:
                await ws.send('{"type":"subscribe","id":"s1","pattern":{"type":["t"]}}')
                while json.loads(await ws.recv())["type"] != "subscribed":
                    pass
                url = f"http://{base}/publish"
                published = await client.post(url, content=json.dumps(event(7)), headers=CE)
                assert published.status_code == 202
                with anyio.fail_after(10):
                    while (frame := json.loads(await ws.recv()))["type"] != "event":
                        pass
                assert frame["event"]["id"] == "e7"
                assert frame["position"] == published.json()["position"]
            doc = (await client.get(f"http://{base}/openapi.json")).json()
            assert doc["servers"] == [{"url": "/rt"}]
            health = await client.get(f"http://{base}/healthz")
            assert health.json()["components"] == {"bus": "ok", "gateway": "ok"}


async def test_mounted_in_fastapi() -> None:
    fastapi = pytest.importorskip("fastapi")
    async with EventBus.from_url("memory://") as bus:
        outer = fastapi.FastAPI()
        outer.mount("/rt", create_app(bus))
        transport = httpx.ASGITransport(app=outer)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            answer = await client.post("/rt/publish", content=json.dumps(event(1)), headers=CE)
            assert answer.status_code == 202


@pytest.mark.redis
@asyncio_only
async def test_publish_on_redis_is_idempotent_on_the_event_id() -> None:
    import uuid

    import redis.asyncio

    prefix = f"bff-app-{uuid.uuid4().hex[:12]}"
    try:
        async with EventBus.from_url(f"redis://127.0.0.1:6379/0?prefix={prefix}") as bus:
            transport = httpx.ASGITransport(app=create_app(bus))
            async with (
                httpx.AsyncClient(transport=transport, base_url="http://test") as client,
                bus.subscribe() as sub,
            ):
                body = json.dumps(event(1))
                first = await client.post("/publish", content=body, headers=CE)
                again = await client.post("/publish", content=body, headers=CE)
                batch = await client.post(
                    "/publish", content=json.dumps([event(1), event(2)]), headers=BATCH
                )
                assert first.status_code == again.status_code == batch.status_code == 202
                assert again.json() == {**first.json(), "duplicate": True}
                assert batch.json()["events"] == [
                    {**first.json(), "duplicate": True},
                    {"id": "e2", "position": batch.json()["events"][1]["position"]},
                ]
                assert [(await sub.receive()).id for _ in range(2)] == ["e1", "e2"]
    finally:
        client_ = redis.asyncio.Redis()
        keys = [key async for key in client_.scan_iter(match=f"*{prefix}*")]
        if keys:
            await client_.delete(*keys)
        await client_.aclose()


async def test_without_an_authorizer_the_gateways_one_guards_the_http_routes() -> None:
    async with EventBus.from_url("memory://") as bus, Gateway(bus, authorizer=authorizer) as gw:
        transport = httpx.ASGITransport(app=create_app(bus, gateway=gw))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            body = json.dumps(event(1))
            refused = await client.post("/publish", content=body, headers=CE)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            ok = await client.post("/publish", content=body, headers={**CE, **bearer("pub")})
            assert ok.status_code == 202
            assert (await client.get("/dlq/g", headers=bearer("admin"))).status_code == 404


async def test_the_ingest_remembers_a_bounded_number_of_ids() -> None:
    from eventpatterns.bff._ingest import IngestEndpoint

    async with EventBus.from_url("memory://") as bus:
        ingest = IngestEndpoint(bus, authorizer=None, contracts=None, max_body=4096, max_batch=3)
        ingest.remember = 2
        first = [(await ingest.publish(CE, json.dumps(event(n)).encode()))[1] for n in range(3)]
        forgotten = (await ingest.publish(CE, json.dumps(event(0)).encode()))[1]
        remembered = (await ingest.publish(CE, json.dumps(event(2)).encode()))[1]
        assert forgotten == first[0]  # the bus still dedupes; the endpoint forgot it
        assert remembered == {**first[2], "duplicate": True}
