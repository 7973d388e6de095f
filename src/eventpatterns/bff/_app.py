"""One ASGI app for one frontend: every route of the components it is given.

:func:`create_app` takes *running* components (the caller owns their ``async with``)
and mounts the routes of each one given, plus ``/healthz`` and ``/openapi.json``. The
result is a Starlette app, so it can be served alone (``uvicorn``, ``hypercorn``) or
mounted in an application (``Mount("/rt", app=create_app(...))``), and every error it
answers, a 404 or 405 from the router included, is an RFC 9457 problem document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from . import _openapi as openapi
from ._aggregate import Aggregator, View
from ._ingest import IngestEndpoint

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from ..bus import EventBus
    from ..core import EventRegistry
    from ..jobs import BlobStore, JobTracker, URLSigner
    from ..push import DeviceRegistry
    from ..realtime import Authorizer, Credentials, Gateway, Principal

__all__ = ["ASGIApp", "active_connections", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

#: Largest ``POST /publish`` body read, in bytes.
MAX_PUBLISH_BODY = 1024 * 1024
#: Most events in one ``POST /publish`` batch.
MAX_BATCH = 100


async def _anonymous(credentials: Credentials) -> Principal:
    """The open mode's authorizer for routes that need a principal: ``anonymous``."""
    from ..realtime._gateway import ANONYMOUS

    return ANONYMOUS


class _Mounted:
    """An ASGI app as a Starlette route endpoint (a class: Starlette calls it as an app)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class _Composition:
    """What :func:`create_app` gathers: routes, their OpenAPI paths, health, drain counts."""

    def __init__(self, bus: EventBus) -> None:
        self.routes: list[BaseRoute] = []
        self.paths: openapi.Paths = {}
        self.components: dict[str, Callable[[], bool]] = {"bus": lambda: bus.running}
        self.active: list[Callable[[], int]] = []

    def patterns(
        self,
        tracker: JobTracker | None,
        blobs: BlobStore | None,
        signer: URLSigner | None,
        registry: DeviceRegistry | None,
        authorizer: Authorizer,
    ) -> None:
        """Add the jobs, blob and device routes of the components given."""
        if tracker is not None:
            from ..jobs.asgi import routes as job_routes

            self.routes += job_routes(tracker, authorizer=authorizer)
            self.components["jobs"] = lambda: tracker.running
            openapi.jobs_paths(self.paths)
        if blobs is not None and signer is not None:
            from ..jobs.asgi import blob_routes

            self.routes += blob_routes(blobs, signer)
            openapi.blob_paths(self.paths)
        if registry is not None:
            from ..push.asgi import device_routes

            self.routes += device_routes(registry, authorizer=authorizer)
            openapi.device_paths(self.paths)


def create_app(
    bus: EventBus,
    *,
    gateway: Gateway | None = None,
    tracker: JobTracker | None = None,
    blobs: BlobStore | None = None,
    signer: URLSigner | None = None,
    registry: DeviceRegistry | None = None,
    aggregator: Aggregator | None = None,
    views: Iterable[View] = (),
    authorizer: Authorizer | None = None,
    admin_scope: str = "admin",
    ingest: bool = True,
    contracts: EventRegistry | None = None,
    metrics: ASGIApp | bool = True,
    extra_routes: Sequence[BaseRoute] = (),
    title: str = "eventpatterns",
    max_publish_body: int = MAX_PUBLISH_BODY,
    max_batch: int = MAX_BATCH,
) -> Starlette:
    """Return a Starlette app serving every component given, for one frontend.

    Routes, each mounted only when its component is given:

    * ``/ws`` (WebSocket) and ``GET /events`` (SSE): the ``gateway``;
    * ``POST /publish`` (``ingest=True``): CloudEvents onto ``bus``, structured, binary
      or batched (``application/cloudevents-batch+json``), idempotent on the event id
      (a repeat answers the original position), with the scope ``publish``; the data of
      a type declared in ``contracts`` is validated (``422`` with pydantic's ``loc``);
    * ``/jobs...``: the ``tracker``; ``GET /blobs/{key}``: ``blobs`` with ``signer``;
    * ``/devices...``: the push device ``registry``;
    * the ``views`` (each ``GET view.path``), run by the ``aggregator``;
    * ``GET /dlq/{group}``, ``GET /dlq/{group}/{id}``, ``POST /dlq/{group}/redrive``
      and ``POST /dlq/{group}/discard``: the bus's dead letters, with ``admin_scope``;
    * ``GET /metrics``: the ``metrics`` ASGI app;
    * ``GET /healthz``: ``200 {"status": "ok", "components": {...}}``, ``503`` when a
      component is closed; ``GET /openapi.json``: the OpenAPI 3.1 document of every
      HTTP route mounted;
    * then ``extra_routes``, as given.

    Args:
        bus: The entered bus.
        gateway: An entered real-time gateway on ``bus``.
        tracker: An entered job tracker.
        blobs: The blob store whose signed URLs ``/blobs`` serves (with ``signer``).
        signer: The signer of those URLs.
        registry: Where push devices are registered.
        aggregator: Runs the ``views``' parts.
        views: Aggregated views to serve.
        authorizer: Authenticates the HTTP routes. ``None``: the ``gateway``'s
            authorizer when it has one, else the open mode (anyone may publish, the
            jobs and devices belong to ``anonymous``, and only loopback clients may use
            the dead-letter routes): serve the open mode on a loopback address only.
        admin_scope: The scope the dead-letter routes need.
        ingest: Whether to mount ``POST /publish``.
        contracts: The declared event types whose data ``/publish`` validates (``422``
            on invalid data); ``None``: the default registry, where every
            :class:`~eventpatterns.core.EventModel` registers unless told otherwise.
        metrics: What answers ``GET /metrics``: ``True`` (default) the Prometheus text of
            :data:`eventpatterns.observability.metrics` (every pattern's counters, through
            :func:`~eventpatterns.observability.asgi.metrics_app`), an ASGI app of your
            own, or ``False`` for none.
        extra_routes: More Starlette routes, mounted last.
        title: The OpenAPI document's title.
        max_publish_body: Largest ``/publish`` body, in bytes (``413`` beyond).
        max_batch: Most events in one batch (``413`` beyond).

    Returns:
        The app; mount it anywhere (``Mount("/rt", app=create_app(bus))``).

    Raises:
        ConfigurationError: ``views`` without an ``aggregator``, ``blobs`` without a
            ``signer`` (or the reverse), a bad limit, or two views sharing a path.
        MissingDependency: Starlette is missing (extra ``server``).
    """
    from starlette.routing import Route, WebSocketRoute

    from ..errors import MissingDependency

    try:
        from starlette.applications import Starlette
        from starlette.exceptions import HTTPException
    except ImportError as exc:  # pragma: no cover - the server extra is installed
        raise MissingDependency(exc.name or "starlette", extra="server") from exc

    views = list(views)
    if views and aggregator is None:
        raise ConfigurationError("views need an aggregator to run their parts")
    if (blobs is None) != (signer is None):
        raise ConfigurationError("blobs and signer go together: pass both or neither")
    for name, value in (("max_publish_body", max_publish_body), ("max_batch", max_batch)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
    if authorizer is None and gateway is not None:
        authorizer = gateway.authorizer
    c = _Composition(bus)
    routes, paths = c.routes, c.paths
    if gateway is not None:
        from ..realtime._asgi import _SSEEndpoint, _WebSocketEndpoint

        websocket, sse = _WebSocketEndpoint(gateway), _SSEEndpoint(gateway, retry=3000)
        routes += [
            WebSocketRoute("/ws", websocket),
            Route("/events", sse, methods=["GET", "HEAD"]),
        ]
        c.active.append(lambda: websocket.active + sse.active)
        c.components["gateway"] = lambda: gateway.running
        openapi.realtime_paths(paths)
    if ingest:
        if contracts is None:
            from ..core import DEFAULT_REGISTRY

            contracts = DEFAULT_REGISTRY
        endpoint = IngestEndpoint(
            bus,
            authorizer=authorizer,
            contracts=contracts,
            max_body=max_publish_body,
            max_batch=max_batch,
        )
        routes.append(Route("/publish", endpoint, methods=["POST"]))
        openapi.ingest_paths(paths)
    c.patterns(tracker, blobs, signer, registry, authorizer or _anonymous)
    if views and aggregator is not None:
        from ._asgi import view_routes

        mounted = view_routes(aggregator, views, authorizer=authorizer)
        routes += mounted
        paths.update(openapi.route_paths(mounted, tag="views"))
    from ._dlq_routes import dlq_routes

    routes += dlq_routes(bus, authorizer=authorizer, admin_scope=admin_scope)
    openapi.dlq_paths(paths)
    if metrics is True:
        from ..observability.asgi import metrics_app

        metrics = metrics_app()
    if metrics is not False:
        routes.append(Route("/metrics", _Mounted(metrics), methods=["GET", "HEAD"]))
    openapi.health_paths(paths, metrics=metrics is not False)
    paths.update(openapi.route_paths(extra_routes, tag="extra"))
    from .._version import __version__

    websocket_path = "/ws" if gateway is not None else None
    document = openapi.document(title, __version__, paths, websocket=websocket_path)
    routes += [
        Route("/healthz", _health(c.components), methods=["GET", "HEAD"]),
        Route("/openapi.json", _openapi_endpoint(document), methods=["GET", "HEAD"]),
        *extra_routes,
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_problem})
    app.state.eventpatterns_active = c.active
    return app


def active_connections(app: Starlette) -> int:
    """Return how many WebSocket and SSE connections ``app`` serves now (for draining)."""
    return sum(count() for count in getattr(app.state, "eventpatterns_active", ()))


def _health(components: dict[str, Callable[[], bool]]) -> Callable[[Request], Awaitable[Response]]:
    from starlette.responses import JSONResponse

    async def health(request: Request) -> Response:
        states = {name: "ok" if alive() else "closed" for name, alive in components.items()}
        ok = all(state == "ok" for state in states.values())
        body = {"status": "ok" if ok else "unavailable", "components": states}
        return JSONResponse(
            body, status_code=200 if ok else 503, headers={"cache-control": "no-store"}
        )

    return health


def _openapi_endpoint(document: dict[str, Any]) -> Callable[[Request], Awaitable[Response]]:
    from starlette.responses import JSONResponse

    async def describe(request: Request) -> Response:
        root = request.scope.get("root_path", "")
        # Mounted under a prefix, the operations are relative to it (OpenAPI servers).
        body = {**document, "servers": [{"url": root or "/"}]}
        return JSONResponse(body)

    return describe


async def _http_problem(request: Request, exc: Exception) -> Response:
    """The router's own 404 and 405 answers, as problem documents."""
    from starlette.exceptions import HTTPException

    from ._asgi import problem

    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    titles = {404: "Not Found", 405: "Method Not Allowed"}
    answer = problem(status, titles.get(status, "Error"), str(detail))
    if isinstance(exc, HTTPException) and exc.headers:
        answer.headers.update(exc.headers)
    return answer
