"""Every store of one backend from one URL: :func:`stores_from_url` and :class:`Stores`.

The bus URL (``memory://``, ``redis://host:6379/0?prefix=app``,
``aws://?region=eu-west-1&prefix=app``) names the backend; each store reads its own
options from it (its ``from_url``) and skips the others', so code that builds its
stores here runs on any backend unchanged. The stores are built on first use, so a
URL only needs what the stores used need (an ``aws://`` blob store its ``bucket``).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import ConfigurationError

if TYPE_CHECKING:
    from ..bus import BusBackend
    from ..core import Clock
    from ..jobs import BlobStore, JobStore, URLSigner
    from ..push import DeviceRegistry, DispatchState, PushDeadLetters
    from ..realtime import Presence

__all__ = ["Stores", "stores_from_url"]

T = TypeVar("T")
_SCHEMES = {
    "memory": "memory",
    "redis": "redis",
    "rediss": "redis",
    "unix": "redis",
    "aws": "aws",
}


def _scheme(url: object) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"the backend URL must be a string, got {type(url).__name__}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    backend = _SCHEMES.get(scheme)
    if backend is None:
        known = ", ".join(f"{s}://" for s in _SCHEMES)
        raise ConfigurationError(f"unknown backend URL scheme in {url[:200]!r}; expected {known}")
    return backend


class Stores:
    """The stores of one backend, built from one URL on first use; closed together.

    Each attribute builds its store the first time it is read (with the store's
    ``from_url``) and returns the same one afterwards; ``aclose()`` (or leaving
    ``async with``) closes those built, newest first. A store another object closes
    too (``EventBus`` closes its backend) is closed once more here: ``aclose`` is
    idempotent on every store.

    Args:
        url: The backend's URL (see :func:`stores_from_url`).
        clock: The clock of the stores that read the time (jobs, blobs, presence).
        signer: Signs the memory blob store's download URLs (the other blob stores
            sign their own).

    Raises:
        ConfigurationError: Not a ``memory://``, ``redis://`` (``rediss://``,
            ``unix://``) or ``aws://`` URL, or (when a store is built) a bad option.
    """

    def __init__(
        self, url: str, *, clock: Clock | None = None, signer: URLSigner | None = None
    ) -> None:
        #: ``"memory"``, ``"redis"`` or ``"aws"``.
        self.backend = _scheme(url)
        self.url = url
        self._clock = clock
        self._signer = signer
        self._built: dict[str, Any] = {}
        self._order: list[Any] = []

    def _clocked(self) -> dict[str, Any]:
        return {} if self._clock is None else {"clock": self._clock}

    def _get(self, name: str, build: Callable[[], T]) -> T:
        if name not in self._built:
            store = build()
            self._built[name] = store
            if store is not None:
                self._order.append(store)
        found: T = self._built[name]
        return found

    async def __aenter__(self) -> Stores:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every store built so far, newest first (idempotent).

        Every store is closed even when closing another raised (that error is raised).
        """
        order, self._order = self._order, []
        async with AsyncExitStack() as stack:
            for store in order:  # an exit stack runs them last first
                stack.push_async_callback(store.aclose)

    # -- the stores ------------------------------------------------------------------------

    @property
    def bus(self) -> BusBackend:
        """The bus backend (``EventBus(stores.bus)``; the bus closes it too)."""

        def build() -> BusBackend:
            from ..bus._bus import BACKENDS

            module_name, _, attr = BACKENDS[self.url.split("://", 1)[0].lower()].partition(":")
            backend: BusBackend = getattr(importlib.import_module(module_name), attr).from_url(
                self.url, **self._clocked()
            )
            return backend

        return self._get("bus", build)

    @property
    def jobs(self) -> JobStore:
        """The job store (``MemoryJobStore``, ``RedisJobStore``, ``DynamoJobStore``)."""

        def build() -> JobStore:
            if self.backend == "memory":
                from .memory import MemoryJobStore

                return MemoryJobStore.from_url(self.url, **self._clocked())
            if self.backend == "redis":
                from .redis import RedisJobStore

                return RedisJobStore.from_url(self.url, **self._clocked())
            from .aws import DynamoJobStore

            return DynamoJobStore.from_url(self.url, **self._clocked())

        return self._get("jobs", build)

    @property
    def blobs(self) -> BlobStore | None:
        """The blob store: ``MemoryBlobStore``, ``S3BlobStore`` (``aws://?bucket=...``).

        ``None`` on Redis, which has none (use ``FileBlobStore`` or ``S3BlobStore``),
        and on ``aws://`` without a ``bucket``.
        """

        def build() -> BlobStore | None:
            if self.backend == "memory":
                from .memory import MemoryBlobStore

                return MemoryBlobStore.from_url(self.url, signer=self._signer, **self._clocked())
            if self.backend == "aws":
                from .aws import S3BlobStore
                from .aws._bus_url import parse_store_url

                if "bucket" in parse_store_url(self.url, "S3BlobStore"):
                    return S3BlobStore.from_url(self.url, **self._clocked())
            return None

        return self._get("blobs", build)

    @property
    def devices(self) -> DeviceRegistry:
        """The push device registry (memory, Redis or DynamoDB)."""

        def build() -> DeviceRegistry:
            if self.backend == "memory":
                from .memory import MemoryDeviceRegistry

                return MemoryDeviceRegistry.from_url(self.url)
            if self.backend == "redis":
                from .redis import RedisDeviceRegistry

                return RedisDeviceRegistry.from_url(self.url)
            from .aws import DynamoDeviceRegistry

            return DynamoDeviceRegistry.from_url(self.url)

        return self._get("devices", build)

    @property
    def presence(self) -> Presence:
        """The presence (enter it, ``async with stores.presence``, for its sweeper)."""

        def build() -> Presence:
            if self.backend == "memory":
                from ..realtime import MemoryPresence

                return MemoryPresence.from_url(self.url, **self._clocked())
            if self.backend == "redis":
                from .redis import RedisPresence

                return RedisPresence.from_url(self.url, **self._clocked())
            from .aws import DynamoPresence

            return DynamoPresence.from_url(self.url, **self._clocked())

        return self._get("presence", build)

    @property
    def dispatch_state(self) -> DispatchState | None:
        """The push dispatcher's state; ``None`` on ``aws://`` (in the dispatcher's process)."""

        def build() -> DispatchState | None:
            if self.backend == "memory":
                from ..push import MemoryDispatchState

                return MemoryDispatchState.from_url(self.url)
            if self.backend == "redis":
                from .redis import RedisDispatchState

                return RedisDispatchState.from_url(self.url)
            return None

        return self._get("dispatch_state", build)

    @property
    def push_dead_letters(self) -> PushDeadLetters | None:
        """The push dispatcher's dead letters; ``None`` on ``aws://`` (in its process)."""

        def build() -> PushDeadLetters | None:
            if self.backend == "memory":
                from ..push import MemoryPushDeadLetters

                return MemoryPushDeadLetters.from_url(self.url)
            if self.backend == "redis":
                from .redis import RedisPushDeadLetters

                return RedisPushDeadLetters.from_url(self.url)
            return None

        return self._get("push_dead_letters", build)


def stores_from_url(
    url: str, *, clock: Clock | None = None, signer: URLSigner | None = None
) -> Stores:
    """Return the stores of the URL's backend, each configured from the same URL.

    ``memory://``, ``redis://host:6379/0?prefix=app&max_entries=1000`` (and
    ``rediss://``, ``unix://``), ``aws://?region=eu-west-1&prefix=app&bucket=...``:
    every store reads its own options and skips the other stores' (a typo is still
    refused, naming it). Stores are built on first use; close them together with
    ``async with``.

    Args:
        url: The backend URL, the one ``EventBus.from_url`` takes.
        clock: The clock of the stores that read the time (``ManualClock`` in tests).
        signer: Signs the memory blob store's download URLs.

    Raises:
        ConfigurationError: An unknown scheme (a bad option: when its store is built).

    Example:
        ```python
        import anyio
        from eventpatterns import EventBus
        from eventpatterns.backends import stores_from_url
        from eventpatterns.jobs import JobTracker

        async def main() -> None:
            async with stores_from_url("memory://?max_entries=1000") as stores:
                async with EventBus(stores.bus) as bus, JobTracker(bus, stores.jobs):
                    print(stores.backend, type(stores.jobs).__name__)

        anyio.run(main)
        ```
    """
    return Stores(url, clock=clock, signer=signer)
