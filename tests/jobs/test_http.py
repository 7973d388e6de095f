"""The jobs' HTTP routes: async request-reply over a real tracker, workers and stores."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field
from starlette.applications import Starlette

from eventpatterns.backends.memory import MemoryBlobStore, MemoryJobStore
from eventpatterns.bus import EventBus
from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.jobs import JobContext, JobTracker, URLSigner
from eventpatterns.jobs.asgi import blob_routes, routes
from eventpatterns.realtime import Credentials, Principal

pytestmark = pytest.mark.anyio

TOKENS = {"alice-token": "alice", "bob-token": "bob"}
ALICE = {"authorization": "Bearer alice-token"}
BOB = {"authorization": "Bearer bob-token"}


async def authorizer(credentials: Credentials) -> Principal:
    owner = TOKENS.get(credentials.token or "")
    if owner is None:
        raise AuthenticationFailed("unknown token", reason="invalid")
    return Principal(owner)


class Render(BaseModel):
    frames: int = Field(ge=1, le=10_000)
    big: bool = False


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    gate = anyio.Event()
    signer = URLSigner(b"s" * 32, base_url="http://test/blobs")
    blobs = MemoryBlobStore(signer=signer)
    async with EventBus.from_url("memory://") as bus:
        tracker = JobTracker(bus, MemoryJobStore(), blobs=blobs, inline_limit=1024)

        @tracker.worker("render")
        async def render(ctx: JobContext[Render]) -> Any:
            await ctx.progress(0.5, "halfway")
            if ctx.input.big:
                return {"frames": ["x" * 100] * ctx.input.frames}
            return {"frames": ctx.input.frames}

        @tracker.worker("slow")
        async def slow(ctx: JobContext[Render]) -> Any:
            await gate.wait()
            return "late"

        tracker.declare("elsewhere", Render)
        async with tracker:
            app = Starlette(
                routes=[*routes(tracker, authorizer=authorizer), *blob_routes(blobs, signer)]
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                http.gate = gate  # type: ignore[attr-defined]
                yield http
            gate.set()


async def finished(client: httpx.AsyncClient, location: str) -> httpx.Response:
    answer = await client.get(location, headers=ALICE)
    for _ in range(50):
        if answer.json()["state"] in ("succeeded", "failed", "cancelled"):
            return answer
        tag = answer.headers["etag"]
        answer = await client.get(
            location, params={"wait": "5"}, headers={**ALICE, "if-none-match": tag}
        )
    raise AssertionError(f"job did not finish: {answer.json()}")


async def test_submit_answers_202_then_status_etag_304_and_the_result(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post("/jobs/render", json={"frames": 24}, headers=ALICE)
    assert answer.status_code == 202
    location = answer.headers["location"]
    assert location == f"/jobs/{answer.json()['id']}"
    assert int(answer.headers["retry-after"]) >= 0
    assert answer.json()["state"] == "pending"
    done = await finished(client, location)
    assert done.status_code == 200
    body = done.json()
    assert (body["state"], body["owner"], body["progress"]["fraction"]) == (
        "succeeded",
        "alice",
        1.0,
    )
    assert "input" not in body
    assert body["links"]["result"] == f"{location}/result"
    same = await client.get(location, headers={**ALICE, "if-none-match": done.headers["etag"]})
    assert same.status_code == 304
    assert same.content == b""
    result = await client.get(f"{location}/result", headers=ALICE)
    assert result.json() == {"frames": 24}


async def test_a_large_result_is_a_303_to_a_signed_blob_url(client: httpx.AsyncClient) -> None:
    answer = await client.post("/jobs/render", json={"frames": 50, "big": True}, headers=ALICE)
    location = answer.headers["location"]
    await finished(client, location)
    result = await client.get(f"{location}/result", headers=ALICE)
    assert result.status_code == 303
    blob_url = result.headers["location"]
    assert blob_url.startswith("http://test/blobs/")
    blob = await client.get(blob_url)
    assert blob.status_code == 200
    assert json.loads(blob.content) == {"frames": ["x" * 100] * 50}
    forged = await client.get(blob_url.replace("signature=", "signature=0"))
    assert forged.status_code == 403
    assert forged.headers["content-type"] == "application/problem+json"


async def test_another_users_job_is_a_404_everywhere(client: httpx.AsyncClient) -> None:
    answer = await client.post("/jobs/render", json={"frames": 1}, headers=ALICE)
    location = answer.headers["location"]
    for method, path in (("GET", location), ("GET", f"{location}/result"), ("DELETE", location)):
        theirs = await client.request(method, path, headers=BOB)
        assert theirs.status_code == 404, (method, path)
        assert theirs.json()["status"] == 404
    assert (await client.get("/jobs", headers=BOB)).json()["jobs"] == []
    mine = (await client.get("/jobs", headers=ALICE)).json()["jobs"]
    assert [job["id"] for job in mine] == [answer.json()["id"]]


async def test_the_idempotency_key_returns_the_same_job(client: httpx.AsyncClient) -> None:
    headers = {**ALICE, "idempotency-key": "order-7"}
    one = await client.post("/jobs/render", json={"frames": 2}, headers=headers)
    two = await client.post("/jobs/render", json={"frames": 2}, headers=headers)
    assert one.status_code == two.status_code == 202
    assert one.headers["location"] == two.headers["location"]
    for key in ("é".encode() * 9, b"x" * 300, b"tab\there"):
        bad = await client.post(
            "/jobs/render",
            json={"frames": 2},
            headers=[(b"authorization", b"Bearer alice-token"), (b"idempotency-key", key)],
        )
        assert bad.status_code == 400, key
        assert "idempotency" in bad.json()["detail"]


async def test_cancel_a_pending_job_and_a_running_one(client: httpx.AsyncClient) -> None:
    running = await client.post("/jobs/slow", json={"frames": 1}, headers=ALICE)
    location = running.headers["location"]
    state, tag = "pending", running.headers["etag"]
    with anyio.fail_after(10):
        while state != "running":  # long polls: each returns when the job changed
            answer = await client.get(
                location, params={"wait": "5"}, headers={**ALICE, "if-none-match": tag}
            )
            if answer.status_code == 200:
                state, tag = answer.json()["state"], answer.headers["etag"]
    answer = await client.delete(location, headers=ALICE)
    assert answer.status_code == 202
    assert answer.json()["cancel_requested"] is True
    done = await finished(client, location)
    assert done.json()["state"] == "cancelled"
    queued = await client.post("/jobs/elsewhere", json={"frames": 1}, headers=ALICE)
    gone = await client.delete(queued.headers["location"], headers=ALICE)
    assert (gone.status_code, gone.json()["state"]) == (200, "cancelled")
    result = await client.get(f"{queued.headers['location']}/result", headers=ALICE)
    assert (result.status_code, result.json()["state"]) == (409, "cancelled")


async def test_listing_is_paginated_and_filtered(client: httpx.AsyncClient) -> None:
    for frames in range(1, 6):
        await client.post("/jobs/elsewhere", json={"frames": frames}, headers=ALICE)
    first = await client.get("/jobs", params={"limit": "2", "state": "pending"}, headers=ALICE)
    body = first.json()
    assert len(body["jobs"]) == 2
    assert first.headers["link"] == f'<{body["next"]}>; rel="next"'
    seen = [job["id"] for job in body["jobs"]]
    while body["next"]:
        body = (await client.get(body["next"], headers=ALICE)).json()
        seen += [job["id"] for job in body["jobs"]]
    assert len(seen) == len(set(seen)) == 5
    for params in ({"state": "nope"}, {"limit": "x"}, {"limit": "0"}, {"cursor": "forged"}):
        bad = await client.get("/jobs", params=params, headers=ALICE)
        assert bad.status_code == 400, params
        assert bad.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("path", "content", "headers", "status", "says"),
    [
        ("/jobs/nope", b"{}", {}, 404, "unknown job kind 'nope'"),
        ("/jobs/render", b'{"frames": 0}', {}, 422, "frames"),
        ("/jobs/render", b"{not json", {}, 400, "not JSON"),
        ("/jobs/render", b"[" * 600_000 + b"]" * 600_000, {}, 413, "over"),
        ("/jobs/render", b"[" * 5000 + b"]" * 5000, {}, 400, "nested too deeply"),
        ("/jobs/render", b'{"frames": "\xff"}', {}, 400, "not UTF-8"),
        (
            "/jobs/render",
            b"frames=1",
            {"content-type": "application/x-www-form-urlencoded"},
            415,
            "application/json",
        ),
        ("/jobs/render", b'{"frames": 1' + b"1" * 5000 + b"}", {}, 400, "not JSON"),
    ],
)
async def test_bad_requests_get_a_problem_naming_what_is_wrong(
    client: httpx.AsyncClient,
    path: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
    says: str,
) -> None:
    answer = await client.post(
        path, content=content, headers={**ALICE, "content-type": "application/json", **headers}
    )
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == status
    assert says in problem["detail"]
    if status == 422:
        assert problem["errors"][0]["loc"] == ["frames"]
    assert (await client.get("/jobs", headers=ALICE)).json()["jobs"] == []  # nothing written


async def test_no_or_bad_credentials_are_a_401_naming_the_scheme(client: httpx.AsyncClient) -> None:
    for headers in ({}, {"authorization": "Bearer nope"}):
        answer = await client.post("/jobs/render", json={"frames": 1}, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_bad_long_poll_is_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post("/jobs/elsewhere", json={"frames": 1}, headers=ALICE)
    for wait in ("-1", "nan", "soon"):
        bad = await client.get(answer.headers["location"], params={"wait": wait}, headers=ALICE)
        assert bad.status_code == 400


def test_bad_route_options_are_refused() -> None:
    for kwargs in ({"prefix": "jobs"}, {"retry_after": -1}, {"max_wait": -1.0}, {"max_body": 0}):
        with pytest.raises(ConfigurationError):
            routes(None, authorizer=authorizer, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.binary(max_size=300) | st.text(max_size=200).map(str.encode))
async def test_random_bodies_never_crash_the_route(client: httpx.AsyncClient, body: bytes) -> None:
    answer = await client.post(
        "/jobs/render", content=body, headers={**ALICE, "content-type": "application/json"}
    )
    assert answer.status_code in (202, 400, 413, 415, 422)


async def test_non_ascii_digits_in_a_length_or_limit_are_a_400_not_a_crash(
    client: httpx.AsyncClient,
) -> None:
    bad = await client.get("/jobs", params={"limit": "¹"}, headers=ALICE)
    assert bad.status_code == 400
    answer = await client.post(
        "/jobs/render",
        content=b'{"frames": 1}',
        headers=[
            (b"authorization", b"Bearer alice-token"),
            (b"content-type", b"application/json"),
            (b"content-length", "¹".encode()),
        ],
    )
    assert answer.status_code in (202, 400)
