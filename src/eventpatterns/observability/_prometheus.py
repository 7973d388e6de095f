"""Prometheus text for a :class:`Metrics`: a collector bridging it at scrape time, an ASGI app.

``prometheus-client`` (extra ``server``) is imported when a collector or app is made,
never at ``import eventpatterns``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

import anyio

from ..errors import MissingDependency
from ._metrics import Metrics
from ._metrics import metrics as default_metrics

__all__ = ["MetricsCollector", "metrics_app"]

logger = logging.getLogger("eventpatterns.observability")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Longest a scrape waits for the async sources (group lag) before answering with
#: the values cached before.
REFRESH_TIMEOUT = 5.0


def _prometheus() -> Any:
    try:
        import prometheus_client
        import prometheus_client.core
    except ImportError as exc:  # pragma: no cover - installed with the server extra
        raise MissingDependency("prometheus-client", extra="server") from exc
    return prometheus_client


class MetricsCollector:
    """A ``prometheus-client`` collector that reads a :class:`Metrics` at each scrape.

    Register it in any ``CollectorRegistry`` (``prometheus_client.REGISTRY.register(
    MetricsCollector())``) to expose eventpatterns' metrics beside your own. It reads
    the registry's snapshot (counters, gauge callbacks, the sources' cached values);
    :func:`metrics_app` also refreshes the sources first.

    Args:
        metrics: The registry to read (default: :data:`eventpatterns.observability.metrics`).

    Raises:
        MissingDependency: ``prometheus-client`` is not installed.
    """

    def __init__(self, metrics: Metrics | None = None) -> None:
        self._core = _prometheus().core
        self.metrics = default_metrics if metrics is None else metrics

    def describe(self) -> list[Any]:
        """Describe nothing up front: the families are built at each scrape."""
        return []

    def collect(self) -> Iterator[Any]:
        """Yield one metric family per known metric, with every value recorded."""
        core = self._core
        snapshot = self.metrics.snapshot()
        by_name: dict[str, list[tuple[tuple[str, ...], float]]] = {}
        for (name, labels), value in snapshot.items():
            by_name.setdefault(name, []).append((tuple(v for _, v in labels), value))
        for spec in self.metrics.specs.values():
            family_type = (
                core.CounterMetricFamily if spec.kind == "counter" else core.GaugeMetricFamily
            )
            family = family_type(spec.name, spec.help, labels=list(spec.labels))
            for values, value in sorted(by_name.get(spec.name, [])):
                family.add_metric(list(values), value)
            yield family


def metrics_app(metrics: Metrics | None = None) -> ASGIApp:
    """Return an ASGI app answering ``GET`` with the metrics as Prometheus text.

    Each scrape first awaits :meth:`Metrics.refresh` (bounded by
    :data:`REFRESH_TIMEOUT`; the async sources, such as the consumer groups' lag, run
    on the app's event loop, which must be the bus's), then renders every metric of
    :data:`~eventpatterns.observability.METRICS` through ``prometheus-client``.
    Mount it at ``/metrics``: ``Mount("/metrics", metrics_app())`` in Starlette, or
    ``create_app(bus, metrics=metrics_app())``.

    Args:
        metrics: The registry to serve (default: :data:`eventpatterns.observability.metrics`).

    Raises:
        MissingDependency: ``prometheus-client`` is not installed.

    Example:
        ```python
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from eventpatterns.observability.asgi import metrics_app

        app = Starlette(routes=[Mount("/metrics", metrics_app())])
        ```
    """
    return _MetricsApp(default_metrics if metrics is None else metrics)


class _MetricsApp:
    """:func:`metrics_app`'s ASGI app.

    An object, not a function, so that Starlette's ``Route("/metrics", endpoint=app)``
    mounts it as an ASGI app.
    """

    def __init__(self, metrics: Metrics) -> None:
        prometheus = _prometheus()
        self.metrics = metrics
        self._generate = prometheus.generate_latest
        self._registry = prometheus.CollectorRegistry(auto_describe=False)
        self._registry.register(MetricsCollector(metrics))
        self._content_type = prometheus.CONTENT_TYPE_LATEST.encode("latin-1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return  # a WebSocket here is refused by the server (never accepted)
        method = scope.get("method")
        if method not in ("GET", "HEAD"):
            allow = [(b"allow", b"GET, HEAD")]
            await _answer(send, 405, b"text/plain; charset=utf-8", b"method not allowed\n", allow)
            return
        with anyio.move_on_after(REFRESH_TIMEOUT) as refreshing:
            await self.metrics.refresh()
        if refreshing.cancelled_caught:
            logger.warning("metrics refresh took over %ss; serving cached values", REFRESH_TIMEOUT)
        body = self._generate(self._registry)
        await _answer(send, 200, self._content_type, body, head=method == "HEAD")


async def _answer(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    head: bool = False,
) -> None:
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    await send(
        {"type": "http.response.start", "status": status, "headers": headers + (extra or [])}
    )
    await send({"type": "http.response.body", "body": b"" if head else body})
