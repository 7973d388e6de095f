"""``eventpatterns serve``: the gateway on uvicorn + Starlette, WebSocket and SSE on one port.

uvicorn serves a Starlette app with three routes: the WebSocket endpoint at ``/ws``,
the SSE endpoint at ``/events`` and ``POST /publish``. (The standalone ``websockets``
server cannot stream an SSE response, so one port for both means an HTTP server.)

Publishing: ``POST /publish`` takes one CloudEvent (structured mode,
``application/cloudevents+json``, or binary mode with ``ce-*`` headers) and answers
``202 {"position": ...}``. With an authorizer it needs a principal with the
``publish`` scope (401 without credentials, 403 without the scope); in the open
mode anyone who reaches the port may publish, which is why the open mode listens
on a loopback address unless ``--allow-anonymous`` says otherwise. With a Redis bus,
any other process may also publish with ``EventBus.from_url("redis://...")``.

Shutdown: SIGTERM or SIGINT closes every connection with 1001 (going away), waits
for them (bounded), then stops uvicorn; the process exits with status 0.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import AuthenticationFailed, EventTooLarge, InvalidEvent
from ._asgi import (
    Receive,
    Scope,
    Send,
    _problem,
    _SSEEndpoint,
    _WebSocketEndpoint,
    credentials_from,
)

if TYPE_CHECKING:
    from ._auth import Authorizer, Credentials, Principal
    from ._gateway import Gateway
    from ._limits import Limits

__all__ = ["ServeOptions", "build_app", "is_loopback", "run"]

#: The largest ``POST /publish`` body read.
MAX_PUBLISH_BODY = 1024 * 1024
#: The scope a principal needs to publish.
PUBLISH_SCOPE = "publish"


@dataclass(frozen=True)
class ServeOptions:
    """What ``eventpatterns serve`` was asked for."""

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


async def _anonymous(credentials: Credentials) -> Principal:
    """The open mode's authorizer for the jobs routes: everyone is ``anonymous``."""
    from ._gateway import ANONYMOUS

    return ANONYMOUS


def is_loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine (``localhost``, ``127.x``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _PublishEndpoint:
    """``POST /publish``: one CloudEvent onto the gateway's bus (an ASGI app)."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        from ..core import Event

        if scope["type"] != "http":  # pragma: no cover - routed as HTTP only
            return
        headers: dict[str, str] = {}
        for name, value in scope.get("headers", ()):
            headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
        if self.gateway.authorizer is not None:
            credentials = credentials_from(headers, {})
            try:
                principal = await self.gateway.authorizer(credentials)
            except AuthenticationFailed as exc:
                await _problem(send, 401, "Unauthorized", str(exc)[:200])
                return
            if PUBLISH_SCOPE not in principal.scopes:
                detail = f"publishing needs the {PUBLISH_SCOPE!r} scope"
                await _problem(send, 403, "Forbidden", detail)
                return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > MAX_PUBLISH_BODY:
                detail = f"at most {MAX_PUBLISH_BODY} bytes"
                await _problem(send, 413, "Content Too Large", detail)
                return
            if not message.get("more_body", False):
                break
        try:
            event = Event.from_http(headers, bytes(body))
            position = await self.gateway.bus.publish(event)
        except InvalidEvent as exc:
            await _problem(send, 400, "Bad Request", str(exc)[:500])
            return
        except EventTooLarge as exc:
            await _problem(send, 413, "Content Too Large", str(exc)[:500])
            return
        answer = json.dumps({"position": position, "id": event.id}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 202,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": answer})


class _App:
    """The app of ``eventpatterns serve`` and a count of the connections it serves."""

    def __init__(self, gateway: Gateway, extra: Sequence[Any] = ()) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route, WebSocketRoute

        self.websocket = _WebSocketEndpoint(gateway)
        self.sse = _SSEEndpoint(gateway, retry=3000)
        self.app = Starlette(
            routes=[
                WebSocketRoute("/ws", self.websocket),
                Route("/events", self.sse, methods=["GET", "HEAD"]),
                Route("/publish", _PublishEndpoint(gateway), methods=["POST"]),
                *extra,
            ]
        )

    @property
    def active(self) -> int:
        return self.websocket.active + self.sse.active


def build_app(gateway: Gateway) -> Any:
    """Return the Starlette app of ``eventpatterns serve``: ``/ws``, ``/events``, ``/publish``."""
    return _App(gateway).app


def _urls(sock: socket.socket) -> tuple[str, str, str]:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    base = f"{host}:{port}"
    return f"ws://{base}/ws", f"http://{base}/events", f"http://{base}/publish"


async def run(options: ServeOptions, *, announce: Callable[[str], None] = print) -> None:
    """Serve until SIGTERM or SIGINT; then close every connection with 1001 and return.

    Raises:
        ConfigurationError: A bad bus URL.
        MissingDependency: uvicorn or Starlette missing (extra ``server``).
    """
    from ..bus import EventBus
    from ..errors import MissingDependency
    from ._gateway import Gateway

    try:
        import starlette  # noqa: F401
        import uvicorn
    except ImportError as exc:
        raise MissingDependency(exc.name or "uvicorn", extra="server") from exc

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # run() handles the signals: connections first, then uvicorn

    sock = socket.create_server(
        (options.host, options.port),
        family=socket.AF_INET6 if ":" in options.host else socket.AF_INET,
    )
    with sock:
        bus = EventBus.from_url(options.bus)
        auth, presence = options.authorizer, None
        if options.demo:  # a guest name per tab (open mode), presence, the demo job kind
            from ..bff._demo import demo_gateway, serve_demo

            auth, presence = demo_gateway(options.authorizer)
        async with (
            bus,
            Gateway(bus, authorizer=auth, limits=options.limits, presence=presence) as gateway,
            contextlib.AsyncExitStack() as stack,
        ):
            extra: list[Any] = []
            if options.jobs is not None:
                from ..jobs._serve import serve_jobs

                host, port = sock.getsockname()[:2]
                host = f"[{host}]" if ":" in host else host
                extra = await stack.enter_async_context(
                    serve_jobs(
                        options.jobs,
                        bus,
                        bus_url=options.bus,
                        authorizer=options.authorizer or _anonymous,
                        base_url=f"http://{host}:{port}",
                        blobs_dir=options.blobs_dir,
                    )
                )
            if options.demo:
                demo = serve_demo(bus, gateway, bus_url=options.bus, address=sock.getsockname())
                extra = [*extra, *await stack.enter_async_context(demo)]
            app = _App(gateway, extra)
            config = uvicorn.Config(
                app.app,
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
                    ws_url, sse_url, publish_url = _urls(sock)
                    announce(f"WebSocket: {ws_url}")
                    announce(f"SSE:       {sse_url}")
                    announce(f"Publish:   POST {publish_url}")
                    if options.jobs is not None:
                        announce(f"Jobs:      {publish_url.removesuffix('/publish')}/jobs")
                    if options.demo:
                        announce(f"Demo:      {publish_url.removesuffix('publish')}")
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
                        while app.active:  # noqa: ASYNC110
                            await anyio.sleep(0.02)
                    server.should_exit = True
