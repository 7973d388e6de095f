"""A long-running report: submit over HTTP, watch its progress live, download the result.

Run: python examples/report_job/app.py            (the scripted scenario)
     python examples/report_job/app.py --serve    (then open the URL it prints;
                                                   $PORT picks another port than 8000)

``POST /jobs/report`` answers ``202 Accepted`` with a ``Location``; a worker builds the
report, reporting progress; every change is an event the gateway pushes to the job's
owner; ``GET /jobs/{id}/result`` redirects (``303``) to a signed download URL. Set
``EVENTPATTERNS_BACKEND=redis://127.0.0.1:6379/0`` for the bus and the job store on Redis, or
an ``aws://`` URL with ``bucket=`` (README.md) for EventBridge, SQS, DynamoDB and S3.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import websockets
from pydantic import BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.routing import Route

from eventpatterns import EventBus
from eventpatterns.backends import Stores, stores_from_url
from eventpatterns.backends.memory import MemoryBlobStore
from eventpatterns.bff.asgi import served
from eventpatterns.errors import AuthenticationFailed
from eventpatterns.jobs import (
    JOB_EVENT_PREFIX,
    OWNER_ATTRIBUTE,
    FileResult,
    JobContext,
    JobTracker,
    URLSigner,
)
from eventpatterns.jobs.asgi import blob_routes
from eventpatterns.jobs.asgi import routes as job_routes
from eventpatterns.realtime import Credentials, Gateway, Principal, owner_only
from eventpatterns.realtime.asgi import routes as realtime_routes

PAGE = Path(__file__).with_name("index.html")
ALICE = {"authorization": "Bearer alice"}


class Report(BaseModel):
    month: int = Field(ge=1, le=12)
    rows: int = Field(ge=1, le=100_000)


async def authorizer(credentials: Credentials) -> Principal:
    if not credentials.token:  # a demo: use JWTAuthorizer or APIKeyAuthorizer for real
        raise AuthenticationFailed("no token", reason="missing")
    return Principal(credentials.token)


SIGNER = URLSigner(b"a secret of at least 32 bytes...", base_url="/blobs")


def build(bus: EventBus, stores: Stores, *, step: float) -> tuple[JobTracker, Gateway, Starlette]:
    # The job store beside the bus (memory, or the bus's Redis and prefix); Redis has no
    # blob store: the results stay in memory here (FileBlobStore or S3BlobStore for real).
    blobs = stores.blobs or MemoryBlobStore(signer=SIGNER)
    tracker = JobTracker(bus, stores.jobs, blobs=blobs)

    @tracker.worker("report", timeout=600)
    async def build_report(ctx: JobContext[Report]) -> FileResult:
        lines = ["day,orders,revenue"]
        for row in range(ctx.input.rows):
            lines.append(f"{ctx.input.month:02}-{row % 28 + 1:02},{row % 7 + 1},{row * 3 % 101}")
            if (row + 1) % (ctx.input.rows // 4) == 0:  # a quarter done
                await anyio.sleep(step)
                await ctx.progress((row + 1) / ctx.input.rows, f"{row + 1} rows")
        data = "\n".join(lines).encode()  # bytes: stored as a blob, downloaded by URL
        return FileResult(
            data, content_type="text/csv", filename=f"report-{ctx.input.month:02}.csv"
        )

    hook = owner_only(OWNER_ATTRIBUTE)  # each user sees only their own jobs
    gateway = Gateway(bus, authorizer=authorizer, authorize_subscription=hook)

    async def page(request: Request) -> FileResponse:
        return FileResponse(PAGE)

    routes = [Route("/", page), *job_routes(tracker, authorizer=authorizer)]
    routes += [*blob_routes(blobs, SIGNER), *realtime_routes(gateway)]
    return tracker, gateway, Starlette(routes=routes)


async def use(base: str) -> None:
    """What the page does: subscribe to my jobs, submit, show progress, download."""
    async with (
        websockets.connect(f"ws://{base}/ws?token=alice") as ws,
        httpx.AsyncClient(base_url=f"http://{base}", headers=ALICE) as http,
    ):
        await ws.recv()  # connected
        mine = {"type": [{"prefix": JOB_EVENT_PREFIX}]}
        await ws.send(json.dumps({"type": "subscribe", "id": "jobs", "pattern": mine}))
        await ws.recv()  # subscribed
        answer = await http.post("/jobs/report", json={"month": 5, "rows": 1000})
        print(answer.status_code, "Accepted, Location:", answer.headers["location"])
        states: list[str] = []
        while not states or states[-1] not in ("succeeded", "failed", "cancelled"):
            job = json.loads(await ws.recv())["event"]["data"]
            bar = "#" * round(job["progress"]["fraction"] * 20)
            print(f"[{bar:<20}] {job['state']:<9} {job['progress']['message'] or ''}")
            states.append(job["state"])
        assert states[-1] == "succeeded", states
        result = await http.get(f"{answer.headers['location']}/result")
        print(result.status_code, "See Other: the download link")
        download = await http.get(result.headers["location"])
        rows = download.text.splitlines()
        saved_as = download.headers["content-disposition"].split("filename=")[1]  # a FileResult's
        size, kind = len(download.content), download.headers["content-type"].split(";")[0]
        print(
            f"downloaded {saved_as} ({kind}, {size} bytes): {rows[0]!r}, then {len(rows) - 1} rows"
        )
        assert rows[0] == "day,orders,revenue"
        assert len(rows) == 1001


async def serve(app: Starlette, scenario: Callable[[str], Awaitable[None]] | None) -> None:
    """Serve ``app`` on 127.0.0.1; run ``scenario("host:port")`` and stop, or (None) forever."""
    port = 0 if scenario else int(os.environ.get("PORT", "8000"))
    async with served(app, port=port) as where:
        base = f"127.0.0.1:{where.port}"
        if scenario is None:
            print(f"open http://{base}/?token=alice")
            await anyio.sleep_forever()
        else:
            with anyio.fail_after(20):
                await scenario(base)


async def main(serve_forever: bool = False) -> None:
    url = os.environ.get("EVENTPATTERNS_BACKEND", "memory://")
    async with stores_from_url(url, signer=SIGNER) as stores, EventBus(stores.bus) as bus:
        tracker, gateway, app = build(bus, stores, step=1.0 if serve_forever else 0.0)
        async with tracker, gateway:
            await serve(app, None if serve_forever else use)


if __name__ == "__main__":
    anyio.run(main, "--serve" in sys.argv)
