"""The JavaScript client and the SSE endpoint in real headless Chromium (Playwright).

Each test serves a page and ``clients/js/eventpatterns.js`` from uvicorn (Starlette),
with the gateway's endpoints beside them, launches Debian's Chromium and drives the
page; the test publishes on the bus and reads what the page shows. Restarts stop the
gateway and its server and start new ones on the same port and the same bus (the memory
bus outlives them, as a Redis log would), so the page must reconnect and resume.

Chromium is found as ``$EVENTPATTERNS_CHROMIUM``, ``chromium`` or ``chromium-browser``.
Without it (or without the ``playwright`` package) the tests skip, except under
``CI=true``, where they fail: ``scripts/test`` installs Chromium there.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.realtime import APIKeyAuthorizer, Gateway, Limits, owner_only, serve

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.anyio]

ROOT = Path(__file__).resolve().parents[2]
CLIENT_JS = ROOT / "clients" / "js" / "eventpatterns.js"
GUIDE = ROOT / "docs" / "realtime-js.md"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LIMITS = Limits(auth_timeout=5, keepalive=1)
# The page's client reconnects fast so that the tests are fast (the defaults: 0.5-30 s).
BACKOFF = {"initial": 50, "max": 250}
WAIT_MS = 10_000  # a wait in the page that takes longer fails the test

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>eventpatterns browser test</title></head>
<body>
<ul id="events"></ul>
<script type="module">
import { connect } from "/eventpatterns.js";

window.received = [];
window.states = [];
function show(text) {
  const li = document.createElement("li");
  li.textContent = text;
  document.getElementById("events").append(li);
}
// WebSocket: the module under test.
window.startClient = ({ url, token, spec, backoff }) => {
  const client = connect(url, { token, backoff });
  client.on("state", (state) => window.states.push(state));
  window.closes = [];
  client.on("close", (info) => window.closes.push(info));
  window.client = client;
  window.sub = client.subscribe(spec, (event, { position }) => {
    window.received.push({ id: event.id, n: event.data.n, user: event.data.userId, position });
    show(`${event.data.userId} ${event.data.n}`);
  });
};
// SSE: the browser's own EventSource.
window.startEventSource = (url) => {
  window.sseOpens = 0;
  window.sseSubscribed = false;
  const source = new EventSource(url);
  source.onopen = () => { window.sseOpens += 1; };
  source.addEventListener("subscribed", () => { window.sseSubscribed = true; });
  source.addEventListener("event", (message) => {
    const event = JSON.parse(message.data);
    const position = message.lastEventId;
    window.received.push({ id: event.id, n: event.data.n, user: event.data.userId, position });
    show(`${event.data.userId} ${event.data.n}`);
  });
  window.source = source;
};
window.pageReady = true;
</script>
</body></html>
"""


# -- Chromium ------------------------------------------------------------------------------


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(reason: str) -> None:
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: scripts/test installs chromium; browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable, or skip (fail under CI) saying what is missing."""
    path = (
        os.environ.get("EVENTPATTERNS_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )
    if path is None:
        _unavailable("Chromium is not installed (apt-get install chromium chromium-driver)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install playwright)")
    assert path is not None
    return path


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    # uvicorn and Playwright's async API; module scope: one event loop (and one browser)
    # for the whole module, since starting Playwright and Chromium takes seconds.
    return "asyncio"


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context()  # a fresh profile per test
    context.set_default_timeout(WAIT_MS)
    try:
        yield await context.new_page()
    finally:
        await context.close()


# -- servers -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _listening(port: int) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    try:
        yield sock
    finally:
        sock.close()


def guide_example() -> str:
    """The guide's runnable block: the ```js block after ``<!-- browser-test: this ...``."""
    text = GUIDE.read_text(encoding="utf-8")
    match = re.search(r"^<!-- browser-test: this .*?-->\n```js\n(.*?)^```", text, re.M | re.S)
    assert match is not None, f"{GUIDE.name} has no block marked to run in the browser"
    return match.group(1)


def _app(gateway: Gateway | None, extra: dict[str, str] | None = None) -> Any:
    """The page, the module, and (with a gateway) its ``/ws`` and ``/events`` endpoints."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, Response
    from starlette.routing import BaseRoute, Route, WebSocketRoute

    from eventpatterns.realtime.asgi import sse_endpoint, websocket_endpoint

    async def page(request: Request) -> Response:
        return HTMLResponse(PAGE)

    async def module(request: Request) -> Response:
        return Response(CLIENT_JS.read_bytes(), media_type="text/javascript")

    routes: list[BaseRoute] = [Route("/", page), Route("/eventpatterns.js", module)]
    for path, html in (extra or {}).items():
        routes.append(Route(path, lambda request, html=html: HTMLResponse(html)))
    if gateway is not None:
        routes += [
            WebSocketRoute("/ws", websocket_endpoint(gateway)),
            # retry: 100 ms, so that EventSource comes back quickly after a restart.
            Route("/events", sse_endpoint(gateway, retry=100), methods=["GET"]),
        ]
    return Starlette(routes=routes)


@asynccontextmanager
async def _uvicorn(
    app: Any, port: int, *, on_stop: Callable[[], Awaitable[None]] | None = None
) -> AsyncIterator[None]:
    """Serve ``app`` on 127.0.0.1:``port``; on exit stop listening, then run ``on_stop``.

    The order matters for restarts: were the gateway closed while uvicorn still
    accepts, a reconnecting EventSource could be answered 503, and EventSource gives
    up for good on an HTTP error (HTML's "fail the connection"); a refused connection
    is a network error, after which it retries.
    """
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    config = uvicorn.Config(
        app,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
        timeout_graceful_shutdown=2,
    )
    server = Server(config)
    with _listening(port) as sock:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, [sock])
            with anyio.fail_after(10):
                while not server.started:  # noqa: ASYNC110 - uvicorn has no "started" event
                    await anyio.sleep(0.01)
            try:
                yield
            finally:
                server.should_exit = True
                with anyio.CancelScope(shield=True), anyio.fail_after(5):
                    # uvicorn's shutdown first closes the listening socket (asyncio
                    # closes the socket it was given); then the open responses end.
                    while sock.fileno() != -1:  # noqa: ASYNC110 - no event for it
                        await anyio.sleep(0.01)
                    if on_stop is not None:
                        await on_stop()


Transport = Literal["asgi", "websockets"]


class Site:
    """The page's HTTP server and a restartable gateway on one bus.

    ``transport="asgi"``: the gateway's ``/ws`` and ``/events`` are in the page's app.
    ``transport="websockets"``: the gateway runs on :func:`eventpatterns.realtime.serve`
    on a port of its own (the page's server then only serves the page and the module).
    """

    def __init__(
        self,
        bus: EventBus,
        authorizer: APIKeyAuthorizer,
        transport: Transport,
        pages: dict[str, str] | None = None,
    ) -> None:
        self.pages = pages or {}
        self.bus = bus
        self.authorizer = authorizer
        self.transport = transport
        self.http_port = _free_port()
        self.ws_port = _free_port()
        self.gateway: Gateway | None = None
        self.restarts = 0

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        if self.transport == "asgi":
            return f"ws://127.0.0.1:{self.http_port}/ws"
        return f"ws://127.0.0.1:{self.ws_port}/"

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Gateway]:
        """Run a new gateway (and its servers) until the block exits."""
        gateway = Gateway(
            self.bus,
            authorizer=self.authorizer,
            authorize_subscription=owner_only("data.userId"),
            limits=LIMITS,
        )
        async with gateway:
            self.gateway = gateway
            try:
                if self.transport == "asgi":
                    # On exit: stop listening, then end the open streams (uvicorn waits
                    # for open responses) by closing the gateway.
                    app = _app(gateway, self.pages)
                    async with _uvicorn(app, self.http_port, on_stop=gateway.aclose):
                        yield gateway
                else:
                    async with serve(gateway, "127.0.0.1", self.ws_port, close_timeout=1):
                        yield gateway
            finally:
                self.gateway = None


@asynccontextmanager
async def page_server(site: Site) -> AsyncIterator[None]:
    """Serve the page on its own (for the ``websockets`` transport)."""
    if site.transport == "asgi":
        yield
        return
    async with _uvicorn(_app(None, site.pages), site.http_port):
        yield


def event(n: int, user: str = "alice", kind: str = "order.created") -> Event:
    return Event(type=kind, source="/tests/browser", data={"n": n, "userId": user})


async def publish_mixed(bus: EventBus, numbers: range) -> None:
    """For each ``n``: alice's order (the match), alice's other event, bob's order."""
    for n in numbers:
        await bus.publish(event(n))
        await bus.publish(event(n, kind="order.shipped"))
        await bus.publish(event(n, user="bob"))


# The page subscribes to orders; the gateway narrows it to the principal's own events.
ORDERS = {
    "filterGroup": [
        {"filters": [{"fieldName": "type", "operator": "eq", "value": "order.created"}]}
    ]
}


async def received(page: Page, count: int) -> list[dict[str, Any]]:
    """Wait until the page has ``count`` events (or more), then return them all."""
    await page.wait_for_function("n => window.received.length >= n", arg=count)
    result: list[dict[str, Any]] = await page.evaluate("window.received")
    return result


async def start_page(page: Page, site: Site) -> None:
    await page.goto(site.origin + "/")
    await page.wait_for_function("window.pageReady === true")


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    async with EventBus.from_url("memory://") as bus:
        yield bus


# -- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["asgi", "websockets"])
async def test_page_receives_exactly_the_matching_events(
    page: Page, bus: EventBus, transport: Transport
) -> None:
    authorizer = APIKeyAuthorizer()
    key, _ = authorizer.create_key("alice")
    site = Site(bus, authorizer, transport)
    await publish_mixed(bus, range(-3, 0))  # history: not asked for, must not show
    async with site.running(), page_server(site):
        await start_page(page, site)
        await page.evaluate(
            "window.startClient",
            {"url": site.ws_url, "token": key, "spec": {"filter": ORDERS}, "backoff": BACKOFF},
        )
        await page.wait_for_function("window.sub.confirmed === true")
        assert await page.evaluate("window.client.principal") == "alice"
        await publish_mixed(bus, range(1, 11))
        # A last match after everything else: once it shows, nothing else is in flight.
        await bus.publish(event(99))
        got = await received(page, 11)
        shown = await page.locator("#events li").all_text_contents()
    assert [e["n"] for e in got] == [*range(1, 11), 99]
    assert {e["user"] for e in got} == {"alice"}
    assert shown == [f"alice {n}" for n in [*range(1, 11), 99]]
    assert await page.evaluate("window.sub.duplicates") == 0


@pytest.mark.parametrize("transport", ["asgi", "websockets"])
async def test_page_resumes_after_a_server_restart_with_no_gap_and_no_duplicate(
    page: Page, bus: EventBus, transport: Transport
) -> None:
    authorizer = APIKeyAuthorizer()
    key, _ = authorizer.create_key("alice")
    site = Site(bus, authorizer, transport)
    await publish_mixed(bus, range(-3, 0))
    async with page_server(site):
        async with site.running():
            await start_page(page, site)
            await page.evaluate(
                "window.startClient",
                {"url": site.ws_url, "token": key, "spec": {"filter": ORDERS}, "backoff": BACKOFF},
            )
            await page.wait_for_function("window.sub.confirmed === true")
            first = await page.evaluate("window.client.connectionId")
            await publish_mixed(bus, range(1, 6))
            await received(page, 5)
        # The server is down: the page's client retries (with backoff) while these are
        # published; they are in the log, and must reach the page once it is back.
        await page.wait_for_function("window.client.state === 'reconnecting'")
        await publish_mixed(bus, range(6, 16))
        async with site.running():
            await page.wait_for_function("window.client.state === 'open'")
            await publish_mixed(bus, range(16, 21))
            got = await received(page, 20)
            await bus.publish(event(99))
            got = await received(page, 21)
            second = await page.evaluate("window.client.connectionId")
            shown = await page.locator("#events li").all_text_contents()
    numbers = [e["n"] for e in got]
    assert numbers == [*range(1, 21), 99], numbers
    assert len(set(numbers)) == len(numbers)
    positions = [e["position"] for e in got]
    assert len(set(positions)) == len(positions)
    assert shown == [f"alice {n}" for n in numbers]
    assert first != second  # it did reconnect
    assert "reconnecting" in await page.evaluate("window.states")


async def test_revoked_page_stops_until_a_new_token_then_resumes(page: Page, bus: EventBus) -> None:
    """Close 4403: the client does not retry the refused token; setToken() resumes."""
    authorizer = APIKeyAuthorizer()
    key, record = authorizer.create_key("alice")
    site = Site(bus, authorizer, "asgi")
    async with site.running() as gateway:
        await start_page(page, site)
        await page.evaluate(
            "window.startClient",
            {"url": site.ws_url, "token": key, "spec": {"filter": ORDERS}, "backoff": BACKOFF},
        )
        await page.wait_for_function("window.sub.confirmed === true")
        await publish_mixed(bus, range(1, 4))
        await received(page, 3)
        authorizer.revoke(record.key_id)
        assert await gateway.revoke("alice", reason="access revoked") == 1
        # "closed" is where the client goes when it gives up, not a transient state.
        await page.wait_for_function("window.client.state === 'closed'")
        closes = await page.evaluate("window.closes")
        assert closes == [{"code": 4403, "reason": "access revoked", "willReconnect": False}]
        assert gateway.stats().connections == 0
        await publish_mixed(bus, range(4, 8))  # while the page holds no connection
        new_key, _ = authorizer.create_key("alice")
        await page.evaluate("key => window.client.setToken(key)", new_key)
        await page.wait_for_function("window.client.state === 'open'")
        await publish_mixed(bus, range(8, 11))
        got = await received(page, 10)
        states, closes = await page.evaluate("[window.states, window.closes]")
    assert [e["n"] for e in got] == list(range(1, 11))
    assert states == ["open", "closed", "reconnecting", "open"], closes


async def test_event_source_resumes_with_last_event_id(page: Page, bus: EventBus) -> None:
    authorizer = APIKeyAuthorizer()
    key, _ = authorizer.create_key("alice")
    site = Site(bus, authorizer, "asgi")
    await publish_mixed(bus, range(-3, 0))  # before the stream: not replayed
    query = urllib.parse.urlencode({"token": key, "filter": json.dumps(ORDERS)})
    async with site.running():
        await start_page(page, site)
        await page.evaluate("window.startEventSource", f"/events?{query}")
        await page.wait_for_function("window.sseSubscribed === true")
        await publish_mixed(bus, range(1, 6))
        await received(page, 5)
    # The server dropped the stream; EventSource retries (retry: 100 ms) while these
    # are published, then reconnects with Last-Event-ID = the last position it saw.
    await publish_mixed(bus, range(6, 16))
    async with site.running():
        await page.wait_for_function("window.sseOpens >= 2")
        await publish_mixed(bus, range(16, 21))
        await bus.publish(event(99))
        got = await received(page, 21)
        shown = await page.locator("#events li").all_text_contents()
    numbers = [e["n"] for e in got]
    assert numbers == [*range(1, 21), 99], numbers
    assert {e["user"] for e in got} == {"alice"}
    positions = [e["position"] for e in got]
    assert all(positions)
    assert len(set(positions)) == len(positions)
    assert shown == [f"alice {n}" for n in numbers]


async def test_the_guide_example_runs_in_the_page(page: Page, bus: EventBus) -> None:
    """docs/realtime-js.md's first example, as written but for its URL and token."""
    authorizer = APIKeyAuthorizer()
    key, _ = authorizer.create_key("alice")
    code = guide_example()
    assert '"ws://127.0.0.1:8000/ws"' in code
    assert '"dev-token"' in code
    site = Site(bus, authorizer, "asgi")
    code = code.replace('"ws://127.0.0.1:8000/ws"', json.dumps(site.ws_url))
    code = code.replace('"dev-token"', json.dumps(key))
    site.pages["/guide"] = f'<!doctype html><script type="module">\n{code}\n</script>'
    logs: list[str] = []
    page.on("console", lambda message: logs.append(message.text))
    async with site.running():
        await page.goto(site.origin + "/guide")
        with anyio.fail_after(WAIT_MS / 1000):
            while "connection: open" not in logs:  # noqa: ASYNC110 - console messages
                await anyio.sleep(0.02)
            # The subscribe frame follows "open" at once; wait for its confirmation.
            gateway = site.gateway
            assert gateway is not None
            while gateway.stats().subscriptions < 1:  # noqa: ASYNC110
                await anyio.sleep(0.02)
        await bus.publish(event(1, kind="order.shipped"))  # not an order.created
        await bus.publish(event(2))
        with anyio.fail_after(WAIT_MS / 1000):
            while not any(line.startswith("order ") for line in logs):  # noqa: ASYNC110
                await anyio.sleep(0.02)
    orders = [line for line in logs if line.startswith("order ")]
    assert len(orders) == 1
    assert orders[0].startswith("order 2 at ")
