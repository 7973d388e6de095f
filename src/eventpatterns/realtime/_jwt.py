"""JSON Web Token authentication (RFC 7519) on pyjwt: HS256, RS256, ES256.

pyjwt and cryptography are imported when a :class:`JWTAuthorizer` is built (extra
``server``). Every key is bound to one algorithm: a token is verified only with keys
of the algorithm its header names, so an HS256 token "signed" with an RSA public key
used as an HMAC secret (the classic key-confusion attack) is refused, as is
``alg: none``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import AuthenticationFailed, ConfigurationError, MissingDependency
from ._auth import Credentials, Principal

__all__ = ["JWTAuthorizer", "JWTKey", "PreparedKey", "decode_token", "import_jwt", "prepare_key"]

Algorithm = Literal["HS256", "RS256", "ES256"]
ALGORITHMS: Final[frozenset[str]] = frozenset({"HS256", "RS256", "ES256"})
# RFC 7518 section 3.2: an HS256 key "of the same size as the hash output (256 bits)
# or larger MUST be used".
MIN_HMAC_KEY_BYTES: Final = 32
MIN_RSA_BITS: Final = 2048
DEFAULT_MAX_TOKEN_SIZE: Final = 8192
_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_MAX_KID: Final = 256


def import_jwt() -> Any:
    """Import pyjwt, or raise :class:`~eventpatterns.errors.MissingDependency`."""
    try:
        import jwt
        from jwt.algorithms import has_crypto
    except ImportError as exc:  # pragma: no cover - the server extra installs it
        raise MissingDependency("pyjwt", extra="server") from exc
    if not has_crypto:  # pragma: no cover
        raise MissingDependency("cryptography", extra="server")
    return jwt


@dataclass(frozen=True, slots=True)
class JWTKey:
    """A verification key bound to the one algorithm it may verify.

    Attributes:
        key: For ``HS256`` the shared secret (``str`` or ``bytes``, at least 32 bytes);
            for ``RS256``/``ES256`` a PEM public key (or a private key, whose public
            half is used), or a ``cryptography`` key object.
        algorithm: ``"HS256"``, ``"RS256"`` or ``"ES256"``.
        kid: The key id tokens name in their ``kid`` header, if any.
    """

    key: Any
    algorithm: Algorithm
    kid: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedKey:
    key: Any
    algorithm: str
    kid: str | None


def prepare_key(spec: JWTKey) -> PreparedKey:
    jwt = import_jwt()
    if spec.algorithm not in ALGORITHMS:
        raise ConfigurationError(
            f"unsupported JWT algorithm {spec.algorithm!r}; use one of {sorted(ALGORITHMS)}"
        )
    algorithm = jwt.get_algorithm_by_name(spec.algorithm)
    try:
        key = algorithm.prepare_key(spec.key)
    except (jwt.InvalidKeyError, ValueError, TypeError) as exc:
        raise ConfigurationError(f"not a valid {spec.algorithm} key: {exc}") from exc
    if spec.algorithm == "HS256":
        if len(key) < MIN_HMAC_KEY_BYTES:
            raise ConfigurationError(
                f"an HS256 secret must be at least {MIN_HMAC_KEY_BYTES} bytes (RFC 7518 3.2)"
            )
        return PreparedKey(key, spec.algorithm, spec.kid)
    if hasattr(key, "private_bytes"):  # a private key: verify with its public half
        key = key.public_key()
    if spec.algorithm == "RS256" and key.key_size < MIN_RSA_BITS:
        raise ConfigurationError(f"an RS256 key must have at least {MIN_RSA_BITS} bits")
    if spec.algorithm == "ES256" and key.curve.name != "secp256r1":
        raise ConfigurationError(f"an ES256 key must be on P-256, not {key.curve.name}")
    return PreparedKey(key, spec.algorithm, spec.kid)


def _fail(reason: str, message: str) -> AuthenticationFailed:
    return AuthenticationFailed(message, reason=reason)


def _b64json(segment: str, what: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        return json.loads(raw.decode("utf-8"))
    # RecursionError: deeply nested JSON; the size bound keeps it cheap to reach.
    except (binascii.Error, ValueError, UnicodeError, RecursionError) as exc:
        raise _fail("malformed", f"the token's {what} is not base64url JSON") from exc


def _error_map(jwt: Any) -> tuple[tuple[type[Exception], str], ...]:
    # Most specific first: InvalidSignatureError is a DecodeError, the claim errors
    # are InvalidTokenErrors.
    return (
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "not_yet_valid"),
        (jwt.InvalidAudienceError, "bad_audience"),
        (jwt.InvalidIssuerError, "bad_issuer"),
        (jwt.InvalidSignatureError, "bad_signature"),
        (jwt.MissingRequiredClaimError, "missing_claim"),
        (jwt.InvalidAlgorithmError, "alg_not_allowed"),
        (jwt.DecodeError, "malformed"),
        (jwt.PyJWTError, "invalid"),
    )


def decode_token(
    token: object,
    keys: Sequence[PreparedKey],
    *,
    audience: str | Sequence[str] | None,
    issuer: str | Sequence[str] | None,
    leeway: float,
    require: Iterable[str],
    now: float,
    max_size: int,
    algorithms: Iterable[str] | None = None,
) -> dict[str, Any]:
    """Verify a compact JWS and return its claims; every failure is AuthenticationFailed.

    Args:
        token: The compact JWS.
        keys: The keys to verify with, each bound to its algorithm.
        audience: Accepted ``aud`` value(s), or ``None``.
        issuer: Accepted ``iss`` value(s), or ``None``.
        leeway: Seconds of clock skew allowed on ``exp`` and ``nbf``.
        require: Claims that must be present.
        now: The time, Unix seconds.
        max_size: Longest token read.
        algorithms: Algorithms accepted (default: those of ``keys``); an accepted one
            with no key is ``unknown_key``, so a caller can fetch keys again.

    Raises:
        AuthenticationFailed: ``reason`` is one of ``missing``, ``malformed``,
            ``alg_not_allowed``, ``unknown_key``, ``bad_signature``, ``expired``,
            ``not_yet_valid``, ``bad_audience``, ``bad_issuer``, ``missing_claim``.
    """
    jwt = import_jwt()
    if token is None or token == "":
        raise _fail("missing", "no token was presented")
    if not isinstance(token, str):
        raise _fail("malformed", "the token is not a string")
    if len(token) > max_size:
        raise _fail("malformed", f"the token is longer than {max_size} characters")
    if not _SHAPE.fullmatch(token):
        raise _fail("malformed", "the token is not a compact JWS (three base64url parts)")
    header = _b64json(token.split(".", 1)[0], "header")
    if not isinstance(header, dict):
        raise _fail("malformed", "the token's header is not a JSON object")
    alg, kid = header.get("alg"), header.get("kid")
    allowed = sorted(set(algorithms) if algorithms is not None else {k.algorithm for k in keys})
    if not isinstance(alg, str) or alg not in allowed:
        raise _fail(
            "alg_not_allowed",
            f"the token's algorithm {str(alg)[:20]!r} is not accepted (accepted: {allowed})",
        )
    if kid is not None and (not isinstance(kid, str) or len(kid) > _MAX_KID):
        raise _fail("malformed", "the token's kid is not a short string")
    if "crit" in header:  # RFC 7515 4.1.11: extensions we do not understand
        raise _fail("malformed", "the token's header has critical extensions")
    candidates = [k for k in keys if k.algorithm == alg and (kid is None or k.kid == kid)]
    if not candidates:
        if any(k.kid == kid for k in keys):
            raise _fail("alg_not_allowed", f"key {kid!r} does not verify {alg} tokens")
        raise _fail("unknown_key", f"no key with kid {kid!r}")
    options = {
        "require": list(require),
        # exp/nbf/iat are checked below against the injected clock.
        "verify_exp": False,
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": True,  # with no audience configured, a token naming one is refused
        "verify_iss": issuer is not None,
        "verify_sub": False,
        "verify_jti": False,
    }
    claims: Any = None
    last: Exception | None = None
    for candidate in candidates:
        try:
            claims = jwt.decode(
                token,
                candidate.key,
                algorithms=[candidate.algorithm],
                audience=audience,
                issuer=issuer,
                options=options,
            )
            break
        except jwt.InvalidSignatureError as exc:
            last = exc
        except jwt.PyJWTError as exc:
            reason = next(r for cls, r in _error_map(jwt) if isinstance(exc, cls))
            raise _fail(reason, f"token refused: {exc}") from exc
        except (ValueError, TypeError, RecursionError, UnicodeError) as exc:
            raise _fail("malformed", "the token could not be decoded") from exc
    else:
        raise _fail("bad_signature", "the token's signature does not verify") from last
    if not isinstance(claims, dict):
        raise _fail("malformed", "the token's claims are not a JSON object")
    _check_times(claims, now=now, leeway=leeway)
    return claims


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail("malformed", f"the {name} claim is not a number")
    return float(value)


def _check_times(claims: Mapping[str, Any], *, now: float, leeway: float) -> None:
    # RFC 7519 4.1.4: reject "on or after" exp; 4.1.5: reject "before" nbf.
    exp, nbf = _number(claims, "exp"), _number(claims, "nbf")
    _number(claims, "iat")
    if exp is not None and now - leeway >= exp:
        raise _fail("expired", "the token has expired")
    if nbf is not None and now + leeway < nbf:
        raise _fail("not_yet_valid", "the token is not valid yet")


def principal_from(claims: dict[str, Any], *, subject_claim: str, max_id: int = 256) -> Principal:
    """Build the principal of verified claims: id from ``subject_claim``, scopes."""
    sub = claims.get(subject_claim)
    if sub is None:
        raise _fail("missing_claim", f"the token has no {subject_claim} claim")
    if not isinstance(sub, str) or not sub or len(sub) > max_id:
        raise _fail("malformed", f"the {subject_claim} claim is not a short non-empty string")
    exp = claims.get("exp")
    return Principal(
        id=sub,
        claims=claims,
        scopes=_scopes(claims),
        expires_at=float(exp) if exp is not None else None,
    )


def _scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    # RFC 8693 4.2 "scope": space-delimited; "scp": Azure AD / Okta, a list or a string.
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list) and all(isinstance(s, str) for s in value):
            found.update(value)
        else:
            raise _fail("malformed", f"the {name} claim is neither a string nor a list of them")
    return frozenset(found)


class JWTAuthorizer:
    """Authenticate connections with signed JWTs (HS256, RS256, ES256).

    Checks the signature with the key the token's ``kid`` names (or, without a
    ``kid``, each key of the token's algorithm), then ``exp`` and ``nbf`` (with
    ``leeway``), ``aud`` and ``iss`` when configured (a token carrying an ``aud``
    is refused when no audience is configured, RFC 7519 4.1.3), and the
    required claims. The principal's id is the ``sub`` claim (``subject_claim``),
    its scopes the ``scope`` (space-separated) and ``scp`` claims, its
    ``expires_at`` the ``exp`` claim.

    Args:
        keys: One key or several (rotation: old and new, told apart by ``kid``).
        audience: The audience(s) this gateway accepts, or ``None``.
        issuer: The issuer(s) accepted, or ``None``.
        leeway: Seconds of clock skew allowed on ``exp`` and ``nbf``.
        require: Claims a token must carry (``exp`` by default: no eternal tokens).
        subject_claim: The claim holding the principal id.
        max_token_size: Longer tokens are refused before any decoding.
        clock: Returns the time in Unix seconds (injected by tests).

    Raises:
        ConfigurationError: A key is unusable (an HS256 secret under 32 bytes, an
            RSA key under 2048 bits, a PEM key given for HS256...).
        MissingDependency: pyjwt or cryptography is not installed (extra ``server``).

    Example:
        >>> auth = JWTAuthorizer(JWTKey("a-secret-of-at-least-32-bytes!!!", "HS256"))
    """

    def __init__(
        self,
        keys: JWTKey | Sequence[JWTKey],
        *,
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        leeway: float = 0.0,
        require: Sequence[str] = ("exp",),
        subject_claim: str = "sub",
        max_token_size: int = DEFAULT_MAX_TOKEN_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        specs = [keys] if isinstance(keys, JWTKey) else list(keys)
        if not specs:
            raise ConfigurationError("JWTAuthorizer needs at least one key")
        self._keys = tuple(prepare_key(k) for k in specs)
        self._audience = audience
        self._issuer = issuer
        self._leeway = float(leeway)
        self._require = tuple(require)
        self._subject_claim = subject_claim
        self._max_size = max_token_size
        self._clock = clock

    async def __call__(self, credentials: Credentials) -> Principal:
        """Authenticate ``credentials.token``.

        Raises:
            AuthenticationFailed: With ``reason`` ``missing``, ``malformed``,
                ``alg_not_allowed``, ``unknown_key``, ``bad_signature``, ``expired``,
                ``not_yet_valid``, ``bad_audience``, ``bad_issuer`` or ``missing_claim``.
        """
        return self.verify(credentials.token)

    def verify(self, token: str | None) -> Principal:
        """Verify a token synchronously (what :meth:`__call__` does)."""
        claims = decode_token(
            token,
            self._keys,
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            require=self._require,
            now=self._clock(),
            max_size=self._max_size,
        )
        return principal_from(claims, subject_claim=self._subject_claim)
