"""``eventpatterns serve --jobs``: the jobs' HTTP routes beside the gateway, on one port."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest
from anyio.abc import Process

from eventpatterns.cli import main

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def served(*args: str) -> AsyncIterator[tuple[Process, dict[str, str]]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    command = [sys.executable, "-m", "eventpatterns.cli", "serve", "--port", "0", *args]
    async with await anyio.open_process(command, env=env, cwd=ROOT) as process:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        buffer = b""
        with anyio.fail_after(30):
            while "Jobs" not in urls:
                buffer += await process.stdout.receive()
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    name, _, url = line.decode().partition(":")
                    urls[name] = url.strip().removeprefix("POST ")
        try:
            yield process, urls
        finally:
            if process.returncode is None:
                process.kill()


async def test_serve_runs_the_jobs_of_the_setup_function(tmp_path: Path) -> None:
    args = ["--jobs", "tests.jobs.serve_app:setup", "--blobs", str(tmp_path)]
    async with served(*args) as (process, urls), httpx.AsyncClient() as client:
        jobs = urls["Jobs"]
        assert jobs.endswith("/jobs")
        answer = await client.post(f"{jobs}/echo", json={"text": "hi"})
        assert answer.status_code == 202, answer.text
        location = jobs.removesuffix("/jobs") + answer.headers["location"]
        done = await client.get(location, params={"wait": "10"})
        while done.json()["state"] != "succeeded":
            done = await client.get(
                location, params={"wait": "10"}, headers={"if-none-match": done.headers["etag"]}
            )
        assert done.json()["owner"] == "anonymous"  # the open mode
        result = await client.get(f"{location}/result")
        assert result.json() == {"text": "hi"}
        big = await client.post(f"{jobs}/echo", json={"text": "x", "big": True})
        big_location = jobs.removesuffix("/jobs") + big.headers["location"]
        with anyio.fail_after(20):
            while (await client.get(big_location)).json()["state"] != "succeeded":
                await client.get(big_location, params={"wait": "5"})
        result = await client.get(f"{big_location}/result")
        assert result.status_code == 303  # See Other: the signed blob URL
        moved = await client.get(result.headers["location"])
        assert moved.json() == {"text": "x" * 70_000}
        files = await anyio.to_thread.run_sync(lambda: list(tmp_path.rglob("*.blob")))
        assert len(files) == 1  # from the blob files under --blobs
        invalid = await client.post(f"{jobs}/echo", json={"text": 1})
        assert invalid.status_code == 422
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-colon", "MODULE:FUNCTION"),
        ("tests.jobs.no_such_module:setup", "cannot load"),
        ("tests.jobs.serve_app:NOT_A_FUNCTION", "is not a function"),
        ("tests.jobs.serve_app:registers_nothing", "registered no job kind"),
        ("tests.jobs.serve_app:raises", "no database configured"),
    ],
)
def test_a_bad_jobs_option_is_one_line_and_status_2(
    spec: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--port", "0", "--jobs", spec]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventpatterns serve: error:")
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_serve_jobs_builds_a_store_for_the_bus_and_routes(backend: str) -> None:
    from eventpatterns.realtime import Credentials, Principal

    async def everyone(credentials: Credentials) -> Principal:
        return Principal("u1")

    prefix = f"serve-jobs-{uuid.uuid4().hex[:12]}"
    bus_url = "memory://" if backend == "memory" else f"redis://127.0.0.1:6379/0?prefix={prefix}"
    try:
        await _roundtrip(bus_url, everyone)
    finally:
        if backend == "redis":
            import redis.asyncio

            client = redis.asyncio.Redis()
            keys = [key async for key in client.scan_iter(match=f"*{prefix}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


async def _roundtrip(bus_url: str, everyone: Any) -> None:
    from starlette.applications import Starlette

    from eventpatterns import EventBus
    from eventpatterns.jobs._serve import serve_jobs

    async with EventBus.from_url(bus_url) as bus:
        jobs = serve_jobs(
            "tests.jobs.serve_app:setup", bus, bus_url=bus_url, authorizer=everyone,
            base_url="http://test",
        )  # fmt: skip
        async with jobs as routes:
            transport = httpx.ASGITransport(app=Starlette(routes=routes))
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                answer = await http.post("/jobs/echo", json={"text": "ok"})
                assert answer.status_code == 202
                done = await http.get(answer.headers["location"], params={"wait": "10"})
                while done.json()["state"] != "succeeded":
                    done = await http.get(
                        answer.headers["location"],
                        params={"wait": "10"},
                        headers={"if-none-match": done.headers["etag"]},
                    )
                assert done.json()["owner"] == "u1"


@pytest.mark.parametrize("query", ["", "&outbox=false"], ids=["default", "opted-out"])
async def test_serve_on_redis_uses_the_store_outbox_unless_the_url_opts_out(query: str) -> None:
    from eventpatterns import EventBus
    from eventpatterns.backends.redis import RedisJobStore
    from eventpatterns.jobs._serve import running_jobs

    prefix = f"serve-outbox-{uuid.uuid4().hex[:12]}"
    url = f"redis://127.0.0.1:6379/0?prefix={prefix}{query}"
    setup = "tests.jobs.serve_app:setup"
    try:
        async with (
            EventBus.from_url(url) as bus,
            running_jobs(setup, bus, bus_url=url, base_url="http://h") as run,
        ):
            store = run.tracker.store
            assert isinstance(store, RedisJobStore)
            assert (store.outbox is bus.backend) is (query == "")
            assert (run.tracker.ops._outbox is not None) is (query == "")
            job = await run.tracker.submit("echo", {"text": "hi"}, owner="ann")
            assert (await run.tracker.wait(job.id, timeout=30)).state.value == "succeeded"
    finally:
        import redis.asyncio

        client = redis.asyncio.Redis()
        keys = [key async for key in client.scan_iter(match=f"*{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()
