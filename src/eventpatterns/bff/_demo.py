"""The demo page of ``eventpatterns serve --demo``: every pattern on one page.

The page (static files in ``eventpatterns/bff/demo/``, package data, no external
resource) is built on the JavaScript client, served from the same directory (a copy of
``clients/js/eventpatterns.js``; a test keeps the two equal byte for byte). It shows:

* a live event feed, filtered on the server with an EventBridge pattern typed in a
  box; a published event the filter refuses comes with the filter engine's
  explanation, from ``POST /demo/explain``;
* a long-running job (kind ``demo``, ``POST /jobs/demo``) with a progress bar fed by
  the gateway's ``eventpatterns.job.*`` events and a link to its result;
* presence: who is online on the channel ``demo``, one guest name per tab;
* a button that publishes an event (``POST /publish``).

Each tab names itself ``guest-xxxx`` and sends that name as its token: in the open mode
:func:`guest_authorizer` makes it the principal (with the ``publish`` scope), so two
tabs are two members. Anyone who reaches the port may call themselves anything, which
is why ``--demo`` without authentication is refused off loopback (as the open mode is).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, Field

from ..errors import AuthenticationFailed, ConfigurationError, InvalidEvent, InvalidPattern
from ..jobs import JobContext  # at run time: the worker reads its annotation

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from ..bus import EventBus
    from ..jobs import JobTracker
    from ..realtime import Authorizer, Credentials, Gateway, Presence, Principal

__all__ = [
    "DEMO_KIND",
    "MAX_EXPLAIN_BODY",
    "DemoInput",
    "ExplainRequestError",
    "demo_gateway",
    "demo_routes",
    "demo_setup",
    "guest_authorizer",
    "parse_explain_request",
    "serve_demo",
]

#: The job kind the demo registers.
DEMO_KIND = "demo"
#: The largest ``POST /demo/explain`` body read.
MAX_EXPLAIN_BODY = 64 * 1024
#: A guest's name: what :func:`guest_authorizer` accepts as a token.
_GUEST = re.compile(r"[A-Za-z0-9_.-]{1,32}")
#: The page's files: name → media type (nothing else is served from the directory).
_FILES = {
    "demo.js": "text/javascript; charset=utf-8",
    "demo.css": "text/css; charset=utf-8",
    "eventpatterns.js": "text/javascript; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
# No inline script or style, nothing from elsewhere (the page works offline).
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
    " img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class DemoInput(BaseModel):
    """The demo job's input: how many steps (of half a second each) it takes."""

    model_config = {"extra": "forbid", "frozen": True}

    steps: int = Field(20, ge=1, le=100)


def demo_setup(tracker: JobTracker, *, step_seconds: float = 0.5) -> None:
    """Register the demo job kind on ``tracker`` (before entering it).

    A ``demo`` job reports progress after each of its ``steps`` (20 by default: about
    10 s) and returns a small JSON document: the squares of 1 to ``steps``.

    Args:
        tracker: The tracker, not entered yet.
        step_seconds: The time each step takes.
    """

    @tracker.worker(DEMO_KIND, concurrency=4, max_attempts=1)
    async def demo(ctx: JobContext[DemoInput]) -> dict[str, Any]:
        steps = ctx.input.steps
        for step in range(1, steps + 1):
            await anyio.sleep(step_seconds)  # the "work"
            await ctx.progress(step / steps, f"step {step} of {steps}")
        return {"job": ctx.job.id, "steps": steps, "squares": [n * n for n in range(1, steps + 1)]}


async def guest_authorizer(credentials: Credentials) -> Principal:
    """The demo's open mode: the token is the guest's name, the principal's id.

    Raises:
        AuthenticationFailed: No token, or not 1-32 characters of ``A-Z a-z 0-9 _ . -``.
    """
    from ..realtime import Principal

    token = credentials.token or ""
    if not token:
        raise AuthenticationFailed("the demo needs a guest name as the token", reason="missing")
    if _GUEST.fullmatch(token) is None:
        raise AuthenticationFailed(
            "a guest name is 1-32 characters of A-Z a-z 0-9 _ . -", reason="invalid"
        )
    return Principal(token, scopes=frozenset({"publish"}))


def demo_gateway(authorizer: Authorizer | None) -> tuple[Authorizer, Presence]:
    """Return the authorizer and presence of a demo gateway.

    Args:
        authorizer: The configured authorizer; ``None`` (the open mode) gets
            :func:`guest_authorizer`.
    """
    from ..realtime import MemoryPresence

    return authorizer or guest_authorizer, MemoryPresence()


class ExplainRequestError(ValueError):
    """A ``POST /demo/explain`` body that cannot be explained.

    It never leaves this module's route, which answers it with ``400``
    ``application/problem+json`` (so it is not in :mod:`eventpatterns.errors`).

    Attributes:
        path: JSON path of the offending part of the body, e.g. ``"$.pattern.detail"``.
        reason: What is wrong with it.
    """

    def __init__(self, reason: str, *, path: str = "$") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


def parse_explain_request(body: bytes) -> tuple[Any, Mapping[str, Any]]:
    """Parse ``{"pattern": ..., "event": {...}}`` into a compiled pattern and an event.

    ``pattern`` is a pattern object or its JSON text; ``event`` a JSON object, taken as
    a CloudEvent (validated and normalised as the bus does) when it has ``specversion``.

    Raises:
        ExplainRequestError: Not UTF-8 JSON, not an object, a missing member, a bad
            pattern (``path`` under ``$.pattern``) or a bad CloudEvent (under ``$.event``).
    """
    from ..core import Event
    from ..filters import compile as compile_pattern

    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise ExplainRequestError("the body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise ExplainRequestError("the body is not JSON") from None
    if not isinstance(document, dict):
        raise ExplainRequestError("the body must be a JSON object {pattern, event}")
    for member in ("pattern", "event"):
        if member not in document:
            raise ExplainRequestError("missing", path=f"$.{member}")
    try:
        matcher = compile_pattern(document["pattern"])
    except InvalidPattern as exc:
        raise ExplainRequestError(exc.reason, path="$.pattern" + exc.path[1:]) from None
    except RecursionError:
        raise ExplainRequestError("nested too deeply", path="$.pattern") from None
    event = document["event"]
    if not isinstance(event, dict):
        raise ExplainRequestError("must be a JSON object", path="$.event")
    if "specversion" in event:
        try:
            event = Event.from_dict(event).to_dict()
        except InvalidEvent as exc:
            where = f"$.event.{exc.attribute}" if exc.attribute else "$.event"
            raise ExplainRequestError(str(exc)[:300], path=where) from None
    return matcher, event


def _file(name: str) -> bytes:
    return resources.files(__package__).joinpath("demo").joinpath(name).read_bytes()


def demo_routes(*, bus: EventBus, gateway: Gateway, tracker: JobTracker) -> list[BaseRoute]:
    """Return the demo's routes: ``GET /``, ``GET /demo/{file}``, ``POST /demo/explain``.

    Mount them beside the gateway's ``/ws`` and ``POST /publish`` and the tracker's
    ``/jobs`` routes: the page calls them all, on its own origin.

    Args:
        bus: The bus the gateway serves.
        gateway: The gateway, with a presence (the page lists its tabs).
        tracker: A tracker that runs the demo kind (see :func:`demo_setup`).

    Raises:
        ConfigurationError: The gateway has no presence or serves another bus, or the
            tracker lacks the demo kind.
    """
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from ..filters import explain
    from ._asgi import problem

    if gateway.presence is None:
        raise ConfigurationError("the demo needs a gateway with a presence")
    if gateway.bus is not bus:
        raise ConfigurationError("the demo's gateway must serve the demo's bus")
    if DEMO_KIND not in tracker.kinds:
        raise ConfigurationError("the demo's tracker has no demo kind: call demo_setup(tracker)")
    page = _file("index.html")
    files = {name: (_file(name), media) for name, media in _FILES.items()}
    headers = {"cache-control": "no-cache", "x-content-type-options": "nosniff"}

    async def index(request: Request) -> Response:
        page_headers = {
            **headers,
            "content-security-policy": _CSP,
            "referrer-policy": "no-referrer",
        }
        return Response(page, media_type="text/html; charset=utf-8", headers=page_headers)

    async def static(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            return problem(404, "Not Found", "no such file")
        return Response(found[0], media_type=found[1], headers=headers)

    async def explain_route(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_EXPLAIN_BODY:
                return problem(413, "Content Too Large", f"at most {MAX_EXPLAIN_BODY} bytes")
        try:
            matcher, event = parse_explain_request(bytes(body))
        except ExplainRequestError as exc:
            return problem(400, "Bad Request", str(exc), path=exc.path, reason=exc.reason)
        explanation = explain(matcher, event)
        return JSONResponse({**explanation.to_dict(), "text": str(explanation)})

    return [
        Route("/", index, methods=["GET", "HEAD"]),
        Route("/demo/explain", explain_route, methods=["POST"]),
        Route("/demo/{name}", static, methods=["GET", "HEAD"]),
    ]


@asynccontextmanager
async def serve_demo(
    bus: EventBus, gateway: Gateway, *, bus_url: str, address: tuple[Any, ...]
) -> AsyncIterator[list[BaseRoute]]:
    """Run a tracker with the demo kind; yield its routes and the demo's while it runs.

    The job store follows ``bus_url`` (as ``serve --jobs`` does); the jobs routes use the
    gateway's authorizer, so a tab's jobs are its own. ``address`` is the listening
    socket's (the blob URLs are signed for it).
    """
    host, port = address[:2]
    base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    from ..backends.memory import MemoryBlobStore
    from ..jobs import JobTracker, URLSigner
    from ..jobs._asgi import blob_routes, routes
    from ..jobs._serve import _store

    signer = URLSigner(secrets.token_bytes(32), base_url=f"{base_url}/blobs")
    blobs = MemoryBlobStore(signer=signer)
    store = _store(bus_url)
    tracker = JobTracker(bus, store, blobs=blobs)
    demo_setup(tracker)
    authorizer = gateway.authorizer or guest_authorizer
    try:
        async with tracker:
            yield [
                *routes(tracker, authorizer=authorizer),
                *blob_routes(blobs, signer),
                *demo_routes(bus=bus, gateway=gateway, tracker=tracker),
            ]
    finally:
        close = getattr(store, "aclose", None)
        if close is not None:
            await close()
