"""The OpenAPI 3.1 document of the composed app, built from what it mounts.

Each part of :func:`~eventpatterns.bff.asgi.create_app` contributes the operations of
the routes it mounts (hand-written here, next to each other, so one place says what the
HTTP surface is); views and ``extra_routes`` are described from their Starlette route
(path, methods, path parameters). The WebSocket endpoint is not an HTTP operation: the
document names it in ``x-websocket``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

__all__ = ["Paths", "document", "route_paths"]

#: ``{path: {method: operation}}``.
Paths = dict[str, dict[str, dict[str, Any]]]

_PARAM = re.compile(r"{([A-Za-z_][A-Za-z0-9_]*)(?::[A-Za-z_]+)?}")
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_JSON_OBJECT = {"application/json": {"schema": {"type": "object"}}}
_EVENT = {"$ref": "#/components/schemas/CloudEvent"}


def _template(path: str) -> str:
    """Starlette's ``{key:path}`` as OpenAPI's ``{key}``."""
    return _PARAM.sub(lambda m: "{" + m[1] + "}", path)


def _params(path: str, query: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    found = [
        {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
        for n in _PARAM.findall(path)
    ]
    for name, text in (query or {}).items():
        found.append(
            {"name": name, "in": "query", "description": text, "schema": {"type": "string"}}
        )
    return found


def op(
    path: str,
    summary: str,
    responses: Mapping[str, str],
    *,
    query: Mapping[str, str] | None = None,
    body: Mapping[str, Any] | None = None,
    problems: Iterable[str] = (),
    content: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return one operation.

    ``responses`` maps a status to its description; each status in ``problems``
    answers the shared problem document.
    """
    out: dict[str, Any] = {"summary": summary}
    parameters = _params(path, query)
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = {"required": True, "content": dict(body)}
    answers: dict[str, Any] = {}
    for status, text in responses.items():
        answers[status] = {"description": text}
        if status.startswith("2") and status != "204":
            answers[status]["content"] = dict(content or _JSON_OBJECT)
    for status in problems:
        answers[status] = _PROBLEM
    out["responses"] = answers
    return out


def add(paths: Paths, path: str, method: str, operation: dict[str, Any]) -> None:
    """Add ``operation`` under ``path`` (Starlette syntax) and ``method``."""
    template = _template(path)
    operation.setdefault("operationId", f"{method}{re.sub(r'[^A-Za-z0-9]+', '_', template)}")
    paths.setdefault(template, {})[method.lower()] = operation


def route_paths(routes: Iterable[BaseRoute], *, tag: str) -> Paths:
    """Describe Starlette routes from what they expose: path, methods, path parameters."""
    from starlette.routing import Mount, Route

    paths: Paths = {}
    for route in routes:
        if isinstance(route, Mount):
            add(paths, route.path.rstrip("/") + "/{path}", "get", _mounted(route.path, tag))
        elif isinstance(route, Route):
            for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
                described = op(route.path, route.name or route.path, {"200": "OK"})
                described["tags"] = [tag]
                add(paths, route.path, method.lower(), described)
    return paths


def _mounted(path: str, tag: str) -> dict[str, Any]:
    described = op(path + "/{path}", f"the app mounted at {path}", {"200": "OK"})
    described["tags"] = [tag]
    return described


def document(title: str, version: str, paths: Paths, *, websocket: str | None) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document of ``paths``."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {p: paths[p] for p in sorted(paths)},
        "components": {
            "schemas": {
                "Problem": {
                    "type": "object",
                    "description": "An RFC 9457 problem document.",
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                    },
                    "required": ["type", "title", "status"],
                },
                "CloudEvent": {
                    "type": "object",
                    "description": "A CloudEvents 1.0 event (structured mode).",
                    "properties": {
                        "specversion": {"const": "1.0"},
                        "id": {"type": "string"},
                        "type": {"type": "string"},
                        "source": {"type": "string"},
                    },
                    "required": ["specversion", "id", "type", "source"],
                },
            },
            "responses": {
                "Problem": {
                    "description": "An error, as an RFC 9457 problem document.",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    },
                }
            },
        },
    }
    if websocket is not None:
        doc["x-websocket"] = {"path": websocket, "description": "the real-time gateway"}
    return doc


def event_bodies() -> dict[str, Any]:
    """The request bodies ``POST /publish`` takes."""
    return {
        "application/cloudevents+json": {"schema": _EVENT},
        "application/cloudevents-batch+json": {"schema": {"type": "array", "items": _EVENT}},
        "*/*": {"schema": {"description": "binary mode: the data, with ce-* headers"}},
    }


# -- what each component mounts ------------------------------------------------------------

_AUTH = ("401", "403")


def realtime_paths(paths: Paths) -> None:
    """``GET /events`` (the WebSocket ``/ws`` is named in ``x-websocket``)."""
    add(paths, "/events", "get", op(
        "/events", "Server-sent events of the subscriptions in ?subscribe=",
        {"200": "an event stream"},
        query={"subscribe": "a JSON subscription", "token": "credentials"},
        problems=("400", *_AUTH, "429", "503"),
        content={"text/event-stream": {"schema": {"type": "string"}}},
    ))  # fmt: skip


def ingest_paths(paths: Paths) -> None:
    """``POST /publish``."""
    add(paths, "/publish", "post", op(
        "/publish", "Publish CloudEvents (structured, binary or batched; idempotent on id)",
        {"202": "accepted: the id and the position of each event"},
        body=event_bodies(),
        problems=("400", *_AUTH, "413", "422", "503"),
    ))  # fmt: skip


def jobs_paths(paths: Paths, prefix: str = "/jobs") -> None:
    """The jobs routes (``eventpatterns.jobs.asgi.routes``)."""
    item = f"{prefix}/{{job_id}}"
    add(paths, prefix, "get", op(
        prefix, "List the caller's jobs", {"200": "a page of jobs"},
        query={"state": "only jobs in this state", "limit": "1-1000", "cursor": "next page"},
        problems=("400", "401"),
    ))  # fmt: skip
    # POST {prefix}/{kind} and GET {prefix}/{job_id} share one templated path in OpenAPI.
    submit = op(
        item, "Submit a job of the kind named in the path (job_id: the kind)",
        {"202": "the job, with Location"},
        body=_JSON_OBJECT, problems=("400", "401", "404", "413", "415"),
    )  # fmt: skip
    add(paths, item, "post", submit)
    add(paths, item, "get", op(
        item, "The job's state and progress (long poll: ?wait=)",
        {"200": "the job", "304": "not modified (If-None-Match)"},
        query={"wait": "seconds to wait for a change"}, problems=("400", "401", "404"),
    ))  # fmt: skip
    add(paths, item, "delete", op(
        item, "Cancel the job", {"200": "the job (already ended)", "202": "cancelling"},
        problems=("401", "404", "409"),
    ))  # fmt: skip
    add(paths, f"{item}/result", "get", op(
        f"{item}/result", "The job's result",
        {"200": "the result", "303": "see the signed URL of a large result"},
        problems=("401", "404", "409"),
    ))  # fmt: skip


def blob_paths(paths: Paths, path: str = "/blobs") -> None:
    """``GET /blobs/{key}`` (signed URLs)."""
    add(paths, f"{path}/{{key}}", "get", op(
        f"{path}/{{key}}", "A blob, by the URL the signer signed", {"200": "the blob"},
        query={"expires": "the URL's expiry", "signature": "its signature"},
        problems=("403", "404"), content={"application/octet-stream": {"schema": {}}},
    ))  # fmt: skip


def device_paths(paths: Paths, path: str = "/devices") -> None:
    """The push device routes (``eventpatterns.push.asgi.device_routes``)."""
    item = f"{path}/{{device_id}}"
    common = ("400", "401", "405", "503")
    add(paths, path, "get", op(
        path, "The caller's devices", {"200": "the devices"},
        query={"topic": "only devices consenting to it"}, problems=common,
    ))  # fmt: skip
    add(paths, path, "post", op(
        path, "Register a device", {"200": "registered again", "201": "registered"},
        body=_JSON_OBJECT, problems=(*common, "409", "413", "415"),
    ))  # fmt: skip
    add(paths, item, "get", op(item, "One device", {"200": "it"}, problems=(*common, "404")))
    add(paths, item, "delete", op(
        item, "Unregister a device", {"204": "gone"}, problems=(*common, "404")
    ))  # fmt: skip
    add(paths, f"{item}/topics", "put", op(
        f"{item}/topics", "Set the consented topics", {"200": "the device"},
        body=_JSON_OBJECT, problems=(*common, "404", "413", "415"),
    ))  # fmt: skip


def dlq_paths(paths: Paths, path: str = "/dlq") -> None:
    """The dead-letter routes."""
    group = f"{path}/{{group}}"
    ids = {"application/json": {"schema": {
        "type": "object", "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
    }}}  # fmt: skip
    problems = ("400", *_AUTH, "404", "503")
    add(paths, group, "get", op(
        group, "List a group's dead letters", {"200": "the dead letters"},
        query={"limit": "1-1000 (default 100)"}, problems=problems,
    ))  # fmt: skip
    add(paths, f"{group}/{{id}}", "get", op(
        f"{group}/{{id}}", "One dead letter", {"200": "it"}, problems=problems
    ))  # fmt: skip
    for action in ("redrive", "discard"):
        add(paths, f"{group}/{action}", "post", op(
            f"{group}/{action}", f"{action.capitalize()} dead letters (the ids, or all)",
            {"200": "how many"}, body=ids, problems=(*problems, "413"),
        ))  # fmt: skip


def health_paths(paths: Paths, *, metrics: bool) -> None:
    """``GET /healthz``, ``GET /openapi.json`` and ``GET /metrics``."""
    add(paths, "/healthz", "get", op(
        "/healthz", "Whether every component runs",
        {"200": "all run", "503": "a component is closed"},
    ))  # fmt: skip
    add(paths, "/openapi.json", "get", op("/openapi.json", "This document", {"200": "it"}))
    if metrics:
        text = {"text/plain": {"schema": {"type": "string"}}}
        add(paths, "/metrics", "get", op(
            "/metrics", "Metrics (Prometheus text)", {"200": "the metrics"}, content=text
        ))  # fmt: skip
