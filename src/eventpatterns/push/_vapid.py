"""VAPID (RFC 8292): the application server's P-256 key pair and its ES256 tokens.

Sans-I/O: :class:`Vapid` makes the ``Authorization: vapid t=..., k=...`` value for a
push service origin at a given time, and :func:`verify_vapid` checks one (the testing
receiver uses it). Signing and verifying are PyJWT's, on ``cryptography`` keys. A
private key never appears in a ``repr``, a log or an exception.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import AuthenticationFailed, ConfigurationError, MissingDependency

try:
    import jwt
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
except ImportError as exc:  # pragma: no cover - the push extra is installed in the tests
    raise MissingDependency("pyjwt", extra="push") from exc

__all__ = [
    "DEFAULT_LIFETIME",
    "MAX_LIFETIME",
    "Vapid",
    "VapidClaims",
    "VapidKeys",
    "b64url_decode",
    "b64url_encode",
    "origin_of",
    "verify_vapid",
]

#: RFC 8292 section 2: ``exp`` MUST NOT be more than 24 hours after the request.
MAX_LIFETIME = 24 * 3600.0
#: Tokens are minted for 12 hours and reused for every message to an origin meanwhile.
DEFAULT_LIFETIME = 12 * 3600.0
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")
_RESERVED = frozenset({"aud", "exp", "sub"})


def b64url_encode(data: bytes) -> str:
    """Encode as base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str, *, what: str) -> bytes:
    """Decode base64url, with or without padding; standard base64 is refused.

    Raises:
        ValueError: Not base64url (the message names ``what``).
    """
    if not isinstance(text, str) or not _B64URL.fullmatch(text):
        raise ValueError(f"{what} is not base64url text")
    stripped = text.rstrip("=")
    if len(stripped) % 4 == 1:
        raise ValueError(f"{what} is not base64url: its length cannot be decoded")
    try:
        return base64.urlsafe_b64decode(stripped + "=" * (-len(stripped) % 4))
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - the regex admits only valid
        raise ValueError(f"{what} is not base64url ({exc})") from None


def origin_of(url: str) -> str:
    """Return a URL's origin (``scheme://host[:port]``): a VAPID token's ``aud``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()


def _public_point(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


class VapidKeys:
    """An application server's P-256 key pair (RFC 8292 section 3).

    Make one with :meth:`generate` (or ``eventpatterns push vapid-keys``), keep the
    private key secret, and give browsers :attr:`application_server_key`.

    Args:
        private_key: A P-256 private key from ``cryptography``.

    Raises:
        ConfigurationError: The key is not on the P-256 curve.
    """

    __slots__ = ("_private", "application_server_key", "public_key")

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ConfigurationError("a VAPID key must be an EC private key on P-256")
        self._private = private_key
        #: The public key as 65 octets (uncompressed X9.62 point).
        self.public_key = _public_point(private_key)
        #: The public key as base64url: ``applicationServerKey`` for ``subscribe()``
        #: in the browser, and the ``k=`` of every Authorization header.
        self.application_server_key = b64url_encode(self.public_key)

    def __repr__(self) -> str:  # never show the private key
        return f"VapidKeys(application_server_key={self.application_server_key!r})"

    @classmethod
    def generate(cls) -> VapidKeys:
        """Make a new random key pair."""
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: str | bytes) -> VapidKeys:
        """Load a PEM private key (PKCS#8 or SEC 1 ``EC PRIVATE KEY``, unencrypted).

        Raises:
            ConfigurationError: Not an unencrypted P-256 PEM private key.
        """
        data = pem.encode("ascii", "replace") if isinstance(pem, str) else pem
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):  # its message could quote key material: drop it
            raise ConfigurationError(
                "the VAPID private key is not an unencrypted PEM private key"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigurationError("the VAPID private key is not an EC (P-256) key")
        return cls(key)

    @classmethod
    def from_raw(cls, private_key: str) -> VapidKeys:
        """Load the base64url 32-octet private scalar (the form web-push tools print).

        Raises:
            ConfigurationError: Not base64url of 32 octets, or not a valid P-256 scalar.
        """
        try:
            raw = b64url_decode(private_key, what="the VAPID private key")
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if len(raw) != 32:
            raise ConfigurationError(
                f"the VAPID private key must be 32 octets of base64url, not {len(raw)}"
            )
        try:
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
        except ValueError:
            raise ConfigurationError("the VAPID private key is not a valid P-256 scalar") from None
        return cls(key)

    @classmethod
    def load(cls, value: str | bytes) -> VapidKeys:
        """Load either form: PEM text, or the base64url private scalar.

        Raises:
            ConfigurationError: Neither form.
        """
        text = value.decode("ascii", "replace") if isinstance(value, bytes) else value
        if "-----BEGIN" in text:
            return cls.from_pem(text)
        return cls.from_raw(text.strip())

    def private_pem(self) -> str:
        """Return the private key as PKCS#8 PEM (unencrypted: store it as a secret)."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def private_raw(self) -> str:
        """Return the private scalar as base64url (32 octets)."""
        return b64url_encode(self._private.private_numbers().private_value.to_bytes(32, "big"))

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """The ``cryptography`` private key."""
        return self._private


def _check_subject(subject: str) -> None:
    if not isinstance(subject, str):
        raise ConfigurationError("the VAPID subject must be a string")
    if subject.startswith("mailto:"):
        address = subject[len("mailto:") :]
        local, at, domain = address.partition("@")
        if at and local and domain and not any(c.isspace() for c in address):
            return
    elif subject.startswith("https://"):
        parts = urlsplit(subject)
        if parts.hostname and not any(c.isspace() for c in subject):
            return
    raise ConfigurationError(
        f"the VAPID subject must be a mailto: address or an https: URL"
        f" (RFC 8292 section 2.1), not {subject[:100]!r}"
    )


def _check_audience(audience: str) -> None:
    parts = urlsplit(audience)
    if (
        parts.scheme not in ("https", "http")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        raise ConfigurationError(
            f"the VAPID audience must be an origin such as https://push.example.net,"
            f" not {audience[:100]!r}"
        )


class Vapid:
    """Sign VAPID tokens for push service origins (RFC 8292 section 2).

    Args:
        keys: The application server's key pair.
        subject: A contact for the push service operator: ``mailto:`` or ``https:``.
        lifetime: Seconds each token is valid (at most 24 hours).
        claims: Extra JWT claims to add (copied: the caller's mapping is never
            changed); ``aud``, ``exp`` and ``sub`` are set here and cannot be given.

    Raises:
        ConfigurationError: A bad subject, lifetime or claim.
    """

    __slots__ = ("_claims", "keys", "lifetime", "subject")

    def __init__(
        self,
        keys: VapidKeys,
        *,
        subject: str,
        lifetime: float = DEFAULT_LIFETIME,
        claims: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(keys, VapidKeys):
            raise ConfigurationError("Vapid() needs VapidKeys (VapidKeys.generate() or .load())")
        _check_subject(subject)
        if not 60 <= lifetime <= MAX_LIFETIME:
            raise ConfigurationError(
                f"the VAPID token lifetime must be 60 s to 24 h (RFC 8292), not {lifetime} s"
            )
        extra = dict(claims or {})
        reserved = sorted(_RESERVED & extra.keys())
        if reserved:
            raise ConfigurationError(f"VAPID claims {reserved} are set by Vapid itself")
        self.keys = keys
        self.subject = subject
        self.lifetime = float(lifetime)
        self._claims = extra

    def __repr__(self) -> str:
        return f"Vapid(subject={self.subject!r}, keys={self.keys!r})"

    def claims(self, audience: str, *, now: float) -> dict[str, Any]:
        """Return the claims of a token for ``audience`` made at ``now`` (a new dict).

        Raises:
            ConfigurationError: ``audience`` is not an origin.
        """
        _check_audience(audience)
        return {
            **self._claims,
            "aud": audience,
            "exp": int(now + self.lifetime),
            "sub": self.subject,
        }

    def authorization(self, audience: str, *, now: float) -> tuple[str, float]:
        """Return the ``Authorization`` header value and when it expires.

        Args:
            audience: The push service origin (see :func:`origin_of`).
            now: The current time (Unix seconds).

        Raises:
            ConfigurationError: ``audience`` is not an origin.
        """
        claims = self.claims(audience, now=now)
        token = jwt.encode(claims, self.keys.private_key, algorithm="ES256")
        return f"vapid t={token}, k={self.keys.application_server_key}", float(claims["exp"])


@dataclass(frozen=True, slots=True)
class VapidClaims:
    """What a verified VAPID token says.

    Attributes:
        audience: ``aud``, the push service origin.
        expires: ``exp`` (Unix seconds).
        subject: ``sub``, the sender's contact.
        application_server_key: ``k``, the sender's public key (base64url).
    """

    audience: str
    expires: float
    subject: str
    application_server_key: str


def _fail(message: str, reason: str) -> AuthenticationFailed:
    return AuthenticationFailed(f"VAPID: {message}", reason=reason)


def _parse(header: str) -> tuple[str, str]:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "vapid":
        raise _fail("the Authorization scheme is not vapid", "missing")
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if not eq:
            raise _fail("malformed Authorization parameters", "malformed")
        params[name.strip().lower()] = value.strip()
    if "t" not in params or "k" not in params:
        raise _fail("the Authorization header needs t= and k=", "malformed")
    return params["t"], params["k"]


def verify_vapid(header: str, *, audience: str, now: float) -> VapidClaims:
    """Verify an ``Authorization: vapid t=..., k=...`` value as a push service does.

    Checks the ES256 signature with the ``k`` key, that ``aud`` is ``audience``, that
    ``exp`` is in the future and at most 24 hours ahead, and the form of ``sub``.

    Args:
        header: The ``Authorization`` header's value.
        audience: The push service's own origin.
        now: The current time (Unix seconds).

    Returns:
        The token's claims.

    Raises:
        AuthenticationFailed: Any check failed (``reason`` says which).
    """
    token, k = _parse(header)
    try:
        point = b64url_decode(k, what="k")
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        raise _fail("k= is not a base64url P-256 public key", "unknown_key") from None
    try:
        if jwt.get_unverified_header(token).get("alg") != "ES256":
            raise _fail("the token is not signed with ES256", "bad_signature")
        claims = jwt.decode(
            token, public, algorithms=["ES256"], options={"verify_exp": False, "verify_aud": False}
        )
    except jwt.InvalidSignatureError:
        raise _fail("the token's signature does not match k=", "bad_signature") from None
    except jwt.PyJWTError:
        raise _fail("the token is not a valid JWT", "malformed") from None
    aud, exp, sub = claims.get("aud"), claims.get("exp"), claims.get("sub")
    if aud != audience:
        raise _fail(f"aud is {str(aud)[:100]!r}, not this service's {audience!r}", "audience")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise _fail("exp is missing", "malformed")
    if exp <= now:
        raise _fail("the token expired", "expired")
    if exp > now + MAX_LIFETIME:
        raise _fail("exp is more than 24 hours ahead (RFC 8292 section 2)", "lifetime")
    if not isinstance(sub, str):
        raise _fail("sub is missing", "subject")
    try:
        _check_subject(sub)
    except ConfigurationError:
        raise _fail("sub is not a mailto: or https: contact", "subject") from None
    return VapidClaims(aud, float(exp), sub, b64url_encode(point))
