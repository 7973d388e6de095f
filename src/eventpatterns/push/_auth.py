"""Credentials minted on demand, cached, and refreshed once when a service says so.

Written once for the three providers, in httpx's ``auth_flow`` style: a VAPID JWT per
push-service origin (Web Push), an OAuth2 access token from a service-account key (FCM),
an ES256 provider token (APNs). The token never appears in a log or an exception.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import anyio
import httpx

from ..core import Clock, SystemClock

__all__ = ["Mint", "TokenAuth"]

#: Mint a credential for a request: return the ``Authorization`` value and when it
#: expires (Unix seconds). Called for the first request of each cache key, when the
#: cached value is within ``margin`` of expiring, and after a response says it expired.
Mint = Callable[[httpx.Request], Awaitable[tuple[str, float]]]


class TokenAuth(httpx.Auth):
    """An ``httpx.Auth`` that caches minted credentials per key and refreshes them.

    Args:
        mint: Makes the header value for a request (see :data:`Mint`).
        key: The cache key of a request (e.g. its origin for VAPID); one key by default.
        expired: Tells whether a response means "your credential expired" (e.g. APNs
            ``403 ExpiredProviderToken``, FCM ``401``); the request is then sent once
            more with a fresh credential, never more.
        margin: Refresh this many seconds before the credential's expiry.
        min_age: Never mint again for a key sooner than this after the last mint
            (APNs refuses refreshes more often than every 20 minutes), unless a response
            said the credential expired.
        header: The header the value goes in.
        clock: The clock expiry is read from.
    """

    requires_response_body = True

    def __init__(
        self,
        mint: Mint,
        *,
        key: Callable[[httpx.Request], str] = lambda request: "",
        expired: Callable[[httpx.Response], bool] = lambda response: response.status_code == 401,
        margin: float = 60.0,
        min_age: float = 0.0,
        header: str = "authorization",
        clock: Clock | None = None,
    ) -> None:
        self._mint = mint
        self._key = key
        self._expired = expired
        self._margin = margin
        self._min_age = min_age
        self._header = header
        self._clock = clock or SystemClock()
        self._cache: dict[str, tuple[str, float, float]] = {}  # key -> (value, expires, minted)
        self._lock = anyio.Lock()
        #: How many credentials were minted (for tests and metrics).
        self.mints = 0

    def __repr__(self) -> str:  # never show a credential
        return f"<TokenAuth keys={len(self._cache)} mints={self.mints}>"

    async def _value(self, request: httpx.Request, *, stale: str | None = None) -> str:
        # ``stale``: the value a response called expired. Many requests may carry it
        # when it expires; the first one through the lock mints, the others find a
        # newer value cached and use it, so one expiry costs one mint, not one each.
        return await self.value(self._key(request), lambda: self._mint(request), stale=stale)

    async def value(
        self,
        key: str,
        mint: Callable[[], Awaitable[tuple[str, float]]],
        *,
        stale: str | None = None,
    ) -> str:
        """Return the credential for ``key``, minting it with ``mint`` when needed.

        The same cache as the auth flow, for a caller that sends without an
        ``httpx.Request`` (the Web Push provider's own transport).

        Args:
            key: The cache key (e.g. the push service origin).
            mint: Makes the value and its expiry when none is cached and fresh.
            stale: A value a response called expired: mint a newer one, once.
        """
        cached = self._cache.get(key)
        if stale is None and cached is not None and self._clock.time() < cached[1] - self._margin:
            return cached[0]  # the common case, without the lock: fresh and in the cache
        async with self._lock:
            now = self._clock.time()
            cached = self._cache.get(key)
            if cached is not None:
                value, expires, minted = cached
                if stale is not None and value != stale:
                    return value
                fresh = now < expires - self._margin or now - minted < self._min_age
                if stale is None and fresh:
                    return value
            value, expires = await mint()
            self._cache[key] = (value, expires, now)
            self.mints += 1
            return value

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("TokenAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        used = request.headers[self._header] = await self._value(request)
        response = yield request
        # httpx reads the body for ``requires_response_body`` only in the default
        # ``async_auth_flow``; this one overrides it, so it reads the body itself.
        await response.aread()
        if self._expired(response):
            request.headers[self._header] = await self._value(request, stale=used)
            yield request
