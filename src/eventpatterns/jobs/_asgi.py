"""The async request-reply HTTP pattern for jobs, as Starlette routes (extra ``server``).

``POST /jobs/{kind}`` answers ``202 Accepted`` with ``Location`` and ``Retry-After``;
``GET /jobs/{id}`` answers the job's status with an ``ETag`` (``304`` for
``If-None-Match`` when nothing changed) and an optional long poll ``?wait=``;
``GET /jobs/{id}/result`` answers the result, or ``303 See Other`` to a signed blob URL;
``DELETE /jobs/{id}`` cancels; ``GET /jobs`` lists the caller's jobs. The owner is the
authenticated principal (the real-time gateway's authorizers): another user's job is a
``404``, never a ``403``. Errors are RFC 9457 ``application/problem+json``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ..errors import (
    ArgumentTypeError,
    AuthenticationFailed,
    BackendUnavailable,
    BlobNotFound,
    ConfigurationError,
    InvalidJobInput,
    JobNotFound,
    LimitExceeded,
    UnknownJobKind,
)
from ._events import job_view
from ._files import content_disposition
from ._model import Job, JobState

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import BaseRoute

    from ..realtime import Authorizer, Principal
    from ._blobs import BlobStore, URLSigner
    from ._tracker import JobTracker

__all__ = ["blob_routes", "routes"]

#: Largest request body ``POST /jobs/{kind}`` reads, unless told otherwise.
DEFAULT_MAX_BODY = 1024 * 1024


class _Problem(Exception):
    def __init__(self, status: int, title: str, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra


def _problem_response(problem: _Problem) -> Response:
    from starlette.responses import JSONResponse

    body: dict[str, Any] = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail[:2000],
        **problem.extra,
    }
    headers = {"cache-control": "no-store"}
    if problem.status == 401:  # RFC 9110 §11.6.1: a 401 names the scheme it wants
        headers["www-authenticate"] = "Bearer"
    if problem.status == 503:
        headers["retry-after"] = "5"
    return JSONResponse(
        body, status_code=problem.status, headers=headers, media_type="application/problem+json"
    )


def _as_problem(exc: Exception) -> _Problem | None:
    """Map a library error to its problem (``None``: not one of ours, a bug)."""
    if isinstance(exc, _Problem):
        return exc
    if isinstance(exc, AuthenticationFailed):
        return _Problem(401, "Unauthorized", str(exc))
    if isinstance(exc, JobNotFound | UnknownJobKind):
        return _Problem(404, "Not Found", str(exc))
    if isinstance(exc, InvalidJobInput):
        errors = [{**e, "loc": [str(p) for p in e.get("loc", ())]} for e in exc.errors]  # type: ignore[attr-defined]
        return _Problem(422, "Unprocessable Content", str(exc), errors=errors)
    if isinstance(exc, LimitExceeded):
        return _Problem(413, "Content Too Large", str(exc))
    if isinstance(exc, ConfigurationError | ArgumentTypeError):
        return _Problem(400, "Bad Request", str(exc))
    if isinstance(exc, BackendUnavailable):
        return _Problem(503, "Service Unavailable", "the job store cannot be reached; retry")
    return None


Endpoint = Callable[["Request"], Awaitable["Response"]]


def _guarded(endpoint: Endpoint) -> Endpoint:
    async def run(request: Request) -> Response:
        try:
            return await endpoint(request)
        except Exception as exc:
            problem = _as_problem(exc)
            if problem is None:
                raise
            return _problem_response(problem)

    return run


async def _read_json(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _Problem(413, "Content Too Large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Problem(413, "Content Too Large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    kind = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if raw and kind != "application/json" and not kind.endswith("+json"):
        raise _Problem(415, "Unsupported Media Type", f"send application/json, not {kind[:100]!r}")
    if not raw:
        return None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise _Problem(400, "Bad Request", f"the body is not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise _Problem(400, "Bad Request", "the body's JSON is nested too deeply") from None
    except ValueError as exc:
        raise _Problem(400, "Bad Request", f"the body is not JSON: {str(exc)[:200]}") from None


def _etag(job: Job) -> str:
    return f'"v{job.version}"'


def _matches(header: str | None, job: Job) -> bool:
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or _etag(job) in tags


def _number(query: Mapping[str, str], name: str, *, maximum: float) -> float | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise _Problem(400, "Bad Request", f"?{name}= must be a number of seconds >= 0")
    return min(value, maximum)


class _Routes:
    def __init__(
        self,
        tracker: JobTracker,
        authorizer: Authorizer,
        *,
        prefix: str,
        retry_after: int,
        max_wait: float,
        max_body: int,
    ) -> None:
        self.tracker = tracker
        self.authorizer = authorizer
        self.prefix = prefix
        self.retry_after = retry_after
        self.max_wait = max_wait
        self.max_body = max_body

    async def principal(self, request: Request) -> Principal:
        from ..realtime.asgi import credentials_from

        credentials = credentials_from(
            {k.lower(): v for k, v in request.headers.items()}, dict(request.query_params)
        )
        return await self.authorizer(credentials)

    def body(self, job: Job) -> dict[str, Any]:
        view = job_view(job)
        links = {"self": f"{self.prefix}/{job.id}"}
        if job.state is JobState.SUCCEEDED:
            links["result"] = f"{self.prefix}/{job.id}/result"
        view["links"] = links
        return view

    def answer(self, job: Job, status: int = 200, **headers: str) -> Response:
        from starlette.responses import JSONResponse

        headers = {"etag": _etag(job), "cache-control": "no-cache", **headers}
        if not job.state.final:
            headers.setdefault("retry-after", str(self.retry_after))
        return JSONResponse(self.body(job), status_code=status, headers=headers)

    async def submit(self, request: Request) -> Response:
        principal = await self.principal(request)
        kind = request.path_params["kind"]
        if kind not in self.tracker.kinds:
            raise UnknownJobKind(kind, known=tuple(sorted(self.tracker.kinds)))
        payload = await _read_json(request, self.max_body)
        job = await self.tracker.submit(
            kind,
            payload,
            owner=principal.id,
            idempotency_key=request.headers.get("idempotency-key"),
        )
        return self.answer(job, 202, location=f"{self.prefix}/{job.id}")

    async def status(self, request: Request) -> Response:
        principal = await self.principal(request)
        job_id = request.path_params["job_id"]
        wait = _number(request.query_params, "wait", maximum=self.max_wait)
        job = await self.tracker.get(job_id, owner=principal.id)
        if job is None:
            raise JobNotFound(job_id)
        known = request.headers.get("if-none-match")
        if wait and not job.state.final:
            job = await self.long_poll(job, known, wait, principal.id)
        if _matches(known, job):
            from starlette.responses import Response as Plain

            return Plain(status_code=304, headers={"etag": _etag(job)})
        return self.answer(job)

    async def long_poll(self, job: Job, known: str | None, wait: float, owner: str) -> Job:
        """Wait up to ``wait`` s for a version the client has not seen (or the end)."""
        latest = job
        with anyio.move_on_after(wait):
            async with self.tracker.watch(job.id, owner=owner) as updates:
                async for update in updates:
                    latest = update
                    if update.state.final or (known is not None and not _matches(known, update)):
                        break
        return latest

    async def result(self, request: Request) -> Response:
        from starlette.responses import JSONResponse, RedirectResponse

        principal = await self.principal(request)
        job_id = request.path_params["job_id"]
        job = await self.tracker.get(job_id, owner=principal.id)
        if job is None:
            raise JobNotFound(job_id)
        if job.state is not JobState.SUCCEEDED:
            detail = f"job {job.id!r} is {job.state.value}" + (
                f": {job.error}" if job.error else ""
            )
            raise _Problem(409, "Conflict", detail, state=job.state.value)
        if job.result_ref is not None:
            url = await self.tracker.result_url(job)
            if url is not None:
                return RedirectResponse(url, status_code=303)
        return JSONResponse(job.result, headers={"etag": _etag(job)})

    async def cancel(self, request: Request) -> Response:
        principal = await self.principal(request)
        job = await self.tracker.cancel(request.path_params["job_id"], owner=principal.id)
        return self.answer(job, 202 if not job.state.final else 200)

    async def list(self, request: Request) -> Response:
        from starlette.responses import JSONResponse

        principal = await self.principal(request)
        query = request.query_params
        state: JobState | None = None
        if "state" in query:
            names = [s.value for s in JobState if s is not JobState.UNKNOWN]
            if query["state"] not in names:
                raise _Problem(400, "Bad Request", f"?state= must be one of {', '.join(names)}")
            state = JobState(query["state"])
        raw_limit = query.get("limit", "50")
        if not (raw_limit.isascii() and raw_limit.isdigit()):
            raise _Problem(400, "Bad Request", "?limit= must be an integer from 1 to 1000")
        page = await self.tracker.list(
            principal.id, state=state, limit=int(raw_limit), cursor=query.get("cursor")
        )
        body: dict[str, Any] = {"jobs": [self.body(j) for j in page.jobs], "next": None}
        headers: dict[str, str] = {"cache-control": "no-cache"}
        if page.cursor is not None:
            from urllib.parse import urlencode

            params = {"cursor": page.cursor, "limit": raw_limit}
            if state is not None:
                params["state"] = state.value
            body["next"] = f"{self.prefix}?{urlencode(params)}"
            headers["link"] = f'<{body["next"]}>; rel="next"'
        return JSONResponse(body, headers=headers)


def routes(
    tracker: JobTracker,
    *,
    authorizer: Authorizer,
    prefix: str = "/jobs",
    retry_after: int = 1,
    max_wait: float = 30.0,
    max_body: int = DEFAULT_MAX_BODY,
) -> list[BaseRoute]:
    """Return the jobs' Starlette routes (needs the ``server`` extra).

    Args:
        tracker: The entered :class:`~eventpatterns.jobs.JobTracker` the routes use.
        authorizer: Authenticates each request (from ``Authorization: Bearer``,
            ``X-Api-Key`` or ``?token=``); the principal's id is the jobs' owner.
        prefix: Where the routes are mounted.
        retry_after: Seconds a client should wait between polls (``Retry-After``).
        max_wait: Longest long poll ``?wait=`` honoured, in seconds.
        max_body: Largest ``POST`` body read, in bytes (``413`` beyond).

    Returns:
        ``POST {prefix}/{kind}``, ``GET {prefix}``, ``GET {prefix}/{id}``,
        ``GET {prefix}/{id}/result`` and ``DELETE {prefix}/{id}``.

    Raises:
        ConfigurationError: ``prefix`` does not start with ``/``, or a bad number.
    """
    from starlette.routing import Route

    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ConfigurationError(f"prefix must start with '/', got {prefix!r}")
    prefix = prefix.rstrip("/")
    if isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0:
        raise ConfigurationError(f"retry_after must be an int >= 0, got {retry_after!r}")
    if not (isinstance(max_wait, int | float) and math.isfinite(max_wait) and max_wait >= 0):
        raise ConfigurationError(f"max_wait must be a number >= 0, got {max_wait!r}")
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise ConfigurationError(f"max_body must be an int >= 1, got {max_body!r}")
    r = _Routes(
        tracker,
        authorizer,
        prefix=prefix,
        retry_after=retry_after,
        max_wait=float(max_wait),
        max_body=max_body,
    )
    return [
        Route(prefix or "/", _guarded(r.list), methods=["GET"]),
        Route(f"{prefix}/{{kind}}", _guarded(r.submit), methods=["POST"]),
        Route(f"{prefix}/{{job_id}}", _guarded(r.status), methods=["GET"]),
        Route(f"{prefix}/{{job_id}}", _guarded(r.cancel), methods=["DELETE"]),
        Route(f"{prefix}/{{job_id}}/result", _guarded(r.result), methods=["GET"]),
    ]


def blob_routes(blobs: BlobStore, signer: URLSigner, *, path: str = "/blobs") -> list[BaseRoute]:
    """Return the route serving blobs by the URLs ``signer`` signed (memory, filesystem).

    The signed URL is the capability: no other authentication is asked. A missing,
    expired or forged signature is a ``403``; a blob gone meanwhile a ``404``. The
    answer has the blob's ``Content-Type`` and, for a URL signed with a filename
    (a :class:`~eventpatterns.jobs.FileResult`'s), ``Content-Disposition: attachment``.
    """
    from starlette.responses import Response as Plain
    from starlette.routing import Route

    async def serve(request: Request) -> Response:
        key = request.path_params["key"]
        query = request.query_params
        filename = query.get("filename")
        if not signer.verify(
            key, query.get("expires", ""), query.get("signature", ""), filename=filename
        ):
            raise _Problem(403, "Forbidden", "the blob URL is not signed, or it expired")
        try:
            blob = await blobs.get(key)
        except BlobNotFound as exc:
            raise _Problem(404, "Not Found", str(exc)) from None
        headers = {"cache-control": "private", "x-content-type-options": "nosniff"}
        if filename is not None:  # signed: ours, and sanitised again all the same
            headers["content-disposition"] = content_disposition(filename)
        return Plain(blob.data, media_type=blob.content_type, headers=headers)

    return [Route(f"{path.rstrip('/')}/{{key:path}}", _guarded(serve), methods=["GET"])]
