"""Every app of the examples gallery (``examples/<name>/app.py``) runs and shows what it should.

Each runs as a user would run it (``python examples/<name>/app.py``, a subprocess with a
timeout) on the memory backend, and again on the real Redis (all but ``aws_app``)
(``EVENTPATTERNS_BACKEND=redis://...`` with a prefix of the test's own). The apps check
themselves (an ``assert`` fails the process); these tests read what they print, in order.
Every app on moto_server is in ``tests/backends/aws/test_aws_app_example.py``, the web
pages in Chromium in ``tests/test_examples_browser.py``; the apps' types are checked by
``tests/test_docs.py``.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
APPS = sorted(path.parent.name for path in (ROOT / "examples").glob("*/app.py"))
REDIS_URL = os.environ.get("EVENTPATTERNS_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def run_app(name: str, backend: str | None = None, *, timeout: float = 60) -> list[str]:
    """Run ``examples/<name>/app.py``; return its output lines (it must exit with 0)."""
    env = dict(os.environ)
    env.pop("EVENTPATTERNS_BACKEND", None)
    if backend is not None:
        env["EVENTPATTERNS_BACKEND"] = backend
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / name / "app.py")],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def check_order_status(lines: list[str]) -> None:
    seen: dict[tuple[str, str], list[str]] = {}
    for line in lines:
        found = re.fullmatch(r"(\w+)'s page: order (o-\w+) is (\w+)", line)
        if found:
            seen.setdefault((found[1], found[2]), []).append(found[3])
    assert sorted(user for user, _ in seen) == ["alice", "bob", "bob"]
    assert all(states == ["placed", "paid", "shipped", "delivered"] for states in seen.values())
    assert lines[-1] == "every customer saw only their own orders, in order"


def check_report_job(lines: list[str]) -> None:
    assert re.fullmatch(r"202 Accepted, Location: /jobs/[\w-]+", lines[0])
    bars = [line for line in lines if line.startswith("[")]
    states = [line[23:].split()[0] for line in bars]
    assert states[0] == "pending"
    assert states[-1] == "succeeded"
    fractions = [line[1:21].count("#") for line in bars]
    assert fractions == sorted(fractions)
    assert fractions[-1] == 20  # progress only moves forward, to the end
    assert "[#####               ] running   250 rows" in bars
    assert lines[-2:] == [
        "303 See Other: the download link",
        "downloaded \"report-05.csv\" (text/csv, 10928 bytes): 'day,orders,revenue',"
        " then 1000 rows",
    ]


def check_chat(lines: list[str]) -> None:
    ann = [line.split(": ", 1)[1] for line in lines if line.startswith("  ann sees  bob: ")]
    assert ann == ["hi ann", "are you there?", "call me back"]  # no gap, no duplicate
    assert "  bob sees  here: ['bob']" in lines  # ann's drop was seen as a leave
    drop = lines.index("ann's network drops")
    assert any(re.fullmatch(r"ann reconnects and resumes after \S+:\S+", line) for line in lines)
    assert lines[drop + 1 :].count("  bob sees  here: ['ann', 'bob']") >= 1
    assert lines[-2:] == [
        "  bob sees  here: ['ann', 'bob']",
        "ann missed nothing and saw nothing twice",
    ]


def check_push_offline(lines: list[str]) -> None:
    assert lines == [
        "order 1 -> carol: inapp []",
        "order 2 -> dave: push ['delivered']",
        "order 3 -> erin: push ['held']",
        "carol's app shows: Shipped: Order 1 is on its way",
        "pushed at 15:00 in Paris: Order 2 is on its way",
        "held for Erin's quiet hours until 07:00 in Tokyo",
        "pushed at 07:00 in Tokyo: Order 3 is on its way",
        "nobody was woken up, nobody got it twice",
    ]


def check_bff_profiles(lines: list[str]) -> None:
    ios = [line for line in lines if line.startswith("iOS app gets ")]
    assert len(ios) == 1  # the audit event is not shown to iOS
    assert ios[0].endswith('"data":{"id":"o-1","total":1999,"status":"Expédiée"}}')
    assert "web page gets shop.audit: " + '{"who": "ops", "what": "refund check"}' in lines
    web = next(line for line in lines if line.startswith("web page gets shop.order.shipped"))
    assert '"warehouse": "W3"' in web
    get_web = next(line for line in lines if line.startswith("GET /orders/o-1 as web: "))
    get_ios = next(line for line in lines if line.startswith("GET /orders/o-1 as ios: "))
    assert '"specversion":"1.0"' in get_web
    assert '"warehouse":"W3"' in get_web
    assert get_ios.endswith('"data":{"id":"o-1","total":1999,"status":"Expédiée"}}')
    assert lines[-1] == "the same events, shaped for each client"


def check_choreography(lines: list[str]) -> None:
    assert lines == [
        "o-1: placed -> paid -> shipped",
        "o-2: placed -> cancelled (payment declined)",
        "o-3: placed -> paid",
        "dead letter in shipping: o-3, 3 attempts: LookupError: no carrier for IS",
        "redriven: 1",
        "o-3: placed -> paid -> shipped",
        "every order reached its end: shipped or cancelled",
    ]


def check_batch_failures(lines: list[str]) -> None:
    # How the events are batched depends on the backend and on timing (an SQS receive may
    # return fewer messages than are queued); what each event went through does not.
    batches = [re.fullmatch(r"batch \[([\w ]+)\]: refused (.+)", line) for line in lines[:-3]]
    assert all(batches), lines
    items = sorted(item for found in batches if found for item in found[1].split())
    assert items == ["0", "1", "2", "3", "3", "4", "5", "6", "7", "7", "8", "9"] + ["bad"] * 3
    refused = [found[2] for found in batches if found and found[2] != "nothing"]
    assert sorted(sku for text in refused for sku in ast.literal_eval(text)) == [
        "sku-3", "sku-7", "sku-bad", "sku-bad", "sku-bad",
    ]  # fmt: skip
    assert lines[-3:] == [
        "written: 10 items, each once: True",
        "retried 4, dead-lettered 1",
        "dead letter: sku-bad after 3 attempts",
    ]


def check_aws_app(lines: list[str]) -> None:
    assert "job invoice: succeeded" in lines
    see_other = next(line for line in lines if line.startswith("303 See Other: "))
    assert re.search(r"/jobs/[\w-]+/result-1$", see_other)
    assert lines[-4:] == [
        "INVOICE o-77",
        "tea                       4.50",
        "scones                    3.00",
        "total                     7.50",
    ]


CHECKS = {
    "order_status": check_order_status,
    "report_job": check_report_job,
    "chat": check_chat,
    "push_offline": check_push_offline,
    "bff_profiles": check_bff_profiles,
    "choreography": check_choreography,
    "batch_failures": check_batch_failures,
    "aws_app": check_aws_app,
}
#: The apps whose Redis variant is tested: all but ``aws_app`` (memory or AWS only).
ON_REDIS = [name for name in CHECKS if name != "aws_app"]


def test_every_app_is_checked_and_documented() -> None:
    assert set(APPS) == set(CHECKS)
    gallery = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    for name in APPS:
        assert (ROOT / "examples" / name / "README.md").is_file(), f"{name} has no README"
        assert f"examples/{name}/app.py" in gallery, f"{name} is not in docs/examples.md"


@pytest.mark.parametrize("name", APPS)
def test_app_on_memory(name: str) -> None:
    lines = run_app(name)
    CHECKS[name](lines)
    if name == "batch_failures":  # in one process, the first read takes all ten at once
        assert lines[0] == "batch [0 1 2 3 4 5 6 7 8 9]: refused ['sku-3', 'sku-7']"


@pytest.fixture
def redis_backend() -> Iterator[str]:
    """A Redis bus URL with a prefix of this test's own; its keys are deleted afterwards."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (redis.exceptions.ConnectionError, OSError) as exc:
        client.close()
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI requires Redis: {exc}")
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    prefix = f"eptest:examples:{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(match="{" + prefix + "}:*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.mark.redis
@pytest.mark.parametrize("name", ON_REDIS)
def test_app_on_redis(name: str, redis_backend: str) -> None:
    CHECKS[name](run_app(name, redis_backend))


def test_apps_are_ruff_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    found = str(ruff) if ruff.exists() else shutil.which("ruff")
    if found is None:  # pragma: no cover - the dev extra has it
        pytest.skip("ruff is not installed")
    apps = [str(ROOT / "examples" / name / "app.py") for name in APPS]
    for command in (["check"], ["format", "--check"]):
        result = subprocess.run(
            [found, *command, *apps], capture_output=True, text=True, timeout=60, cwd=ROOT
        )
        assert result.returncode == 0, result.stdout + result.stderr
