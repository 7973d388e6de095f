"""``POST /publish``: CloudEvents over HTTP onto the bus (an ASGI app).

Three content modes (CloudEvents HTTP binding 1.0, section 3):

* **structured**: ``Content-Type: application/cloudevents+json``, the body is the event;
* **binary**: any other content type, the attributes in ``ce-*`` headers, the body the data;
* **batched**: ``Content-Type: application/cloudevents-batch+json``, a JSON array of
  events (at most ``max_batch`` of them); all are published, in order, or none.

The answer is ``202 {"id": ..., "position": ...}`` (a batch: ``{"events": [...]}`` in
the order sent). **Idempotent on the event id**: the bus appends an id once within its
dedupe window (``EventBus.publish``; memory and Redis keep the window), so a client may
retry a publish whose answer it lost; the repeat is not appended again and answers the
same ``202`` with the original position. The bus does not say that an append was a
repeat, but a position is never given to two appends: when the endpoint published the
same id at the same position before (it remembers the last ``remember`` ids), the
answer adds ``"duplicate": true``. Without that member the event may still have been a
repeat (first published by another process, or long ago).

Validation: the envelope always (``400``); the data too when the event's ``type`` is
declared in the app's :class:`~eventpatterns.core.EventRegistry` (an
:class:`~eventpatterns.core.EventModel`): data that does not validate is a ``422``
problem whose ``errors`` give pydantic's ``loc``, ``msg`` and ``type`` (and the
``index`` of the event in a batch). Every error is an RFC 9457
``application/problem+json`` document; the endpoint never answers ``500`` for a
malformed request.
"""

from __future__ import annotations

import ipaddress
import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..errors import (
    AuthenticationFailed,
    BackendUnavailable,
    BusClosed,
    EventTooLarge,
    InvalidEvent,
    InvalidEventData,
)
from ..realtime._asgi import Receive, Scope, Send, _headers, _query, credentials_from

if TYPE_CHECKING:
    from ..bus import EventBus
    from ..core import Event, EventRegistry
    from ..realtime import Authorizer, Principal

__all__ = ["BATCH_CONTENT_TYPE", "PUBLISH_SCOPE", "IngestEndpoint", "authorize", "send_json"]

#: The scope a principal needs to publish.
PUBLISH_SCOPE = "publish"
#: The content type of a batch (CloudEvents HTTP binding, section 3.3).
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    422: "Unprocessable Content",
    503: "Service Unavailable",
}


class Refused(Exception):
    """A request answered with a problem document (status, detail, extension members)."""

    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


async def send_json(
    send: Send, status: int, body: Any, *, headers: Mapping[str, str] | None = None
) -> None:
    """Answer ``body`` as JSON (a problem document when ``status`` >= 400)."""
    data = json.dumps(body, ensure_ascii=True, separators=(",", ":")).encode()
    kind = b"application/problem+json" if status >= 400 else b"application/json"
    raw = [
        (b"content-type", kind),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
    ]
    raw += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


async def send_problem(send: Send, refused: Refused) -> None:
    """Answer an RFC 9457 problem document for ``refused``."""
    status = refused.status
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status}
    body.update(detail=refused.detail[:2000], **refused.extra)
    headers: dict[str, str] = {}
    if status == 401:  # RFC 9110 section 11.6.1: a 401 names the scheme it wants
        headers["www-authenticate"] = "Bearer"
    elif status == 503:
        headers["retry-after"] = "1"
    elif status == 405:
        headers["allow"] = str(refused.extra.get("allow", ""))
    await send_json(send, status, body, headers=headers)


def _loopback_client(scope: Scope) -> bool:
    client = scope.get("client")
    if not client:
        return False
    try:
        return ipaddress.ip_address(str(client[0])).is_loopback
    except ValueError:
        return str(client[0]) == "localhost"


async def authorize(authorizer: Authorizer | None, scope: Scope, needed: str) -> Principal | None:
    """Return the caller's principal if it holds the scope ``needed``.

    ``authorizer`` ``None`` is the open mode: the caller is not authenticated and
    ``None`` is returned.

    Raises:
        Refused: ``401`` without valid credentials, ``403`` without the scope.
    """
    if authorizer is None:
        return None
    credentials = credentials_from(_headers(scope), _query(scope))
    try:
        principal = await authorizer(credentials)
    except AuthenticationFailed as exc:
        raise Refused(401, str(exc)[:200], reason=exc.reason) from None
    if needed not in principal.scopes:
        raise Refused(403, f"this needs the {needed!r} scope")
    return principal


async def authorize_admin(authorizer: Authorizer | None, scope: Scope, needed: str) -> None:
    """Like :func:`authorize`, but the open mode admits loopback clients only."""
    if authorizer is None and not _loopback_client(scope):
        raise Refused(403, "without an authorizer, only a loopback client may use this route")
    await authorize(authorizer, scope, needed)


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """Read the request body (``None``: the client went away).

    Raises:
        Refused: ``413`` past ``limit`` bytes.
    """
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            raise Refused(413, f"the body is over {limit} bytes")
        if not message.get("more_body", False):
            return bytes(body)


class IngestEndpoint:
    """``POST /publish`` (an ASGI app; a class, so that Starlette routes it as an app).

    Args:
        bus: The entered bus events are published on.
        authorizer: Authenticates callers (scope ``publish``); ``None``: open mode.
        contracts: Declared event types whose data is validated.
        max_body: Largest body read, in bytes.
        max_batch: Most events in one batch.
        remember: How many published ids (and positions) to remember, to mark repeats.
    """

    def __init__(
        self,
        bus: EventBus,
        *,
        authorizer: Authorizer | None,
        contracts: EventRegistry | None,
        max_body: int,
        max_batch: int,
        remember: int = 10_000,
    ) -> None:
        self.bus = bus
        self.remember = remember
        self._published: OrderedDict[str, str] = OrderedDict()
        self.authorizer = authorizer
        self.contracts = contracts
        self.max_body = max_body
        self.max_batch = max_batch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008, "reason": "HTTP only"})
            return
        try:
            if scope.get("method") != "POST":
                raise Refused(405, "use POST", allow="POST")
            await authorize(self.authorizer, scope, PUBLISH_SCOPE)
            body = await read_body(receive, self.max_body)
            if body is None:
                return
            status, answer = await self.publish(_headers(scope), body)
        except Refused as exc:
            await send_problem(send, exc)
            return
        await send_json(send, status, answer)

    async def publish(self, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        """Decode, validate and publish; return the status and the JSON answer.

        Raises:
            Refused: Every way the request can be wrong (400, 413, 422, 503).
        """
        from ..core import Event

        media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        try:
            if media == BATCH_CONTENT_TYPE:
                events = Event.batch_from_http(headers, body)
                if not events:
                    raise Refused(400, "the batch is empty")
                if len(events) > self.max_batch:
                    raise Refused(413, f"a batch holds at most {self.max_batch} events")
            else:
                events = [Event.from_http(headers, body)]
            self.validate(events, batch=media == BATCH_CONTENT_TYPE)
            positions = await self.bus.publish_batch(events)
        except InvalidEvent as exc:
            raise Refused(400, str(exc)[:500]) from None
        except EventTooLarge as exc:
            raise Refused(413, str(exc)[:500], event_id=exc.event_id) from None
        except (BackendUnavailable, BusClosed) as exc:
            raise Refused(503, f"the bus is unavailable: {str(exc)[:200]}") from None
        results = [self._result(e.id, p) for e, p in zip(events, positions, strict=True)]
        if media == BATCH_CONTENT_TYPE:
            return 202, {"events": results}
        return 202, results[0]

    def _result(self, event_id: str, position: str) -> dict[str, Any]:
        """The answer for one event; a repeat of a remembered publish says so."""
        result: dict[str, Any] = {"id": event_id, "position": position}
        published = self._published
        if published.get(event_id) == position:
            result["duplicate"] = True
            published.move_to_end(event_id)
            return result
        published[event_id] = position
        published.move_to_end(event_id)
        if len(published) > self.remember:
            published.popitem(last=False)
        return result

    def validate(self, events: list[Event], *, batch: bool) -> None:
        """Check each event's data against its declared model, if it has one.

        Raises:
            Refused: ``422`` naming the event and pydantic's error locations.
        """
        if self.contracts is None:
            return
        for index, event in enumerate(events):
            model = self.contracts.get(event.type)
            if model is None:
                continue
            try:
                model.from_event(event)
            except InvalidEventData as exc:
                extra: dict[str, Any] = {"event_id": event.id, "errors": _jsonable(exc.errors)}
                if batch:
                    extra["index"] = index
                raise Refused(422, str(exc)[:500], **extra) from None


def _jsonable(errors: list[dict[str, object]]) -> list[dict[str, Any]]:
    """Return pydantic's errors with every ``loc`` item a JSON string or integer."""
    out = []
    for error in errors:
        loc = error.get("loc", ())
        items = loc if isinstance(loc, list | tuple) else [loc]
        out.append(
            {
                "loc": [i if isinstance(i, int) else str(i) for i in items],
                "msg": str(error.get("msg", "")),
                "type": str(error.get("type", "")),
            }
        )
    return out
