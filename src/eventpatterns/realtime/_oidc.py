"""OpenID Connect: verify ID/access tokens with the identity provider's JWKS.

The JWKS (RFC 7517) is fetched with an ``httpx.AsyncClient``, found through OpenID
Connect Discovery 1.0 (``/.well-known/openid-configuration``) unless its URL is given,
cached for ``cache_ttl`` seconds, and fetched again when a token names a key id the
cache does not hold (the provider rotated its keys) — at most once per
``min_refresh_interval``, so a flood of tokens with made-up ``kid`` values cannot
make the gateway hammer the provider.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

import anyio

from ..errors import AuthenticationFailed, ConfigurationError, MissingDependency
from ._auth import Credentials, Principal
from ._jwt import (
    DEFAULT_MAX_TOKEN_SIZE,
    JWTKey,
    PreparedKey,
    decode_token,
    import_jwt,
    prepare_key,
    principal_from,
)

if TYPE_CHECKING:
    import httpx

__all__ = ["OIDCAuthorizer"]

MAX_JWKS_BYTES: Final = 1 << 20
MAX_KEYS: Final = 100


def _names_issuer(config: object, issuer: str) -> bool:
    return (
        isinstance(config, dict)
        and isinstance(config.get("issuer"), str)
        and config["issuer"] == issuer
        and isinstance(config.get("jwks_uri"), str)
    )


def _unavailable(message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, reason="jwks_unavailable")


class OIDCAuthorizer:
    """Authenticate connections with tokens signed by an OpenID Connect provider.

    Tokens are checked as by :class:`JWTAuthorizer` (``exp``, ``nbf``, ``aud``,
    ``iss`` = ``issuer``, signature with the JWKS key their ``kid`` names). Only
    asymmetric keys (``RS256``, ``ES256``) are taken from a JWKS: a symmetric
    ``oct`` key published there is ignored.

    When a refresh fails and keys are cached, the cached keys stay in use (the
    provider being down does not lock everyone out); with no key at all, tokens
    are refused with reason ``jwks_unavailable``, the cause chained.

    Args:
        issuer: The provider's issuer URL (``iss`` must equal it).
        audience: The audience(s) accepted (your client id), or ``None``.
        client: The HTTP client to fetch with; by default one is made (and closed by
            :meth:`aclose`).
        jwks_uri: The JWKS URL; by default discovered from ``issuer``.
        algorithms: The algorithms accepted.
        leeway: Seconds of clock skew allowed on ``exp`` and ``nbf``.
        require: Claims a token must carry.
        subject_claim: The claim holding the principal id.
        cache_ttl: Seconds the fetched keys are used before being fetched again.
        min_refresh_interval: Least seconds between two fetches (unknown ``kid``,
            failures).
        timeout: Seconds a discovery or JWKS fetch may take in all.
        max_token_size: Longer tokens are refused before any decoding.
        clock: Returns the time in Unix seconds (injected by tests).

    Example:
        >>> auth = OIDCAuthorizer("https://login.example.com", audience="my-app")
    """

    def __init__(
        self,
        issuer: str,
        *,
        audience: str | Sequence[str] | None,
        client: httpx.AsyncClient | None = None,
        jwks_uri: str | None = None,
        algorithms: Sequence[str] = ("RS256", "ES256"),
        leeway: float = 0.0,
        require: Sequence[str] = ("exp",),
        subject_claim: str = "sub",
        cache_ttl: float = 300.0,
        min_refresh_interval: float = 30.0,
        timeout: float = 10.0,
        max_token_size: int = DEFAULT_MAX_TOKEN_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        import_jwt()
        try:
            import httpx
        except ImportError as exc:  # pragma: no cover - httpx is a core dependency
            raise MissingDependency("httpx", extra="server") from exc
        bad = set(algorithms) - {"RS256", "ES256"}
        if bad or not algorithms:
            raise ConfigurationError(f"OIDC accepts RS256 and ES256 only, not {sorted(bad)}")
        self._httpx = httpx
        self._issuer = issuer  # compared with ``iss`` exactly (Auth0's ends with "/")
        self._audience = audience
        self._client = client
        self._owns_client = client is None
        self._jwks_uri = jwks_uri
        self._algorithms = tuple(algorithms)
        self._leeway = float(leeway)
        self._require = tuple(require)
        self._subject_claim = subject_claim
        self._ttl = cache_ttl
        self._min_interval = min_refresh_interval
        self._timeout = timeout
        self._max_size = max_token_size
        self._clock = clock
        self._keys: tuple[PreparedKey, ...] | None = None
        self._fetched_at = -float("inf")
        self._attempted_at = -float("inf")
        self._last_error: BaseException | None = None
        self._fetches = 0
        self._lock = anyio.Lock()

    @property
    def fetches(self) -> int:
        """How many times the JWKS was fetched (successfully or not)."""
        return self._fetches

    async def __aenter__(self) -> OIDCAuthorizer:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client, if this authorizer made it."""
        if self._owns_client and self._client is not None:
            with anyio.CancelScope(shield=True):
                await self._client.aclose()
            self._client = None

    async def __call__(self, credentials: Credentials) -> Principal:
        """Authenticate ``credentials.token``.

        Raises:
            AuthenticationFailed: As :class:`JWTAuthorizer` does, and with reason
                ``jwks_unavailable`` when no key could be fetched.
        """
        token = credentials.token
        if token is None or token == "":
            raise AuthenticationFailed("no token was presented", reason="missing")
        keys = await self._current_keys()
        try:
            claims = self._decode(token, keys)
        except AuthenticationFailed as exc:
            if exc.reason != "unknown_key":
                raise
            # A kid we do not hold: the provider may have rotated its keys.
            refreshed = await self._refresh(keys)
            if refreshed is keys:
                raise
            claims = self._decode(token, refreshed)
        return principal_from(claims, subject_claim=self._subject_claim)

    def _decode(self, token: str, keys: tuple[PreparedKey, ...]) -> dict[str, Any]:
        return decode_token(
            token,
            keys,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            require=self._require,
            now=self._clock(),
            max_size=self._max_size,
            algorithms=self._algorithms,
        )

    async def _current_keys(self) -> tuple[PreparedKey, ...]:
        keys = self._keys
        if keys is not None and self._clock() - self._fetched_at < self._ttl:
            return keys
        return await self._refresh(keys)

    async def _refresh(self, seen: tuple[PreparedKey, ...] | None) -> tuple[PreparedKey, ...]:
        """Fetch the keys unless another task just did, or the last try was too recent."""
        async with self._lock:
            if self._keys is not seen and self._keys is not None:
                return self._keys  # fetched while we waited for the lock
            if self._clock() - self._attempted_at < self._min_interval:
                if self._keys is not None:
                    return self._keys
                raise _unavailable(
                    "the provider's keys could not be fetched (retrying later)"
                ) from self._last_error
            self._attempted_at = self._clock()
            self._fetches += 1
            try:
                keys = await self._fetch()
            except AuthenticationFailed as exc:
                self._last_error = exc.__cause__
                if self._keys is not None:
                    return self._keys  # stale keys beat locking everyone out
                raise
            self._keys = keys
            self._fetched_at = self._clock()
            return keys

    async def _fetch(self) -> tuple[PreparedKey, ...]:
        httpx = self._httpx
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeout)
        try:
            with anyio.fail_after(self._timeout):
                if self._jwks_uri is None:
                    config = await self._get_json(
                        self._client,
                        f"{self._issuer.rstrip('/')}/.well-known/openid-configuration",
                    )
                    # OpenID Connect Discovery 1.0, 4.3: the issuer MUST be identical.
                    if not _names_issuer(config, self._issuer):
                        raise ValueError("the discovery document does not name this issuer")
                    self._jwks_uri = config["jwks_uri"]
                jwks = await self._get_json(self._client, self._jwks_uri)
        except (
            httpx.HTTPError,
            httpx.InvalidURL,
            httpx.StreamError,
            TimeoutError,
            ValueError,
            RecursionError,
        ) as exc:
            raise _unavailable(f"the provider's keys could not be fetched: {exc}") from exc
        return self._parse(jwks)

    async def _get_json(self, client: httpx.AsyncClient, url: str) -> Any:
        response = await client.get(url, timeout=self._timeout)
        response.raise_for_status()
        if len(response.content) > MAX_JWKS_BYTES:
            raise ValueError(f"{url} answered more than {MAX_JWKS_BYTES} bytes")
        return json.loads(response.content)

    def _parse(self, jwks: Any) -> tuple[PreparedKey, ...]:
        jwt = import_jwt()
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise _unavailable('the JWKS is not {"keys": [...]}')
        keys: list[PreparedKey] = []
        for jwk in jwks["keys"][:MAX_KEYS]:
            if not isinstance(jwk, dict) or jwk.get("kty") not in ("RSA", "EC"):
                continue  # never a symmetric key from a published set
            if jwk.get("use", "sig") != "sig":
                continue
            kid = jwk.get("kid")
            try:
                parsed = jwt.PyJWK(jwk)
                algorithm = parsed.algorithm_name
                if algorithm not in self._algorithms or not (kid is None or isinstance(kid, str)):
                    continue
                keys.append(prepare_key(JWTKey(parsed.key, algorithm, kid)))
            except (jwt.PyJWTError, ConfigurationError, ValueError, TypeError):
                continue  # one unusable key does not void the others
        return tuple(keys)
