"""Blobs as files: one file per blob, a JSON header line then the bytes, replaced atomically."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio

from ...core import Clock, SystemClock
from ...errors import BackendUnavailable, ConfigurationError
from ...jobs._blobs import Blob, URLSigner, check_key, check_put, not_found, signed_url

__all__ = ["FileBlobStore"]

_SUFFIX = ".blob"
T = TypeVar("T")


class FileBlobStore:
    """A :class:`~eventpatterns.jobs.BlobStore` in a directory.

    Each blob is one file, ``<root>/<key>.blob``: a JSON header line (content type,
    times) and then the bytes. A ``put`` writes a temporary file in the same directory
    and renames it over the old one, so a reader sees the old blob or the new one, never
    a part. Keys are checked before any path is built, so no key reaches outside ``root``.
    File I/O runs in worker threads.

    Args:
        root: The directory (created if missing).
        signer: Signs the URLs :meth:`url` hands out; without one, :meth:`url` raises.
        max_size: Largest blob accepted, in bytes (default 1 GiB).
        clock: Where expiry reads the time.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        signer: URLSigner | None = None,
        max_size: int = 1024 * 1024 * 1024,
        clock: Clock | None = None,
    ) -> None:
        self._root = Path(root)
        self._signer = signer
        self._max_size = max_size
        self._clock = clock or SystemClock()

    def _path(self, key: str) -> Path:
        return self._root / (check_key(key) + _SUFFIX)

    # -- blocking parts, run in threads ----------------------------------------------------

    def _write(self, path: Path, header: bytes, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(header)
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _read(self, key: str, path: Path) -> Blob | None:
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            return None
        head, sep, data = raw.partition(b"\n")
        try:
            meta = json.loads(head)
            blob = Blob(key, data, meta["content_type"], meta["created_at"], meta["expires_at"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{path} is not a blob file of this store") from exc
        if not sep:
            raise ConfigurationError(f"{path} is not a blob file of this store")
        return blob

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        try:
            return await anyio.to_thread.run_sync(func, *args)
        except OSError as exc:  # a full disk, a permission, a path that is a directory...
            raise BackendUnavailable(f"blob store at {self._root}: {exc}") from exc

    # -- the contract --------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        ttl: float | None = None,
    ) -> Blob:
        """Store ``data`` under ``key``; return the blob."""
        path = self._path(key)
        seconds = check_put(data, ttl, max_size=self._max_size)
        if not isinstance(content_type, str) or "\n" in content_type or len(content_type) > 255:
            raise ConfigurationError(f"not a media type: {str(content_type)[:80]!r}")
        now = self._clock.time()
        expires = None if seconds is None else now + seconds
        header = (
            json.dumps(
                {"content_type": content_type, "created_at": now, "expires_at": expires}
            ).encode()
            + b"\n"
        )
        payload = bytes(data)
        await self._run(self._write, path, header, payload)
        return Blob(key, payload, content_type, now, expires)

    async def _live(self, key: str) -> Blob | None:
        path = self._path(key)
        blob = await self._run(self._read, key, path)
        if (
            blob is not None
            and blob.expires_at is not None
            and self._clock.time() >= blob.expires_at
        ):
            return None
        return blob

    async def get(self, key: str) -> Blob:
        """Return the blob, or raise ``BlobNotFound``."""
        blob = await self._live(key)
        if blob is None:
            raise not_found(key)
        return blob

    async def delete(self, key: str) -> bool:
        """Delete the blob; return whether there was one."""
        found = await self._live(key) is not None
        path = self._path(key)
        await self._run(lambda: path.unlink(missing_ok=True))
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

        def sweep() -> int:
            count = 0
            if not self._root.exists():
                return 0
            for path in self._root.rglob("*" + _SUFFIX):
                key = path.relative_to(self._root).as_posix()[: -len(_SUFFIX)]
                try:
                    blob = self._read(key, path)
                except ConfigurationError:
                    continue  # not ours: leave it
                if blob is not None and blob.expires_at is not None and now >= blob.expires_at:
                    path.unlink(missing_ok=True)
                    count += 1
            return count

        return await self._run(sweep)
