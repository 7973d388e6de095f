"""``eventpatterns serve`` as a subprocess: subscribe, publish over HTTP, SIGTERM closes 1001."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import Process
from websockets.asyncio.client import connect

from eventpatterns.cli import main
from realtime.sse_parser import Parser
from realtime.transport_helpers import close_code, recv_json, recv_until

pytestmark = pytest.mark.anyio

SRC = Path(__file__).resolve().parents[2] / "src"
SECRET = "a-test-secret-of-at-least-32-bytes!"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def served(*args: str) -> AsyncIterator[tuple[Process, dict[str, str]]]:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    command = [sys.executable, "-m", "eventpatterns.cli", "serve", "--port", "0", *args]
    async with await anyio.open_process(command, env=env) as process:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        buffer = b""
        with anyio.fail_after(30):
            while "OpenAPI" not in urls:  # the last line
                buffer += await process.stdout.receive()
                *lines, rest = buffer.split(b"\n")
                buffer = rest
                for line in lines:
                    name, _, url = line.decode().partition(":")
                    urls[name] = url.strip().removeprefix("POST ")
        try:
            yield process, urls
        finally:
            if process.returncode is None:
                process.kill()


def _event(n: int) -> bytes:
    return json.dumps(
        {"specversion": "1.0", "id": f"e{n}", "type": "t", "source": "/s", "data": {"n": n}}
    ).encode()


CE = {"content-type": "application/cloudevents+json"}


async def test_serve_open_mode_subscribe_publish_and_sigterm() -> None:
    async with served() as (process, urls), httpx.AsyncClient() as client:
        assert set(urls) == {"WebSocket", "SSE", "Publish", "Health", "Metrics", "OpenAPI"}
        ws = await connect(urls["WebSocket"])
        assert (await recv_json(ws))["principal"] == "anonymous"
        await ws.send('{"type":"subscribe","id":"s1","pattern":{"type":["t"]}}')
        await recv_until(ws, "subscribed")
        async with client.stream("GET", urls["SSE"]) as stream:
            assert stream.status_code == 200
            response = await client.post(urls["Publish"], content=_event(1), headers=CE)
            assert response.status_code == 202, response.text
            assert response.json()["id"] == "e1"
            event = await recv_until(ws, "event")
            assert event["event"]["data"] == {"n": 1}
            assert event["position"] == response.json()["position"]
            parser = Parser()
            with anyio.fail_after(10):
                async for chunk in stream.aiter_bytes():
                    parser.feed(chunk)
                    if any(m.type == "event" for m in parser.messages):
                        break
            message = next(m for m in parser.messages if m.type == "event")
            assert json.loads(message.data)["data"] == {"n": 1}
            bad = await client.post(urls["Publish"], content=b"{", headers=CE)
            assert bad.status_code == 400
            assert bad.headers["content-type"] == "application/problem+json"
        process.send_signal(signal.SIGTERM)
        assert await close_code(ws) == 1001
        with anyio.fail_after(15):
            assert await process.wait() == 0


async def test_serve_announces_health_and_openapi_of_the_composed_app() -> None:
    from openapi_spec_validator import validate

    async with served("--backend", "memory://") as (process, urls), httpx.AsyncClient() as client:
        health = await client.get(urls["Health"])
        assert health.json() == {"status": "ok", "components": {"bus": "ok", "gateway": "ok"}}
        document = (await client.get(urls["OpenAPI"])).json()
        validate(document)
        assert {"/publish", "/events", "/healthz", "/dlq/{group}"} <= set(document["paths"])
        missing = await client.get(urls["Health"].replace("/healthz", "/dlq/nobody"))
        assert missing.status_code == 404  # the open mode admits this loopback client
        # /metrics counts what this server did: four publishes, one of them a repeated id
        # (the log holds it once; the counter counts calls).
        for n in (1, 2, 3, 3):
            event = {"specversion": "1.0", "id": f"e{n}", "type": "t", "source": "/s"}
            assert (await client.post(urls["Publish"], json=event, headers=CE)).status_code == 202
        text = (await client.get(urls["Metrics"])).text
        assert "eventpatterns_bus_published_total 4.0" in text.splitlines()
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0


def _token(sub: str, scope: str) -> str:
    import jwt

    claims = {"sub": sub, "scope": scope, "exp": int(time.time()) + 600}
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def test_serve_with_jwt_needs_the_publish_scope(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    async with (
        served("--jwt-secret", f"@{secret_file}") as (process, urls),
        httpx.AsyncClient() as client,
    ):
        reader = _token("alice", "read")
        publisher = _token("svc", "publish")
        async with connect(urls["WebSocket"] + f"?token={reader}") as ws:
            assert (await recv_json(ws))["principal"] == "alice"
            await ws.send('{"type":"subscribe","id":"s1"}')
            await recv_until(ws, "subscribed")
            no_token = await client.post(urls["Publish"], content=_event(1), headers=CE)
            assert no_token.status_code == 401
            headers = {**CE, "authorization": f"Bearer {reader}"}
            no_scope = await client.post(urls["Publish"], content=_event(1), headers=headers)
            assert no_scope.status_code == 403
            headers = {**CE, "authorization": f"Bearer {publisher}"}
            ok = await client.post(urls["Publish"], content=_event(2), headers=headers)
            assert ok.status_code == 202
            assert (await recv_until(ws, "event"))["event"]["data"] == {"n": 2}
        sse = await client.get(urls["SSE"])
        assert sse.status_code == 401
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(15):
            assert await process.wait() == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "not a loopback address"),
        (["--jwks-url", "https://example.com/jwks"], "--issuer"),
        (["--jwt-secret", "short"], "32"),
        (["--jwt-secret", SECRET, "--allow-anonymous"], "open mode"),
        (["--bus", "carrier-pigeon://"], "unknown bus URL scheme"),
        (["--backend", "carrier-pigeon://"], "unknown bus URL scheme"),
        (["--backend", "aws://?jobs_table=x", "--jobs", "m:f"], "jobs_table='x'"),
        (["--backend", "redis://127.0.0.1?default_ttl=-1", "--jobs", "m:f"], "default_ttl"),
        (["--port", "70000"], "0-65535"),
        (["--api-key-file", "/nonexistent/keys.json"], "cannot read"),
        (["--max-frame-bytes", "0"], "--max-frame-bytes must be at least 1, not 0"),
        (["--max-subscriptions", "1.5"], "--max-subscriptions must be a whole number"),
        (["--max-connections-per-principal", "-3"], "--max-connections-per-principal must"),
        (["--rate-burst", "many"], "--rate-burst must be a whole number, not 'many'"),
        (["--max-frame-bytes", "512", "--rate", "fast"], "--rate must be a number"),
        (["--auth-timeout", "0"], "--auth-timeout must be a positive number"),
        (["--auth-timeout", "nan"], "--auth-timeout must be a positive number"),
        (["--rate", "inf"], "--rate must be a positive number"),
    ],
)
def test_serve_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventpatterns serve: error:")
    assert err.count("\n") == 1  # one line
    assert message in err


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A port bound here but not listening: a connection to it is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize("scheme", ["redis", "aws"])
def test_a_backend_that_cannot_start_is_one_line(
    scheme: str,
    refused_port: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The error comes out of the bus's task group, as an exception group.
    if scheme == "redis":
        url, message = f"redis://127.0.0.1:{refused_port}/0", "Redis is unavailable"
    else:
        pytest.importorskip("aiobotocore")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        url = f"aws://?region=eu-west-1&endpoint_url=http://127.0.0.1:{refused_port}"
        message = "cannot reach the endpoint"
    assert main(["serve", "--port", "0", "--backend", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventpatterns serve: error:")
    assert err.count("\n") == 1
    assert message in err


def test_aws_without_aiobotocore_is_one_line_naming_the_extra() -> None:
    # An interpreter where aiobotocore cannot be imported (as after pip install '.[server]').
    program = (
        "import sys\n"
        "for name in ('aiobotocore', 'aiobotocore.config', 'aiobotocore.session'):\n"
        "    sys.modules[name] = None\n"
        "from eventpatterns.cli import main\n"
        "sys.exit(main(['serve', '--port', '0', '--backend', 'aws://?region=eu-west-1']))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC), "AWS_EC2_METADATA_DISABLED": "true"},
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "eventpatterns serve: error: 'aiobotocore' is not installed; install it with:"
        " pip install 'eventpatterns[aws]'"
    )
    assert "Traceback" not in result.stderr


def test_serve_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "eventpatterns.cli", "serve", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        timeout=30,
    )
    assert result.returncode == 0
    for option in (
        "--backend",
        "--bus",
        "--api-key-file",
        "--jwt-secret",
        "--jwks-url",
        "--allow-anonymous",
    ):
        assert option in result.stdout
    for option in ("--max-frame-bytes", "--max-subscriptions", "--max-connections-per-principal"):
        assert option in result.stdout
    for option in ("--rate", "--rate-burst", "--auth-timeout"):
        assert option in result.stdout


async def test_serve_limit_options_reach_the_gateway(tmp_path: Path) -> None:
    from websockets.exceptions import InvalidStatus

    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    limits = ["--max-frame-bytes", "512", "--max-subscriptions", "1"]
    limits += ["--max-connections-per-principal", "1", "--auth-timeout", "0.5"]
    async with served("--jwt-secret", f"@{secret_file}", *limits) as (process, urls):
        url = urls["WebSocket"]
        async with connect(url) as silent:  # never authenticates
            assert await close_code(silent, within=5) == 4408
        async with connect(url + f"?token={_token('alice', 'read')}") as ws:
            assert (await recv_json(ws))["type"] == "connected"
            with pytest.raises(InvalidStatus) as refused:  # a second connection of alice
                async with connect(url + f"?token={_token('alice', 'read')}"):
                    pass  # pragma: no cover - the handshake must fail
            assert refused.value.response.status_code == 429
            await ws.send('{"type":"subscribe","id":"s1"}')
            await recv_until(ws, "subscribed")
            await ws.send('{"type":"subscribe","id":"s2"}')
            assert (await recv_until(ws, "error"))["code"] == "too_many_subscriptions"
            await ws.send(json.dumps({"type": "ping", "payload": "x" * 600}))
            assert await close_code(ws) == 1009
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0


@pytest.mark.redis
async def test_serve_on_redis_delivers_what_another_process_publishes() -> None:
    import uuid

    from eventpatterns import Event, EventBus

    url = f"redis://127.0.0.1:6379/0?prefix=test-serve-{uuid.uuid4().hex[:8]}&max_entries=100"
    async with served("--bus", url) as (process, urls):
        async with connect(urls["WebSocket"]) as ws:
            await recv_json(ws)
            await ws.send('{"type":"subscribe","id":"s1","pattern":{"type":["t"]}}')
            await recv_until(ws, "subscribed")
            # This test is the other process: it publishes straight to the Redis bus.
            async with EventBus.from_url(url) as bus:
                await bus.publish(Event(type="t", source="/other", data={"n": 9}))
            assert (await recv_until(ws, "event", within=10))["event"]["data"] == {"n": 9}
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0
