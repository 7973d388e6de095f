"""The demo's routes, files and parsing (the page itself: ``test_demo_browser.py``)."""

from __future__ import annotations

import json
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import EventBus
from eventpatterns.backends.memory import MemoryJobStore
from eventpatterns.bff._demo import (
    DEMO_KIND,
    MAX_EXPLAIN_BODY,
    ExplainRequestError,
    demo_routes,
    demo_setup,
    guest_authorizer,
    parse_explain_request,
)
from eventpatterns.cli import main
from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.filters import compile as compile_pattern
from eventpatterns.jobs import JobState, JobTracker
from eventpatterns.realtime import Credentials, Gateway, MemoryPresence

from .test_demo_browser import demo_server

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = resources.files("eventpatterns.bff").joinpath("demo")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- the files -----------------------------------------------------------------------------


def test_the_packaged_client_is_clients_js_byte_for_byte() -> None:
    # src/eventpatterns/bff/demo/eventpatterns.js is a copy (package data, so that the
    # demo works from a wheel): cp clients/js/eventpatterns.js src/eventpatterns/bff/demo/
    source = (ROOT / "clients" / "js" / "eventpatterns.js").read_bytes()
    copy = PACKAGED.joinpath("eventpatterns.js").read_bytes()
    assert copy == source, "cp clients/js/eventpatterns.js src/eventpatterns/bff/demo/"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0
        self.styles = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in found.items() if k in ("src", "href") and v is not None]
        self._in_script = tag == "script" and "src" not in found
        self.styles += tag == "style" or "style" in found or any(k.startswith("on") for k in found)

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def test_the_page_loads_nothing_from_elsewhere() -> None:
    links = _Links()
    links.feed(PACKAGED.joinpath("index.html").read_text(encoding="utf-8"))
    assert links.urls == ["/demo/favicon.svg", "/demo/demo.css", "/demo/demo.js"]
    assert (links.inline_scripts, links.styles) == (0, 0)  # the CSP allows neither
    script = PACKAGED.joinpath("demo.js").read_text(encoding="utf-8")
    assert re.findall(r"^import .*$", script, re.M) == [
        'import { connect } from "./eventpatterns.js";'
    ]
    assert "http://" not in script
    assert "https://" not in script
    # Event data is untrusted: only textContent, never parsed as HTML.
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


# -- the routes ----------------------------------------------------------------------------


@asynccontextmanager
async def demo_app() -> AsyncIterator[tuple[httpx.AsyncClient, JobTracker]]:
    from starlette.applications import Starlette

    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, presence=MemoryPresence()) as gateway,
    ):
        tracker = JobTracker(bus, MemoryJobStore())
        demo_setup(tracker, step_seconds=0)
        async with tracker:
            app = Starlette(routes=demo_routes(bus=bus, gateway=gateway, tracker=tracker))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
                yield http, tracker


@pytest.mark.anyio
async def test_the_page_and_its_files() -> None:
    async with demo_app() as (http, _):
        page = await http.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.content == PACKAGED.joinpath("index.html").read_bytes()
        client = await http.get("/demo/eventpatterns.js")
        assert client.headers["content-type"].startswith("text/javascript")
        assert client.content == (ROOT / "clients" / "js" / "eventpatterns.js").read_bytes()
        for name in ("index.html", "nope.js", "_demo.py"):
            missing = await http.get(f"/demo/{name}")
            assert missing.status_code == 404
            assert missing.headers["content-type"] == "application/problem+json"
        escape = await http.get("/demo/..%2F_demo.py")  # not a file name: no route
        assert escape.status_code == 404
        assert b"import" not in escape.content


def _event(**data: Any) -> dict[str, Any]:
    return {"specversion": "1.0", "id": "e1", "source": "/demo", "type": "demo.x", "data": data}


@pytest.mark.anyio
async def test_explain_says_why_an_event_does_not_match() -> None:
    pattern = {"type": ["demo.x"], "data": {"n": [{"numeric": [">", 100]}]}}
    async with demo_app() as (http, _):
        miss = await http.post("/demo/explain", json={"pattern": pattern, "event": _event(n=5)})
        hit = await http.post("/demo/explain", json={"pattern": pattern, "event": _event(n=500)})
        text = await http.post(
            "/demo/explain", json={"pattern": json.dumps(pattern), "event": _event(n=5)}
        )
    assert miss.status_code == 200
    assert miss.json()["matched"] is False
    [failed] = [c for c in miss.json()["branches"][0]["checks"] if not c["matched"]]
    assert (failed["path"], failed["seen"]) == ("$.data.n", [5])
    assert "FAIL $.data.n" in miss.json()["text"]
    assert hit.json()["matched"] is True
    assert hit.json()["text"].startswith("match")
    assert text.json() == miss.json()  # the pattern as JSON text works too


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "path", "reason"),
    [
        (b'{"pattern": {"type": [{"prefix": 1}]}, "event": {}}', "$.pattern.type[0].prefix", ""),
        (b'{"pattern": {"type": "x"}, "event": {}}', "$.pattern.type", ""),
        (b'{"pattern": "{not json", "event": {}}', "$.pattern", "not valid JSON"),
        (b"not json", "$", "not JSON"),
        (b"\xff\xfe", "$", "not UTF-8"),
        (b"[1, 2]", "$", "JSON object"),
        (b'{"event": {}}', "$.pattern", "missing"),
        (b'{"pattern": {}}', "$.event", "missing"),
        (b'{"pattern": {}, "event": [1]}', "$.event", "JSON object"),
        (b'{"pattern": {}, "event": {"specversion": "1.0", "id": "1"}}', "$.event.source", ""),
        (b'{"pattern": {}, "event": {"specversion": "0.3", "id": "1"}}', "$.event", ""),
        (b'{"pattern": ' + b"[" * 30_000 + b"]" * 30_000 + b', "event": {}}', "$", ""),
    ],
)
async def test_explain_refuses_a_bad_body_naming_the_path(
    body: bytes, path: str, reason: str
) -> None:
    async with demo_app() as (http, _):
        answer = await http.post("/demo/explain", content=body)
    if len(body) > MAX_EXPLAIN_BODY:
        assert answer.status_code == 413
        return
    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["path"].startswith(path)
    assert reason in problem["reason"]
    assert problem["detail"].startswith(problem["path"])


@pytest.mark.anyio
async def test_explain_reads_a_bounded_body() -> None:
    async with demo_app() as (http, _):
        answer = await http.post("/demo/explain", content=b" " * (MAX_EXPLAIN_BODY + 1))
    assert answer.status_code == 413
    assert str(MAX_EXPLAIN_BODY) in answer.json()["detail"]


@pytest.mark.anyio
async def test_the_demo_job_reports_progress_and_returns_squares() -> None:
    async with demo_app() as (_, tracker):
        job = await tracker.submit(DEMO_KIND, {"steps": 4}, owner="guest-1")
        fractions = []
        async for update in tracker.watch(job.id):
            fractions.append(update.progress.fraction)
        assert update.state is JobState.SUCCEEDED
        assert await tracker.result(update) == {"job": job.id, "steps": 4, "squares": [1, 4, 9, 16]}
    assert fractions[-1] == 1.0
    assert fractions == sorted(fractions)


@pytest.mark.anyio
async def test_demo_routes_need_presence_the_bus_and_the_kind() -> None:
    async with (
        EventBus.from_url("memory://") as bus,
        EventBus.from_url("memory://") as other,
        Gateway(bus) as plain,
        Gateway(bus, presence=MemoryPresence()) as gateway,
    ):
        tracker = JobTracker(bus, MemoryJobStore())
        with pytest.raises(ConfigurationError, match="no demo kind"):
            demo_routes(bus=bus, gateway=gateway, tracker=tracker)
        demo_setup(tracker)
        with pytest.raises(ConfigurationError, match="presence"):
            demo_routes(bus=bus, gateway=plain, tracker=tracker)
        with pytest.raises(ConfigurationError, match="bus"):
            demo_routes(bus=other, gateway=gateway, tracker=tracker)
        assert len(demo_routes(bus=bus, gateway=gateway, tracker=tracker)) == 3


@pytest.mark.anyio
async def test_guest_authorizer_takes_a_name() -> None:
    principal = await guest_authorizer(Credentials(token="guest-ab12"))
    assert (principal.id, principal.scopes) == ("guest-ab12", frozenset({"publish"}))
    with pytest.raises(AuthenticationFailed) as missing:
        await guest_authorizer(Credentials())
    assert missing.value.reason == "missing"
    for bad in ("a b", "x" * 33, "<b>", "é"):
        with pytest.raises(AuthenticationFailed) as invalid:
            await guest_authorizer(Credentials(token=bad))
        assert invalid.value.reason == "invalid"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "is not a loopback address"),
        (["--jobs", "myapp:setup"], "--demo runs its own job kind"),
    ],
)
def test_serve_demo_usage_errors(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["serve", "--demo", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("eventpatterns serve: error:")
    assert message in err


@pytest.mark.anyio
async def test_the_readme_command_serves_the_page_jobs_and_explain() -> None:
    # Without a browser: the same subprocess the browser test drives.
    async with demo_server() as (process, url), httpx.AsyncClient(base_url=url) as http:
        page = await http.get("/")
        assert page.content == PACKAGED.joinpath("index.html").read_bytes()
        guest = {"authorization": "Bearer guest-t1"}
        published = await http.post(
            "/publish",
            content=json.dumps(_event(n=1)),
            headers={"content-type": "application/cloudevents+json", **guest},
        )
        assert published.status_code == 202
        anonymous = await http.post(
            "/publish",
            content=json.dumps(_event(n=2) | {"id": "e2"}),
            headers={"content-type": "application/cloudevents+json"},
        )
        assert anonymous.status_code == 401  # a tab sends its guest name
        job = await http.post("/jobs/demo", json={"steps": 1}, headers=guest)
        assert job.status_code == 202
        assert job.json()["owner"] == "guest-t1"
        other = await http.get(job.headers["location"], headers={"authorization": "Bearer b"})
        assert other.status_code == 404  # another guest's job
        explained = await http.post("/demo/explain", json={"pattern": {}, "event": {}})
        assert explained.json()["matched"] is True
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(15):
            assert await process.wait() == 0


# -- fuzz: the explain body's parser -------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=12,
)
patterns = st.dictionaries(
    st.sampled_from(["type", "source", "data", "detail", "n"]),
    st.lists(
        st.integers(0, 9)
        | st.sampled_from(["a", "b"])
        | st.just({"prefix": "a"})
        | st.just({"numeric": [">", 3]})
        | st.just({"exists": True})
        | json_values,
        max_size=3,
    )
    | json_values,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_explain_parser_on_bytes(body: bytes) -> None:
    try:
        parse_explain_request(body)
    except ExplainRequestError as exc:
        assert exc.path.startswith("$")  # noqa: PT017 - any body: an error or a parse
        assert exc.reason  # noqa: PT017


@settings(max_examples=300, deadline=None)
@given(patterns | json_values, st.dictionaries(st.sampled_from(["type", "n", "data"]), json_values))
def test_fuzz_explain_parser_on_documents(pattern: Any, event: dict[str, Any]) -> None:
    body = json.dumps({"pattern": pattern, "event": event}).encode()
    try:
        matcher, parsed = parse_explain_request(body)
    except ExplainRequestError as exc:
        assert exc.path.startswith("$.pattern")  # noqa: PT017 - the event is any object
        return
    assert parsed == event
    assert matcher.matches(event) == compile_pattern(pattern).matches(event)
