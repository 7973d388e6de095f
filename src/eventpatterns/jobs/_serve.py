"""The jobs' part of ``eventpatterns serve --jobs MODULE:FUNCTION``.

``FUNCTION(tracker)`` registers the application's job kinds (``tracker.worker(...)``,
``tracker.durable(...)``, ``tracker.declare(...)``); the tracker then runs in the serve
process on its bus, with a job store beside it (memory on ``memory://``, Redis on the
bus's Redis) and a blob store (memory, or files under ``--blobs DIR``), and its HTTP
routes are mounted at ``/jobs`` (and ``/blobs``) on the same port.
"""

from __future__ import annotations

import importlib
import secrets
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from ..bus import EventBus
    from ..realtime import Authorizer
    from ._blobs import BlobStore, URLSigner
    from ._tracker import JobTracker

__all__ = ["ServedJobs", "check_backend", "load_setup", "running_jobs", "serve_jobs"]

Setup = Callable[["JobTracker"], Any]


def load_setup(spec: str) -> Setup:
    """Import ``MODULE:FUNCTION`` (the current directory on the path, as ``python -m``).

    Raises:
        ConfigurationError: Not ``MODULE:FUNCTION``, not importable, or not callable.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--jobs takes MODULE:FUNCTION, got {spec[:200]!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        found = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # the user's module: say which and why
        raise ConfigurationError(
            f"cannot load {spec[:200]!r}: {type(exc).__name__}: {str(exc)[:300]}"
        ) from exc
    if not callable(found):
        raise ConfigurationError(f"{spec[:200]!r} is not a function taking the tracker")
    setup: Setup = found
    return setup


def check_backend(bus_url: str) -> None:
    """Refuse a bus URL whose job store cannot be built (checked before any I/O).

    Raises:
        ConfigurationError: Not a ``memory://``, ``redis://`` or ``aws://`` URL, or a
            bad option of its job store.
    """
    from ..backends import stores_from_url

    backend = stores_from_url(bus_url).backend
    if backend == "memory":
        from ..backends.memory._url import parse_memory_url

        parse_memory_url(bus_url, "MemoryJobStore", {})
    elif backend == "redis":
        from ..backends.redis._url import split_store_url

        split_store_url(bus_url, {}, "RedisJobStore")
    else:
        from ..backends.aws._bus_url import parse_store_url

        parse_store_url(bus_url, "DynamoJobStore")


def _store(bus_url: str) -> Any:
    """The job store of the bus URL's backend, configured from the same URL."""
    from ..backends import stores_from_url

    return stores_from_url(bus_url).jobs


class ServedJobs(NamedTuple):
    """What :func:`running_jobs` runs: the entered tracker, its blob store and URL signer."""

    tracker: JobTracker
    blobs: BlobStore
    signer: URLSigner


@asynccontextmanager
async def running_jobs(
    spec: str, bus: EventBus, *, bus_url: str, base_url: str, blobs_dir: str | None = None
) -> AsyncIterator[ServedJobs]:
    """Run the tracker ``spec`` sets up (blobs signed for ``{base_url}/blobs``).

    Raises:
        ConfigurationError: A bad ``spec``, a setup function that raised or registered
            no kind, or a bus URL with no job store (an unknown scheme).
    """
    from ._blobs import URLSigner
    from ._tracker import JobTracker

    setup = load_setup(spec)
    signer = URLSigner(secrets.token_bytes(32), base_url=f"{base_url}/blobs")
    if blobs_dir is None:
        from ..backends.memory import MemoryBlobStore

        blobs: Any = MemoryBlobStore(signer=signer)
    else:
        from ..backends.filesystem import FileBlobStore

        blobs = FileBlobStore(blobs_dir, signer=signer)
    store = _store(bus_url)
    tracker = JobTracker(bus, store, blobs=blobs)
    try:
        setup(tracker)
    except Exception as exc:
        raise ConfigurationError(
            f"{spec[:200]!r} raised {type(exc).__name__}: {str(exc)[:300]}"
        ) from exc
    if not tracker.kinds:
        raise ConfigurationError(f"{spec[:200]!r} registered no job kind on the tracker")
    try:
        async with tracker:
            yield ServedJobs(tracker, blobs, signer)
    finally:
        close = getattr(store, "aclose", None)
        if close is not None:
            await close()


@asynccontextmanager
async def serve_jobs(
    spec: str,
    bus: EventBus,
    *,
    bus_url: str,
    authorizer: Authorizer,
    base_url: str,
    blobs_dir: str | None = None,
) -> AsyncIterator[list[BaseRoute]]:
    """Run the tracker ``spec`` sets up; yield the routes to mount while it runs.

    Raises:
        ConfigurationError: A bad ``spec``, or a setup function that raised.
    """
    from ._asgi import blob_routes, routes

    jobs = running_jobs(spec, bus, bus_url=bus_url, base_url=base_url, blobs_dir=blobs_dir)
    async with jobs as (tracker, blobs, signer):
        yield [*routes(tracker, authorizer=authorizer), *blob_routes(blobs, signer)]
