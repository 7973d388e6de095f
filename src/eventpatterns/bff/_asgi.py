"""Aggregated views as Starlette routes (extra ``server``).

``GET <view.path>`` authenticates the caller with a real-time authorizer (from
``Authorization: Bearer``, ``X-Api-Key`` or ``?token=``), runs the view's parts at once,
checks the view's ``scope`` (``403`` without it), and answers ``200`` with every part's
result (``"complete": false`` when some failed:
a partial response), or a ``502`` problem when a ``required`` part failed. Errors are
RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import AuthenticationFailed, ConfigurationError
from ._aggregate import Aggregator, View

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from ..realtime import Authorizer

__all__ = ["problem", "view_routes"]


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    """Return an RFC 9457 ``application/problem+json`` response."""
    from starlette.responses import JSONResponse

    headers = {"cache-control": "no-store"}
    if status == 401:  # RFC 9110 §11.6.1: a 401 names the scheme it wants
        headers["www-authenticate"] = "Bearer"
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail[:2000]}
    return JSONResponse(
        {**body, **extra},
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


def view_routes(
    aggregator: Aggregator,
    views: Iterable[View],
    *,
    authorizer: Authorizer | None = None,
) -> list[BaseRoute]:
    """Return one ``GET`` route per view.

    Args:
        aggregator: Runs the parts (its upstreams must cover every part).
        views: The views to serve.
        authorizer: Authenticates each request; ``None`` serves anonymous callers
            (``principal`` is then ``anonymous``).

    Returns:
        Starlette routes, to mount in an app.

    Raises:
        ConfigurationError: Two views share a name or path, or a part names an unknown
            upstream.
    """
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ..realtime.asgi import credentials_from

    routes: list[BaseRoute] = []
    seen: set[str] = set()
    for view in views:
        if view.name in seen or view.path in seen:
            raise ConfigurationError(f"two views share the name or path of {view.name!r}")
        seen.update((view.name, view.path))
        aggregator.check(view)

        async def endpoint(request: Request, view: View = view) -> Response:
            principal = "anonymous"
            scopes: frozenset[str] = frozenset()
            if authorizer is not None:
                credentials = credentials_from(
                    {k.lower(): v for k, v in request.headers.items()}, dict(request.query_params)
                )
                try:
                    caller = await authorizer(credentials)
                except AuthenticationFailed as exc:
                    return problem(401, "Unauthorized", str(exc), reason=exc.reason)
                principal, scopes = caller.id, caller.scopes
            if view.scope is not None and view.scope not in scopes:
                return problem(403, "Forbidden", f"view {view.name!r} needs scope {view.scope!r}")
            values = {k: str(v) for k, v in request.path_params.items()}
            values["principal"] = principal
            result = await aggregator.fetch(view, values)
            failed = [p.name for p in view.parts if p.required and not result.parts[p.name].ok]
            if failed:
                return problem(
                    502,
                    "Bad Gateway",
                    f"required parts failed: {', '.join(failed)}",
                    parts={n: result.parts[n].to_dict() for n in failed},
                )
            return JSONResponse(result.to_dict(), headers={"cache-control": "no-store"})

        routes.append(Route(view.path, endpoint, methods=["GET"], name=f"bff-view-{view.name}"))
    return routes
