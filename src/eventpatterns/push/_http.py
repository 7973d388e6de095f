"""What the three providers share: an httpx client, closed with the provider that made it."""

from __future__ import annotations

from types import TracebackType
from typing import TypeVar

import anyio
import httpx

__all__ = ["OwnedClient"]

P = TypeVar("P", bound="OwnedClient")


class OwnedClient:
    """Base of the providers: an async context manager over an ``httpx.AsyncClient``.

    A client passed in by the caller is the caller's to close; one the provider made is
    closed by :meth:`aclose` (or leaving ``async with``).
    """

    _client: httpx.AsyncClient
    _owns_client: bool

    async def __aenter__(self: P) -> P:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if the provider made it."""
        if self._owns_client:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._client.aclose()
