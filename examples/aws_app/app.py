"""The same app on AWS: EventBridge + SQS for the bus, DynamoDB for jobs, S3 for results.

Run: python examples/aws_app/app.py                       (memory, in one process)
     EVENTPATTERNS_BACKEND='aws://?region=eu-west-1&endpoint_url=http://127.0.0.1:5000'\
'&prefix=shop&bucket=shop-invoices&create=true' python examples/aws_app/app.py
                                                           (moto_server or LocalStack)

A paid order (an event on the bus) starts an invoice job: the *invoicing* consumer group
(an EventBridge rule and an SQS queue) submits it, idempotently on the event id; a
worker renders the invoice into the blob store (S3) and the job record (DynamoDB) says
so. The customer finds the job over HTTP, long-polls it until it is done and downloads
the invoice: from ``/blobs`` on memory, from S3 by a presigned URL on AWS. Only the URL
knows which backend runs: ``stores_from_url`` builds the bus, the job store (the table
``{prefix}-jobs``) and the blob store (the URL's ``bucket``) from it. Without
``endpoint_url`` it talks to AWS itself (credentials from the usual places; ``create=true``
creates the table and bucket on first use, your infrastructure template in production).
"""

from __future__ import annotations

import os
import socket
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx
import uvicorn
from pydantic import BaseModel
from starlette.applications import Starlette

from eventpatterns import Event, EventBus
from eventpatterns.backends import stores_from_url
from eventpatterns.errors import AuthenticationFailed
from eventpatterns.jobs import FileResult, JobContext, JobTracker, URLSigner
from eventpatterns.jobs.asgi import blob_routes
from eventpatterns.jobs.asgi import routes as job_routes
from eventpatterns.realtime import Credentials, Principal


class Invoice(BaseModel):
    order: str
    lines: list[tuple[str, int]]


async def authorizer(credentials: Credentials) -> Principal:
    if not credentials.token:  # a demo: use JWTAuthorizer or APIKeyAuthorizer for real
        raise AuthenticationFailed("no token", reason="missing")
    return Principal(credentials.token)


async def customer(base: str) -> bytes:
    """What the customer's app does: find the invoice job, wait for it, download it."""
    async with httpx.AsyncClient(base_url=base, headers={"authorization": "Bearer cleo"}) as http:
        listed: list[dict[str, Any]] = []
        while not listed:  # the job appears once the order event has been handled
            listed = (await http.get("/jobs", params={"limit": 1})).json()["jobs"]
            await anyio.sleep(0.05)
        job, etag = listed[0], ""
        print(f"job {job['kind']}: {job['state']}")
        while job["state"] not in ("succeeded", "failed", "cancelled"):
            answer = await http.get(
                f"/jobs/{job['id']}", params={"wait": 5}, headers={"if-none-match": etag}
            )
            if answer.status_code == 200:  # 304: no change within the wait
                state, job, etag = job["state"], answer.json(), answer.headers["etag"]
                if job["state"] != state:
                    print(f"job {job['kind']}: {job['state']}")
        result = await http.get(f"/jobs/{job['id']}/result")
        where = urlsplit(result.headers["location"])
        print(f"{result.status_code} See Other: {where.netloc or 'this app'}{where.path}")
        invoice = await http.get(result.headers["location"])  # S3 or /blobs: the same code
        assert invoice.headers["content-disposition"].endswith('filename="invoice-o-77.txt"')
        return invoice.content


async def main() -> None:
    url = os.environ.get("EVENTPATTERNS_BACKEND", "memory://")
    signer = URLSigner(b"a secret of at least 32 bytes...", base_url="/blobs")  # memory's
    async with stores_from_url(url, signer=signer) as stores, EventBus(stores.bus) as bus:
        blobs = stores.blobs
        assert blobs is not None, "an aws:// URL needs a bucket=... for the invoices"
        tracker = JobTracker(bus, stores.jobs, blobs=blobs, inline_limit=0)  # all blobs

        @tracker.worker("invoice")
        async def render(ctx: JobContext[Invoice]) -> FileResult:
            lines = [f"{item:<20}{cents / 100:>10.2f}" for item, cents in ctx.input.lines]
            total = sum(cents for _, cents in ctx.input.lines) / 100
            text = "\n".join([f"INVOICE {ctx.input.order}", *lines, f"{'total':<20}{total:>10.2f}"])
            name = f"invoice-{ctx.input.order}.txt"  # downloaded as a file, S3 or /blobs
            return FileResult(text.encode(), content_type="text/plain", filename=name)

        async def invoicing(event: Event) -> None:
            data = {"order": event.data["order"], "lines": event.data["lines"]}
            await tracker.submit(
                "invoice", data, owner=event.data["customer"], idempotency_key=event.id
            )

        await bus.consume("invoicing", invoicing, pattern={"type": ["order.paid"]})
        routes = job_routes(tracker, authorizer=authorizer)
        if stores.backend == "memory":  # S3 presigns its own URLs: no /blobs route there
            routes += blob_routes(blobs, signer)
        app = Starlette(routes=routes)
        server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
        sock = socket.create_server(("127.0.0.1", 0))
        async with tracker, anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            order = {"order": "o-77", "customer": "cleo", "lines": [["tea", 450], ["scones", 300]]}
            await bus.publish(Event(type="order.paid", source="/shop", data=order))
            with anyio.fail_after(60):
                invoice = await customer(f"http://127.0.0.1:{sock.getsockname()[1]}")
            server.should_exit = True
    print(invoice.decode())
    assert invoice.decode().splitlines()[-1].split() == ["total", "7.50"]


if __name__ == "__main__":
    anyio.run(main)
