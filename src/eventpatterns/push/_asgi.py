"""HTTP routes for a browser or an app to register its push device (extra ``server``).

Plain ASGI callables (starlette's ``ASGIApp`` contract); only :func:`device_routes`
imports Starlette, for its path matching. Every request is authenticated by one of the
real-time gateway's authorizers (:data:`~eventpatterns.realtime.Authorizer`), from
``Authorization: Bearer``, ``X-Api-Key`` or ``?token=``, and acts on the principal's
own devices only: another user's device answers ``404``, exactly as a device that
does not exist, so ids cannot be probed. Errors are RFC 9457 problem documents
(``application/problem+json``) whose extension member ``field`` names the offending
field of a refused registration.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..core import Clock, SystemClock, is_json_content_type
from ..errors import (
    ArgumentTypeError,
    AuthenticationFailed,
    BackendUnavailable,
    ConfigurationError,
    InvalidDevice,
    LimitExceeded,
)
from ..realtime._asgi import _headers, _query, credentials_from
from ._devices import Platform, Registration
from ._devices_json import device_to_json, registration_from_json
from ._registry import DeviceRegistry

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..realtime import Authorizer

__all__ = ["KNOWN_PUSH_SERVICES", "device_endpoint", "device_routes"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Hosts (and their subdomains) of the browsers' push services: Chrome, Edge, Firefox,
#: Safari. A Web Push endpoint elsewhere is refused by default, so that a client cannot
#: make the server POST to an address of its choosing (server-side request forgery).
KNOWN_PUSH_SERVICES = (
    "fcm.googleapis.com",
    "updates.push.services.mozilla.com",
    "notify.windows.com",
    "push.apple.com",
)

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    503: "Service Unavailable",
}
_ALLOW = {"collection": "GET, POST", "item": "GET, DELETE", "topics": "PUT"}


class _Problem(Exception):
    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        self.status = status
        self.detail = detail
        self.extra = extra
        super().__init__(detail)


async def _send_json(
    send: Send,
    status: int,
    body: Any,
    *,
    problem: bool = False,
    headers: dict[str, str] | None = None,
) -> None:
    data = b"" if body is None else json.dumps(body, ensure_ascii=True).encode()
    kind = b"application/problem+json" if problem else b"application/json"
    raw = [(b"cache-control", b"no-store"), (b"content-length", str(len(data)).encode())]
    if body is not None:
        raw.append((b"content-type", kind))
    for name, value in (headers or {}).items():
        raw.append((name.encode("latin-1"), value.encode("latin-1")))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def _read_json(scope: Scope, receive: Receive, limit: int) -> Any:
    headers = _headers(scope)
    if not is_json_content_type(headers.get("content-type", "none")):
        raise _Problem(415, "send the body as application/json")
    declared = headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _Problem(413, f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Problem(400, "the client went away mid-body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _Problem(413, f"the body is over {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError) as exc:
        raise _Problem(400, f"the body is not JSON ({str(exc)[:100]})") from None


def _host_allowed(endpoint: str, hosts: Collection[str] | None) -> bool:
    if hosts is None:
        return True
    host = (urlsplit(endpoint).hostname or "").lower()
    return any(host == h or host.endswith("." + h) for h in hosts)


class _Routes:
    """What the three routes share: the registry, the authorizer and the settings."""

    def __init__(
        self,
        registry: DeviceRegistry,
        authorizer: Authorizer,
        clock: Clock,
        endpoint_hosts: Collection[str] | None,
        max_body: int,
    ) -> None:
        self.registry = registry
        self.authorizer = authorizer
        self.clock = clock
        self.endpoint_hosts = None if endpoint_hosts is None else tuple(endpoint_hosts)
        self.max_body = max_body

    async def collection(self, user: str, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "GET":
            topic = _query(scope).get("topic")
            devices = await self.registry.devices(user, topic=topic)
            await _send_json(send, 200, {"devices": [device_to_json(d) for d in devices]})
            return
        registration = registration_from_json(await _read_json(scope, receive, self.max_body))
        self._check_endpoint(registration)
        device = await self.registry.register(user, registration, now=self.clock.time())
        created = device.created_at == device.registered_at
        location = f"{scope['path'].rstrip('/')}/{device.id}"
        await _send_json(
            send,
            201 if created else 200,
            device_to_json(device),
            headers={"location": location} if created else None,
        )

    def _check_endpoint(self, registration: Registration) -> None:
        if registration.platform is Platform.WEBPUSH and not _host_allowed(
            registration.token, self.endpoint_hosts
        ):
            raise InvalidDevice(
                "the endpoint's host is not a push service this server sends to",
                field="token",
            )

    async def item(
        self, user: str, device_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        if scope["method"] == "DELETE":
            if not await self.registry.unregister(user, device_id):
                raise _Problem(404, "no such device")
            await _send_json(send, 204, None)
            return
        device = await self.registry.get(device_id)
        if device is None or device.user != user:
            raise _Problem(404, "no such device")
        await _send_json(send, 200, device_to_json(device))

    async def topics(
        self, user: str, device_id: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        body = await _read_json(scope, receive, self.max_body)
        if not isinstance(body, dict) or set(body) != {"topics"}:
            raise _Problem(400, 'the body is {"topics": [...]}', field="topics")
        if not isinstance(body["topics"], list):
            raise InvalidDevice("is a list", field="topics")
        device = await self.registry.set_topics(user, device_id, body["topics"])
        if device is None:
            raise _Problem(404, "no such device")
        await _send_json(send, 200, device_to_json(device))


class _Endpoint:
    """One route's ASGI app (a class, so that Starlette routes it as an app)."""

    def __init__(self, routes: _Routes, kind: str) -> None:
        self.routes = routes
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "HTTP only"})
            return
        try:
            await self._handle(scope, receive, send)
        except _Problem as exc:
            await self._problem(send, exc.status, exc.detail, exc.extra)
        except (InvalidDevice, ArgumentTypeError, ConfigurationError) as exc:
            extra = {"field": exc.field} if isinstance(exc, InvalidDevice) else {}
            await self._problem(send, 400, str(exc)[:500], extra)
        except LimitExceeded as exc:
            await self._problem(send, 409, str(exc), {"limit": exc.limit})
        except BackendUnavailable:
            await self._problem(send, 503, "the device registry is unavailable; try again")

    async def _problem(
        self, send: Send, status: int, detail: str, extra: dict[str, Any] | None = None
    ) -> None:
        body = {"type": "about:blank", "title": _TITLES[status], "status": status}
        body.update(detail=detail, **(extra or {}))
        headers: dict[str, str] = {}
        if status == 401:  # RFC 9110 section 11.6.1: a 401 names the scheme it wants
            headers["www-authenticate"] = "Bearer"
        if status == 405:
            headers["allow"] = _ALLOW[self.kind]
        if status == 503:
            headers["retry-after"] = "1"
        await _send_json(send, status, body, problem=True, headers=headers)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method", "GET")
        allowed = _ALLOW[self.kind].split(", ")
        if method not in allowed:
            raise _Problem(405, f"use {_ALLOW[self.kind]}")
        credentials = credentials_from(_headers(scope), _query(scope))
        try:
            principal = await self.routes.authorizer(credentials)
        except AuthenticationFailed as exc:
            raise _Problem(401, str(exc)[:200], reason=exc.reason) from None
        user = principal.id
        if self.kind == "collection":
            await self.routes.collection(user, scope, receive, send)
            return
        device_id = str(scope.get("path_params", {}).get("device_id", ""))
        if self.kind == "item":
            await self.routes.item(user, device_id, scope, receive, send)
        else:
            await self.routes.topics(user, device_id, scope, receive, send)


def device_endpoint(
    registry: DeviceRegistry,
    *,
    authorizer: Authorizer,
    kind: str = "collection",
    clock: Clock | None = None,
    endpoint_hosts: Collection[str] | None = KNOWN_PUSH_SERVICES,
    max_body: int = 16_384,
) -> ASGIApp:
    """Return the ASGI app of one of the device routes (see :func:`device_routes`).

    Args:
        registry: Where devices are kept.
        authorizer: Turns the request's credentials into the principal whose devices
            the request acts on.
        kind: ``"collection"`` (``GET``, ``POST``), ``"item"`` (``GET``, ``DELETE``,
            reading ``scope["path_params"]["device_id"]``) or ``"topics"`` (``PUT``).
        clock: Where registration times come from.
        endpoint_hosts: Hosts a Web Push endpoint may name (a host or any of its
            subdomains); ``None`` accepts any host.
        max_body: Largest request body accepted, in bytes.

    Raises:
        ConfigurationError: An unknown ``kind`` or a ``max_body`` below 1.
    """
    if kind not in _ALLOW:
        raise ConfigurationError(f"kind is 'collection', 'item' or 'topics', got {kind!r}")
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ConfigurationError(f"max_body must be a positive int, got {max_body!r}")
    routes = _Routes(registry, authorizer, clock or SystemClock(), endpoint_hosts, max_body)
    return _Endpoint(routes, kind)


def device_routes(
    registry: DeviceRegistry,
    *,
    authorizer: Authorizer,
    path: str = "/devices",
    clock: Clock | None = None,
    endpoint_hosts: Collection[str] | None = KNOWN_PUSH_SERVICES,
    max_body: int = 16_384,
) -> list[BaseRoute]:
    """Return Starlette routes to register, list and unregister the caller's devices.

    * ``POST {path}``: register (a body :func:`~eventpatterns.push.registration_from_json`
      reads, e.g. the browser's ``PushSubscription.toJSON()``); ``201 Created`` with
      ``Location`` for a device new to the caller, ``200`` for a registration again.
    * ``GET {path}``: the caller's devices (``?topic=`` for those consenting to it).
    * ``GET {path}/{id}``, ``DELETE {path}/{id}`` (``204``): one of the caller's devices.
    * ``PUT {path}/{id}/topics`` with ``{"topics": [...]}``: the consented topics.

    Answers ``400`` (malformed body or field), ``401`` (no or bad credentials),
    ``404`` (not the caller's device), ``405``, ``409`` (the caller holds
    ``max_devices``), ``413`` (body over ``max_body``), ``415`` (not JSON) and ``503``
    (registry unreachable), as problem documents. Arguments as for
    :func:`device_endpoint`; needs the ``server`` extra.

    Example:
        ```python
        from starlette.applications import Starlette

        app = Starlette(routes=device_routes(registry, authorizer=authorizer))
        ```
    """
    from starlette.routing import Route

    def app(kind: str) -> ASGIApp:
        return device_endpoint(
            registry,
            authorizer=authorizer,
            kind=kind,
            clock=clock,
            endpoint_hosts=endpoint_hosts,
            max_body=max_body,
        )

    base = path.rstrip("/")
    return [
        Route(base or "/", app("collection")),
        Route(base + "/{device_id}", app("item")),
        Route(base + "/{device_id}/topics", app("topics")),
    ]
