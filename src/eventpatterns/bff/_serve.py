"""``eventpatterns serve``: the composed app on uvicorn, WebSocket and SSE on one port.

uvicorn serves :func:`eventpatterns.bff.asgi.create_app`: the WebSocket endpoint at
``/ws``, the SSE endpoint at ``/events``, ``POST /publish``, the dead-letter routes at
``/dlq``, ``/healthz``, ``/metrics`` and ``/openapi.json`` (and the jobs' routes with
``--jobs``, the demo page with ``--demo``). (The standalone ``websockets`` server cannot
stream an SSE response, so one port for both means an HTTP server.) It lives in the
composition layer, beside the app it serves.

Publishing: ``POST /publish`` takes CloudEvents (structured mode,
``application/cloudevents+json``, binary mode with ``ce-*`` headers, or a batch) and
answers ``202 {"position": ...}``. With an authorizer it needs a principal with the
``publish`` scope (401 without credentials, 403 without the scope); in the open
mode anyone who reaches the port may publish, which is why the open mode listens
on a loopback address unless ``--allow-anonymous`` says otherwise. With a Redis bus,
any other process may also publish with ``EventBus.from_url("redis://...")``.

Shutdown: SIGTERM or SIGINT closes every connection with 1001 (going away), waits
for them (bounded), then stops uvicorn; the process exits with status 0.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ..core._net import is_loopback

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..realtime import Authorizer, Limits

__all__ = ["ServeOptions", "is_loopback", "run"]


@dataclass(frozen=True)
class ServeOptions:
    """What ``eventpatterns serve`` was asked for.

    ``bus`` is the backend URL (``--backend``, alias ``--bus``): ``memory://``,
    ``redis://host:6379/0`` or ``aws://...``.
    """

    host: str = "127.0.0.1"
    port: int = 8000
    bus: str = "memory://"
    authorizer: Authorizer | None = None
    compression: bool = False
    limits: Limits | None = None
    shutdown_timeout: float = 5.0
    jobs: str | None = None
    blobs_dir: str | None = None
    demo: bool = False


def _urls(sock: socket.socket) -> tuple[str, str, str]:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    base = f"{host}:{port}"
    return f"ws://{base}/ws", f"http://{base}/events", f"http://{base}/publish"


async def run(options: ServeOptions, *, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or SIGINT; then close every connection with 1001 and return.

    Raises:
        ConfigurationError: A bad backend URL, or a bad ``--jobs`` setup.
        MissingDependency: uvicorn or Starlette missing (extra ``server``).
    """
    from ..bus import EventBus
    from ..errors import MissingDependency
    from ..realtime import Gateway
    from ._app import active_connections, create_app

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise MissingDependency(exc.name or "uvicorn", extra="server") from exc

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # run() handles the signals: connections first, then uvicorn

    if options.jobs is not None:
        from ..jobs._serve import check_backend

        check_backend(options.bus)
    bus = EventBus.from_url(options.bus)  # a bad URL is reported before the port is taken
    sock = socket.create_server(
        (options.host, options.port),
        family=socket.AF_INET6 if ":" in options.host else socket.AF_INET,
    )
    with sock:
        ws_url, sse_url, publish_url = _urls(sock)
        base_url = publish_url.removesuffix("/publish")
        auth, presence = options.authorizer, None
        if options.demo:  # a guest name per tab (open mode), presence, the demo job kind
            from ._demo import demo_gateway, serve_demo

            auth, presence = demo_gateway(options.authorizer)
        async with (
            bus,
            Gateway(bus, authorizer=auth, limits=options.limits, presence=presence) as gateway,
            contextlib.AsyncExitStack() as stack,
        ):
            components: dict[str, Any] = {}
            if options.jobs is not None:
                from ..jobs._serve import running_jobs

                jobs = running_jobs(
                    options.jobs,
                    bus,
                    bus_url=options.bus,
                    base_url=base_url,
                    blobs_dir=options.blobs_dir,
                )
                tracker, blobs, signer = await stack.enter_async_context(jobs)
                components.update(tracker=tracker, blobs=blobs, signer=signer)
            # Routes of optional features (e.g. --demo) are gathered here, mounted last.
            extra_routes: list[BaseRoute] = []
            if options.demo:  # its own tracker, /jobs and /blobs (so --demo refuses --jobs)
                demo = serve_demo(bus, gateway, bus_url=options.bus, address=sock.getsockname())
                extra_routes.extend(await stack.enter_async_context(demo))
            app = create_app(
                bus,
                gateway=gateway,
                authorizer=auth,
                extra_routes=extra_routes,
                **components,
            )
            config = uvicorn.Config(
                app,
                lifespan="off",
                ws="websockets-sansio",
                ws_per_message_deflate=options.compression,
                log_level="warning",
            )
            server = Server(config)
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(server.serve, [sock])
                    with anyio.fail_after(30):
                        # uvicorn has no readiness hook
                        while not server.started:  # noqa: ASYNC110
                            await anyio.sleep(0.01)
                    announce(f"WebSocket: {ws_url}")
                    announce(f"SSE:       {sse_url}")
                    announce(f"Publish:   POST {publish_url}")
                    if options.jobs is not None:
                        announce(f"Jobs:      {base_url}/jobs")
                    if options.demo:
                        announce(f"Demo:      {base_url}/")
                    announce(f"Health:    {base_url}/healthz")
                    announce(f"Metrics:   {base_url}/metrics")
                    announce(f"OpenAPI:   {base_url}/openapi.json")
                    if options.authorizer is None:
                        print(
                            "eventpatterns serve: OPEN MODE: no authentication; anyone who can"
                            " reach this port may subscribe to every event and publish"
                            " (for development only)",
                            file=sys.stderr,
                            flush=True,
                        )
                    async for _ in signals:
                        break
                    await gateway.aclose()  # 1001 to every connection
                    with anyio.move_on_after(options.shutdown_timeout):
                        # Their closing handshakes (the endpoints count them; no event).
                        while active_connections(app):  # noqa: ASYNC110
                            await anyio.sleep(0.02)
                    server.should_exit = True
