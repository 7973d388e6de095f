"""``FileResult``: a job's bytes downloaded with their content type and a safe filename."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from starlette.applications import Starlette

from eventpatterns.backends.memory import MemoryBlobStore, MemoryJobStore
from eventpatterns.bus import EventBus
from eventpatterns.errors import ArgumentTypeError, ConfigurationError
from eventpatterns.jobs import (
    FileResult,
    Job,
    JobContext,
    JobTracker,
    ResultRef,
    URLSigner,
    content_disposition,
    safe_filename,
)
from eventpatterns.jobs._codec import job_from_json, job_to_json
from eventpatterns.jobs._files import MAX_FILENAME
from eventpatterns.jobs.asgi import blob_routes, routes
from eventpatterns.realtime import Credentials, Principal

pytestmark = pytest.mark.anyio

#: What a Content-Disposition of ours looks like (RFC 6266, RFC 8187's ``filename*``).
HEADER = re.compile(
    r'attachment; filename="([ -~]*)"(?:; filename\*=UTF-8\'\'([A-Za-z0-9!#$&+.^_`|~%-]+))?'
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Report(BaseModel):
    name: str
    kind: str = "file"


async def authorizer(credentials: Credentials) -> Principal:
    return Principal(credentials.token or "anonymous")


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    signer = URLSigner(b"s" * 32, base_url="http://test/blobs")
    blobs = MemoryBlobStore(signer=signer)
    async with EventBus.from_url("memory://") as bus:
        tracker = JobTracker(bus, MemoryJobStore(), blobs=blobs)

        @tracker.worker("report")
        async def report(ctx: JobContext[Report]) -> Any:
            if ctx.input.kind == "bytes":
                return b"raw"
            return FileResult(b"day,n\n1,2\n", content_type="text/csv", filename=ctx.input.name)

        async with tracker:
            app = Starlette(
                routes=[*routes(tracker, authorizer=authorizer), *blob_routes(blobs, signer)]
            )
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://test", headers={"authorization": "Bearer a"}
            ) as http:
                yield http


async def download(client: httpx.AsyncClient, data: dict[str, str]) -> httpx.Response:
    """Submit a report, wait for it, follow the result's 303; return the download."""
    answer = await client.post("/jobs/report", json=data)
    assert answer.status_code == 202, answer.text
    location = answer.headers["location"]
    with anyio.fail_after(10):
        job = (await client.get(location, params={"wait": 5})).json()
        while job["state"] != "succeeded":
            job = (await client.get(location, params={"wait": 5})).json()
    result = await client.get(f"{location}/result")
    assert result.status_code == 303
    return await client.get(result.headers["location"])


async def test_the_download_has_the_content_type_and_the_filename(
    client: httpx.AsyncClient,
) -> None:
    got = await download(client, {"name": "../../Q3 report.csv"})
    assert got.status_code == 200
    assert got.content == b"day,n\n1,2\n"
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == 'attachment; filename="Q3 report.csv"'
    assert got.headers["x-content-type-options"] == "nosniff"


async def test_a_non_ascii_filename_has_an_ascii_fallback_and_filename_star(
    client: httpx.AsyncClient,
) -> None:
    got = await download(client, {"name": "rapport-été.csv"})
    assert got.headers["content-disposition"] == (
        "attachment; filename=\"rapport-_t_.csv\"; filename*=UTF-8''rapport-%C3%A9t%C3%A9.csv"
    )


async def test_plain_bytes_have_no_filename(client: httpx.AsyncClient) -> None:
    got = await download(client, {"name": "x", "kind": "bytes"})
    assert got.content == b"raw"
    assert got.headers["content-type"] == "application/octet-stream"
    assert "content-disposition" not in got.headers


async def test_the_filename_is_signed(client: httpx.AsyncClient) -> None:
    answer = await client.post("/jobs/report", json={"name": "a.csv"})
    location = answer.headers["location"]
    with anyio.fail_after(10):
        while (await client.get(location, params={"wait": 5})).json()["state"] != "succeeded":
            pass
    url = urlsplit((await client.get(f"{location}/result")).headers["location"])
    query = dict(parse_qsl(url.query))
    assert query["filename"] == "a.csv"
    unnamed = {k: v for k, v in query.items() if k != "filename"}
    for changed in ({**query, "filename": "evil.exe"}, unnamed):
        forged = await client.get(f"{url.path}?{urlencode(changed)}")
        assert forged.status_code == 403


def test_file_results_check_their_fields() -> None:
    assert FileResult(bytearray(b"x")).data == b"x"  # type: ignore[arg-type]
    assert FileResult(b"x", content_type='text/plain; charset="utf-8"').content_type
    with pytest.raises(ArgumentTypeError, match="data"):
        FileResult("text")  # type: ignore[arg-type]
    for bad in ("csv", "text/csv\r\nX-Evil: 1", "text/", "a/b; c", "x" * 300 + "/y"):
        with pytest.raises(ConfigurationError, match="content_type"):
            FileResult(b"x", content_type=bad)
    with pytest.raises(ArgumentTypeError, match="filename"):
        FileResult(b"x", filename=3)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hostile", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\evil.bat", "evil.bat"),
        ('a"b;c%d\\e.txt', "e.txt"),
        ('q"uo;te%s.txt', "quotes.txt"),
        ("line\r\nbreak.txt", "linebreak.txt"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),  # no right-to-left override
        ("...hidden", "hidden"),
        ("  spaced   out  .csv", "spaced out .csv"),
        ("", "download"),
        ("/", "download"),
        ("\x00\x01", "download"),
        ("y" * 500 + ".csv", "y" * (MAX_FILENAME - 4) + ".csv"),
    ],
)
def test_hostile_filenames_are_sanitised(hostile: str, safe: str) -> None:
    assert safe_filename(hostile) == safe
    assert HEADER.fullmatch(content_disposition(hostile))


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=300))
def test_content_disposition_fuzz(name: str) -> None:
    """Any name: one Latin-1 header line, a safe name, and ``filename*`` decoding back to it."""
    safe = safe_filename(name)
    assert 1 <= len(safe) <= MAX_FILENAME
    assert not set(safe) & set('/\\";%\r\n\x00')
    assert not safe.startswith((".", " "))
    assert all(c == " " or c.isprintable() for c in safe)
    header = content_disposition(name)
    header.encode("latin-1")  # a header value the ASGI servers send as is
    found = HEADER.fullmatch(header)
    assert found is not None, header
    decoded = found[1] if found[2] is None else unquote(found[2], errors="strict")
    assert decoded == safe


def test_the_filename_survives_the_job_codec() -> None:
    job = Job.new("j1", "report", owner="ann", input={}, now=1.0)
    for ref in (ResultRef("k", 3, "text/csv", "r.csv"), ResultRef("k", 3, "text/csv")):
        stored = job_from_json(job_to_json(_with(job, ref)))
        assert stored.result_ref == ref


def _with(job: Job, ref: ResultRef) -> Job:
    import dataclasses

    return dataclasses.replace(job, result_ref=ref)
