"""The dead-letter routes of the composed app: list, show, redrive and discard.

Over :meth:`EventBus.dead_letters <eventpatterns.bus.EventBus.dead_letters>`,
``get_dead_letter``, ``redrive`` and ``discard_dead_letters``:

* ``GET {path}/{group}?limit=N``: the group's dead letters, oldest first (``limit``
  1-1000, default 100);
* ``GET {path}/{group}/{id}``: one dead letter (``404`` if none);
* ``POST {path}/{group}/redrive`` and ``POST {path}/{group}/discard`` with
  ``{"ids": [...]}`` (those) or an empty body or ``{}`` (all): ``200 {"count": n}``.

Every route needs a principal holding the admin scope; without an authorizer (the
open mode) only a loopback client is admitted. Errors are problem documents.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    DeadLetterNotFound,
    GroupNotFound,
)
from ..realtime._asgi import Receive, Scope, Send, _query
from ._ingest import Refused, authorize_admin, read_body, send_json, send_problem

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..bus import DeadLetter, EventBus
    from ..realtime import Authorizer

__all__ = ["dead_letter_json", "dlq_routes"]

#: Largest body of a redrive or discard request.
MAX_IDS_BODY = 256 * 1024


def dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    """Return the JSON object a dead letter is shown as."""
    return {
        "id": letter.id,
        "group": letter.group,
        "position": letter.position,
        "error": letter.error,
        "attempts": letter.attempts,
        "failed_at": letter.failed_at,
        "event": letter.event.to_dict(),
    }


def _ids(body: bytes) -> list[str] | None:
    """The ``ids`` of a redrive or discard body (``None``: all)."""
    if not body.strip():
        return None
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(400, 'the body must be a JSON object like {"ids": [...]}') from None
    if not isinstance(document, dict) or set(document) - {"ids"}:
        raise Refused(400, "the body must be a JSON object with only the member 'ids'")
    ids = document.get("ids")
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
        raise Refused(400, "'ids' must be a list of dead letter ids (strings)", field="ids")
    return ids


class _Endpoint:
    """One dead-letter route (an ASGI app)."""

    def __init__(
        self, bus: EventBus, authorizer: Authorizer | None, admin_scope: str, kind: str
    ) -> None:
        self.bus = bus
        self.authorizer = authorizer
        self.admin_scope = admin_scope
        self.kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - routed as HTTP only
            return
        try:
            await authorize_admin(self.authorizer, scope, self.admin_scope)
            status, answer = await self.handle(scope, receive)
        except Refused as exc:
            await send_problem(send, exc)
            return
        except GroupNotFound as exc:
            await send_problem(send, Refused(404, str(exc)[:500]))
            return
        except DeadLetterNotFound as exc:
            await send_problem(send, Refused(404, str(exc)[:500]))
            return
        except ConfigurationError as exc:  # a group name no backend accepts
            await send_problem(send, Refused(400, str(exc)[:500]))
            return
        except (BackendUnavailable, BusClosed) as exc:
            await send_problem(send, Refused(503, f"the bus is unavailable: {str(exc)[:200]}"))
            return
        if status:
            await send_json(send, status, answer)

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        params = scope.get("path_params", {})
        group = str(params.get("group", ""))
        if self.kind == "list":
            raw = _query(scope).get("limit", "100")
            if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000):
                raise Refused(400, "?limit= must be an integer from 1 to 1000", field="limit")
            letters = await self.bus.dead_letters(group, limit=int(raw))
            return 200, {"group": group, "dead_letters": [dead_letter_json(x) for x in letters]}
        if self.kind == "show":
            letter = await self.bus.get_dead_letter(group, str(params.get("id", "")))
            return 200, dead_letter_json(letter)
        body = await read_body(receive, MAX_IDS_BODY)
        if body is None:
            return 0, None
        ids = _ids(body)
        if self.kind == "redrive":
            count = await self.bus.redrive(group, ids)
        else:
            count = await self.bus.discard_dead_letters(group, ids)
        return 200, {"group": group, "count": count}


def dlq_routes(
    bus: EventBus, *, authorizer: Authorizer | None, admin_scope: str, path: str = "/dlq"
) -> list[BaseRoute]:
    """Return the dead-letter routes (see the module docstring)."""
    from starlette.routing import Route

    base = path.rstrip("/")

    def app(kind: str) -> _Endpoint:
        return _Endpoint(bus, authorizer, admin_scope, kind)

    return [
        Route(f"{base}/{{group}}", app("list"), methods=["GET"]),
        Route(f"{base}/{{group}}/redrive", app("redrive"), methods=["POST"]),
        Route(f"{base}/{{group}}/discard", app("discard"), methods=["POST"]),
        Route(f"{base}/{{group}}/{{id}}", app("show"), methods=["GET"]),
    ]
