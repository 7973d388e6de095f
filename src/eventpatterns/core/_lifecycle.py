"""The lifecycle every store shares: ``async with``, and an idempotent ``aclose()``."""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["AsyncResource"]

_R = TypeVar("_R", bound="AsyncResource")


@runtime_checkable
class AsyncResource(Protocol):
    """Something holding connections (or nothing) that is closed once, when done.

    Every store of the library is one: the job and blob stores, device registries,
    presences, the push dispatcher's state and dead letters, on memory, Redis and AWS
    alike, so code written for one backend closes its stores the same way on any (a
    bus backend is closed by its ``EventBus``, itself one). ``aclose()`` is idempotent;
    a memory store keeps its data.
    The store contracts (``JobStore``, ``DeviceRegistry``...) leave it out, so a
    minimal implementation of theirs needs none.

    Example:
        ```python
        import anyio
        from eventpatterns.backends.memory import MemoryJobStore
        from eventpatterns.core import AsyncResource

        async def main() -> None:
            async with MemoryJobStore() as store:
                assert isinstance(store, AsyncResource)
            await store.aclose()  # again: nothing happens

        anyio.run(main)
        ```
    """

    async def __aenter__(self: _R) -> _R:
        """Return the resource itself (ready to use)."""
        ...

    async def __aexit__(self, *exc_info: Any) -> Any:
        """Close the resource (as :meth:`aclose`)."""
        ...

    async def aclose(self) -> None:
        """Release what the resource holds; idempotent."""
        ...
