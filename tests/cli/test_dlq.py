"""``eventpatterns dlq`` on dead letters a real Redis bus made (``--bus``) and over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator

import anyio
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.bus import Retry
from eventpatterns.cli import main

from .conftest import ENV, ROOT, cli

pytestmark = pytest.mark.redis


def _dead_letters(url: str, group: str, n: int) -> list[str]:
    """Make ``n`` dead letters in ``group`` (a handler that always fails); their ids."""

    async def run() -> list[str]:
        async with EventBus.from_url(url) as bus:

            async def fail(event: Event) -> None:
                raise RuntimeError(f"cannot bill {event.data}")

            consumer = await bus.consume(group, fail, retry=Retry(max_attempts=1))
            await bus.publish_batch([Event(type="bill", source="/dlq", data=i) for i in range(n)])
            await consumer.drain()
            await consumer.aclose()
            return [letter.id for letter in await bus.dead_letters(group)]

    return anyio.run(run)


def _pending(url: str, group: str) -> int:
    async def run() -> int:
        async with EventBus.from_url(url) as bus:
            return (await bus.group_stats(group)).pending

    return anyio.run(run)


@pytest.fixture
def bus_url() -> str:
    return f"redis://127.0.0.1:6379/0?prefix=cli-dlq-{uuid.uuid4().hex}"


def test_list_show_redrive_discard(bus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _dead_letters(bus_url, "billing", 3)
    assert len(ids) == 3
    assert main(["dlq", "list", "billing", "--bus", bus_url]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "ATTEMPTS", "FAILED", "AT", "TYPE", "ERROR"]
    assert [row.split()[0] for row in table[1:]] == ids
    assert all("RuntimeError: cannot bill" in row for row in table[1:])
    assert main(["dlq", "show", "billing", ids[1], "--bus", bus_url]) == 0
    letter = json.loads(capsys.readouterr().out)
    assert (letter["id"], letter["attempts"], letter["event"]["data"]) == (ids[1], 1, 1)
    assert letter["error"] == "RuntimeError: cannot bill 1"
    assert main(["dlq", "redrive", "billing", ids[0], "--bus", bus_url]) == 0
    assert capsys.readouterr().out == "redrove 1 dead letter of 'billing'\n"
    assert _pending(bus_url, "billing") == 1  # delivered to the group again
    done = cli("dlq", "list", "billing", "--json", "--bus", bus_url)  # as a subprocess
    assert done.returncode == 0, done.stderr
    assert [x["id"] for x in json.loads(done.stdout)] == ids[1:]
    assert main(["dlq", "discard", "billing", "--all", "--bus", bus_url]) == 0
    assert capsys.readouterr().out == "discarded 2 dead letters of 'billing'\n"
    assert main(["dlq", "list", "billing", "--bus", bus_url]) == 0
    assert capsys.readouterr().out == "no dead letters\n"


def test_errors_exit_2(bus_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _dead_letters(bus_url, "billing", 1)
    cases = [
        (["list", "nowhere"], "consumer group 'nowhere' does not exist"),
        (["show", "billing", "0-0"], "0-0"),
        (["redrive", "billing"], "name the dead letters (their ids), or pass --all"),
        (["redrive", "billing", "1-0", "--all"], "not both"),
        (["redrive", "billing", "99-0"], "99-0"),
        (["list", "billing", "--limit", "0"], "--limit must be at least 1"),
    ]
    for args, message in cases:
        assert main(["dlq", *args, "--bus", bus_url]) == 2, args
        err = capsys.readouterr().err
        assert message in err, (args, err)
        assert err.count("\n") == 1
    assert main(["dlq", "discard", "billing", "--all", "--url", "http://127.0.0.1:1"]) == 2
    assert "cannot reach http://127.0.0.1:1/dlq/billing/discard" in capsys.readouterr().err


@pytest.fixture
def served_redis(bus_url: str) -> Iterator[str]:
    command = [sys.executable, "-m", "eventpatterns", "serve", "--port", "0", "--bus", bus_url]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=ENV, cwd=ROOT, text=True
    ) as process:
        assert process.stdout is not None
        urls: dict[str, str] = {}
        while "Publish" not in urls:
            name, _, url = process.stdout.readline().partition(":")
            assert name, "serve exited"
            urls[name] = url.strip()
        try:
            yield urls["Publish"].removeprefix("POST ").removesuffix("/publish")
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=20)


def test_over_http(bus_url: str, served_redis: str, capsys: pytest.CaptureFixture[str]) -> None:
    ids = _dead_letters(bus_url, "billing", 2)
    assert main(["dlq", "list", "billing", "--json", "--url", served_redis]) == 0
    assert [x["id"] for x in json.loads(capsys.readouterr().out)] == ids
    assert main(["dlq", "show", "billing", ids[0], "--url", served_redis]) == 0
    assert json.loads(capsys.readouterr().out)["id"] == ids[0]
    assert main(["dlq", "redrive", "billing", ids[0], "--url", served_redis]) == 0
    assert capsys.readouterr().out == "redrove 1 dead letter of 'billing'\n"
    assert main(["dlq", "redrive", "billing", "--all", "--url", served_redis]) == 0
    assert capsys.readouterr().out == "redrove 1 dead letter of 'billing'\n"
    assert main(["dlq", "show", "billing", ids[0], "--url", served_redis]) == 2
    assert "404" in capsys.readouterr().err
    more = _dead_letters(bus_url, "billing", 1)  # the consumer fails the redriven ones too
    assert len(more) > 1
    done = cli("dlq", "discard", "billing", *more, "--url", served_redis)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"discarded {len(more)} dead letters of 'billing'\n"
    assert main(["dlq", "list", "billing", "--url", served_redis]) == 0
    assert capsys.readouterr().out == "no dead letters\n"
