"""The in-memory blob store: a dict of blobs, for development and tests."""

from __future__ import annotations

from typing import Any

from ...core import Clock, SystemClock
from ...jobs._blobs import Blob, URLSigner, check_key, check_put, not_found, signed_url
from ._url import Closeable, parse_memory_url

__all__ = ["MemoryBlobStore"]


class MemoryBlobStore(Closeable):
    """A :class:`~eventpatterns.jobs.BlobStore` in this process's memory.

    Args:
        signer: Signs the URLs :meth:`url` hands out (served by the jobs HTTP routes);
            without one, :meth:`url` raises ``ConfigurationError``.
        max_size: Largest blob accepted, in bytes (default 64 MiB).
        clock: Where expiry reads the time.
    """

    def __init__(
        self,
        *,
        signer: URLSigner | None = None,
        max_size: int = 64 * 1024 * 1024,
        clock: Clock | None = None,
    ) -> None:
        self._signer = signer
        self._max_size = max_size
        self._clock = clock or SystemClock()
        self._blobs: dict[str, Blob] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryBlobStore:
        """Build from ``memory://?max_size=1000000``, as the Redis and AWS stores from theirs.

        ``max_size`` is read (pass ``signer`` as a keyword); the other memory
        stores' options are skipped, so one URL serves every store. Keyword
        ``options`` win over the URL.

        Raises:
            ConfigurationError: Not a ``memory://`` URL, or a bad or unknown option.
        """
        return cls(**parse_memory_url(url, "MemoryBlobStore", options))

    def _live(self, key: str) -> Blob | None:
        blob = self._blobs.get(check_key(key))
        expires = None if blob is None else blob.expires_at
        if expires is not None and self._clock.time() >= expires:
            del self._blobs[key]
            return None
        return blob

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        ttl: float | None = None,
    ) -> Blob:
        """Store ``data`` under ``key``; return the blob."""
        check_key(key)
        seconds = check_put(data, ttl, max_size=self._max_size)
        now = self._clock.time()
        blob = Blob(key, bytes(data), content_type, now, None if seconds is None else now + seconds)
        self._blobs[key] = blob
        return blob

    async def get(self, key: str) -> Blob:
        """Return the blob, or raise ``BlobNotFound``."""
        blob = self._live(key)
        if blob is None:
            raise not_found(key)
        return blob

    async def delete(self, key: str) -> bool:
        """Delete the blob; return whether there was one."""
        found = self._live(key) is not None
        self._blobs.pop(key, None)
        return found

    async def url(
        self, key: str, *, expires_in: float = 3600.0, filename: str | None = None
    ) -> str:
        """Return a signed URL for the blob (needs a ``signer``); see :meth:`BlobStore.url`."""
        await self.get(key)
        expires_at = self._clock.time() + expires_in
        return signed_url(self._signer, key, expires_at=expires_at, filename=filename)

    async def purge(self) -> int:
        """Delete the blobs that expired; return how many."""
        now = self._clock.time()
        gone = [
            k for k, b in self._blobs.items() if b.expires_at is not None and now >= b.expires_at
        ]
        for key in gone:
            del self._blobs[key]
        return len(gone)
