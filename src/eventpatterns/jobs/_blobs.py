"""The blob store contract: large job results (and, later, claim-checked events) by key.

A job whose result is too large to keep inline puts it in a :class:`BlobStore` and keeps
a :class:`~eventpatterns.jobs.ResultRef`; the client fetches it through a signed URL
(on S3 a presigned URL; for the memory and filesystem stores, a URL of this library's
own HTTP route, signed with HMAC-SHA256 by :class:`URLSigner`).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import time
from dataclasses import dataclass
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlencode

from ..errors import ArgumentTypeError, BlobNotFound, ConfigurationError

__all__ = ["MAX_KEY", "Blob", "BlobStore", "URLSigner", "check_key"]

#: Longest blob key, in characters.
MAX_KEY = 512
_KEY = re.compile(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*")


def check_key(key: object) -> str:
    """Return ``key`` if it is a valid blob key, else raise naming what is wrong.

    A key is 1 to 512 characters of ``A-Z a-z 0-9 . _ -`` in ``/``-separated segments,
    none of them ``.`` or ``..`` (so a filesystem store can never be walked out of).

    Raises:
        ArgumentTypeError: ``key`` is not a string.
        ConfigurationError: Anything else wrong with it.
    """
    if not isinstance(key, str):
        raise ArgumentTypeError("BlobStore", "key", expected="a str", got=key)
    if not key or len(key) > MAX_KEY:
        raise ConfigurationError(f"a blob key has 1 to {MAX_KEY} characters, got {len(key)}")
    if _KEY.fullmatch(key) is None or any(part in (".", "..") for part in key.split("/")):
        raise ConfigurationError(
            f"a blob key is '/'-separated segments of A-Z a-z 0-9 . _ - (no '.' or '..'),"
            f" got {key[:80]!r}"
        )
    return key


@dataclass(frozen=True, slots=True)
class Blob:
    """A stored blob: its bytes and what was said about them.

    Attributes:
        key: Its key.
        data: Its bytes.
        content_type: Its media type.
        created_at: When it was put (Unix seconds, the store's clock).
        expires_at: When it expires, or ``None`` (kept until deleted).
    """

    key: str
    data: bytes
    content_type: str
    created_at: float
    expires_at: float | None

    @property
    def size(self) -> int:
        """Its size in bytes."""
        return len(self.data)


@runtime_checkable
class BlobStore(Protocol):
    """Bytes by key, with an expiry and a URL to fetch them by.

    Guarantees every implementation gives (``eventpatterns.testing.BlobStoreSuite``
    checks them): a ``put`` is atomic (a reader gets the old bytes or the new ones,
    never a part); an expired blob reads as missing; keys are checked with
    :func:`check_key` before anything is touched.

    Every method may raise :class:`~eventpatterns.errors.BackendUnavailable` when the
    store cannot be reached.

    The library's implementations are also :class:`~eventpatterns.core.AsyncResource`
    (``async with``, an idempotent ``aclose()``), on every backend.
    """

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        ttl: float | None = None,
    ) -> Blob:
        """Store ``data`` under ``key`` (replacing what was there); return the blob.

        Raises:
            ConfigurationError: A bad key, a ``ttl`` that is not a positive number, or
                ``data`` over the store's ``max_size``.
            ArgumentTypeError: ``data`` is not bytes.
        """
        ...

    async def get(self, key: str) -> Blob:
        """Return the blob.

        Raises:
            BlobNotFound: Nothing is stored under ``key``, or it expired.
        """
        ...

    async def delete(self, key: str) -> bool:
        """Delete the blob; return whether there was one."""
        ...

    async def url(
        self, key: str, *, expires_in: float = 3600.0, filename: str | None = None
    ) -> str:
        """Return a URL the blob can be fetched from for ``expires_in`` seconds.

        With a ``filename``, the download answers ``Content-Disposition: attachment``
        with it (:func:`~eventpatterns.jobs.content_disposition`).

        Raises:
            BlobNotFound: Nothing is stored under ``key``.
        """
        ...

    async def purge(self) -> int:
        """Delete the blobs that expired; return how many."""
        ...


class URLSigner:
    """Sign and check the URLs of blobs served by this library's own HTTP route.

    ``sign(key, expires_at)`` gives ``<base_url>/<key>?expires=<unix s>&signature=<hex>``
    with an HMAC-SHA256 over the key and the expiry (and the ``filename`` to download it
    as, when given: ``&filename=...``, signed too); ``verify(key, expires, signature)``
    checks it in constant time and refuses an expired URL.

    Args:
        secret: The signing key (at least 32 bytes).
        base_url: Where the blob route is mounted, e.g. ``"https://api.example.com/blobs"``.

    Example:
        >>> signer = URLSigner(b"k" * 32, base_url="/blobs")
        >>> url = signer.sign("results/j1", expires_at=2_000_000_000)
        >>> url.split("?")[0]
        '/blobs/results/j1'
    """

    def __init__(self, secret: bytes, *, base_url: str) -> None:
        if not isinstance(secret, bytes) or len(secret) < 32:
            raise ConfigurationError("the URL signing secret must be at least 32 bytes")
        self._secret = secret
        self._base = base_url.rstrip("/")

    def _mac(self, key: str, expires: int, filename: str | None = None) -> str:
        # A key has no line break: the message with a filename is never one without.
        message = f"{key}\n{expires}" + ("" if filename is None else f"\n{filename}")
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    def sign(self, key: str, *, expires_at: float, filename: str | None = None) -> str:
        """Return the signed URL of ``key``, valid until ``expires_at`` (Unix seconds).

        ``filename``: the name the blob route sends in ``Content-Disposition``.
        """
        check_key(key)
        expires = math.ceil(expires_at)
        fields: dict[str, object] = {"expires": expires}
        if filename is not None:
            fields["filename"] = filename
        fields["signature"] = self._mac(key, expires, filename)
        return f"{self._base}/{quote(key)}?{urlencode(fields)}"

    def verify(
        self,
        key: str,
        expires: str,
        signature: str,
        *,
        now: float | None = None,
        filename: str | None = None,
    ) -> bool:
        """Tell whether ``expires`` and ``signature`` (from the URL's query) admit ``key`` now.

        ``filename``: the URL's ``filename`` (``None`` when it has none).
        """
        try:
            check_key(key)
            stamp = int(expires)
        except (ValueError, TypeError):
            return False
        if stamp < (time.time() if now is None else now):
            return False
        signature = str(signature)
        if not signature.isascii():  # compare_digest refuses non-ASCII str; no MAC has any
            return False
        return hmac.compare_digest(self._mac(key, stamp, filename), signature)


def check_put(data: object, ttl: object, *, max_size: int) -> float | None:
    """Check ``put``'s ``data`` and ``ttl`` for a store; return the ttl as a float."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ArgumentTypeError("BlobStore.put", "data", expected="bytes", got=data)
    if len(data) > max_size:
        raise ConfigurationError(f"blob of {len(data)} bytes is over max_size={max_size}")
    if ttl is None:
        return None
    if (
        isinstance(ttl, bool)
        or not isinstance(ttl, int | float)
        or not math.isfinite(ttl)
        or ttl <= 0
    ):
        raise ConfigurationError(f"ttl must be a positive number of seconds, got {ttl!r}")
    return float(ttl)


def signed_url(
    signer: URLSigner | None, key: str, *, expires_at: float, filename: str | None = None
) -> str:
    """Return ``signer``'s URL for ``key`` (for stores served by this library's route).

    Raises:
        ConfigurationError: The store was given no signer.
    """
    if signer is None:
        raise ConfigurationError("give the store a URLSigner (signer=) to hand out URLs")
    return signer.sign(key, expires_at=expires_at, filename=filename)


def not_found(key: str) -> BlobNotFound:
    """The error for a missing or expired blob."""
    return BlobNotFound(key)
