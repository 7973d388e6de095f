"""API keys: random secrets, stored as hashes, with owner, scopes and expiry.

A key reads ``epk_<key id>_<secret>``: the id (16 hex digits) finds the record, the
secret is 32 random bytes (256 bits, ``secrets.token_urlsafe``). A key made elsewhere
(:meth:`APIKeyAuthorizer.import_key`) is filed under a prefix of its digest. Only the SHA-256 of
the whole key is stored. A slow hash (scrypt, PBKDF2) protects *guessable* secrets
such as passwords; a 256-bit random secret cannot be guessed, so one SHA-256 is as
strong and keeps each connection's check in microseconds (the reasoning of GitHub's
and Stripe's token formats). Digests are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from ..errors import AuthenticationFailed, ConfigurationError
from ._auth import Credentials, Principal

__all__ = ["APIKeyAuthorizer", "APIKeyRecord"]

PREFIX: Final = "epk_"
_FORMAT = re.compile(r"epk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_MAX_KEY_CHARS: Final = 256
MIN_IMPORTED_KEY_CHARS: Final = 16


def _key_id(key: str) -> str:
    """Return the id a key is filed under: its own, or for a key made elsewhere, a digest prefix."""
    match = _FORMAT.fullmatch(key)
    return match.group(1) if match else _digest(key)[:16]


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


@dataclass(frozen=True, slots=True)
class APIKeyRecord:
    """What is stored for one API key: never the key itself.

    Attributes:
        key_id: The public part of the key, to look the record up (and to revoke).
        digest: Hex SHA-256 of the whole key.
        principal_id: The principal the key authenticates as.
        scopes: The scopes it grants.
        expires_at: When it stops working, Unix seconds, or ``None``.
    """

    key_id: str
    digest: str
    principal_id: str
    scopes: frozenset[str] = frozenset()
    expires_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready form, for a database or a file."""
        return {
            "key_id": self.key_id,
            "digest": self.digest,
            "principal_id": self.principal_id,
            "scopes": sorted(self.scopes),
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> APIKeyRecord:
        """Rebuild a record from :meth:`to_dict`'s form.

        Raises:
            ConfigurationError: A field is missing or of the wrong type.
        """
        try:
            record = cls(
                key_id=data["key_id"],
                digest=data["digest"],
                principal_id=data["principal_id"],
                scopes=frozenset(data.get("scopes", ())),
                expires_at=data.get("expires_at"),
            )
        except (KeyError, TypeError) as exc:
            raise ConfigurationError(f"not an API key record: {exc}") from exc
        _check(record)
        return record


def _check(record: APIKeyRecord) -> None:
    ok = (
        isinstance(record.key_id, str)
        and re.fullmatch(r"[0-9a-f]{16}", record.key_id) is not None
        and isinstance(record.digest, str)
        and re.fullmatch(r"[0-9a-f]{64}", record.digest) is not None
        and isinstance(record.principal_id, str)
        and bool(record.principal_id)
        and all(isinstance(s, str) for s in record.scopes)
        and (record.expires_at is None or isinstance(record.expires_at, (int, float)))
    )
    if not ok:
        raise ConfigurationError(f"invalid API key record for key id {record.key_id!r}")


class APIKeyAuthorizer:
    """Authenticate connections with API keys (``X-Api-Key``, or the token).

    Args:
        records: The stored keys (:meth:`APIKeyRecord.from_dict` reads them back).
        clock: Returns the time in Unix seconds, for expiry (injected by tests).

    Revoking a key refuses it from then on; connections already open with it stay
    open until the gateway is told (``Gateway.revoke(principal_id)``).

    Example:
        >>> auth = APIKeyAuthorizer()
        >>> key, record = auth.create_key("alice", scopes={"orders:read"})
        >>> key.startswith("epk_") and record.principal_id
        'alice'
    """

    def __init__(
        self, records: Iterable[APIKeyRecord] = (), *, clock: Callable[[], float] = time.time
    ) -> None:
        self._records: dict[str, APIKeyRecord] = {}
        self._clock = clock
        for record in records:
            self.add(record)

    @property
    def records(self) -> tuple[APIKeyRecord, ...]:
        """The keys held, as stored."""
        return tuple(self._records.values())

    def create_key(
        self,
        principal_id: str,
        *,
        scopes: Iterable[str] = (),
        expires_at: float | None = None,
    ) -> tuple[str, APIKeyRecord]:
        """Make a new key for ``principal_id``, hold its record, and return both.

        The plaintext key is returned only here: hand it to its owner and store the
        record (:meth:`APIKeyRecord.to_dict`).

        Returns:
            ``(key, record)``.
        """
        if not isinstance(principal_id, str) or not principal_id:
            raise ConfigurationError("an API key's principal id is a non-empty string")
        key_id = secrets.token_hex(8)
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = APIKeyRecord(key_id, _digest(key), principal_id, frozenset(scopes), expires_at)
        self.add(record)
        return key, record

    def import_key(
        self,
        key: str,
        principal_id: str,
        *,
        scopes: Iterable[str] = (),
        expires_at: float | None = None,
    ) -> APIKeyRecord:
        """Hold a key made elsewhere (a command-line flag, a secret manager) and return its record.

        Prefer :meth:`create_key`: an imported key is only as strong as whoever chose it.

        Raises:
            ConfigurationError: The key is shorter than 16 characters, longer than 256,
                or not printable ASCII.
        """
        if (
            not isinstance(key, str)
            or not MIN_IMPORTED_KEY_CHARS <= len(key) <= _MAX_KEY_CHARS
            or not (key.isascii() and key.isprintable())
        ):
            raise ConfigurationError(
                f"an API key is {MIN_IMPORTED_KEY_CHARS} to {_MAX_KEY_CHARS} printable ASCII"
                " characters"
            )
        if not isinstance(principal_id, str) or not principal_id:
            raise ConfigurationError("an API key's principal id is a non-empty string")
        record = APIKeyRecord(
            _key_id(key), _digest(key), principal_id, frozenset(scopes), expires_at
        )
        self.add(record)
        return record

    def add(self, record: APIKeyRecord) -> None:
        """Hold a stored key's record (replacing one with the same ``key_id``).

        Raises:
            ConfigurationError: The record is malformed.
        """
        _check(record)
        self._records[record.key_id] = record

    def revoke(self, key_id: str) -> bool:
        """Stop accepting a key; return whether it was held."""
        return self._records.pop(key_id, None) is not None

    async def __call__(self, credentials: Credentials) -> Principal:
        """Authenticate ``credentials.api_key`` (or, without one, ``credentials.token``).

        Raises:
            AuthenticationFailed: ``reason`` ``missing``, ``malformed``,
                ``unknown_key`` (no such key, or a wrong secret) or ``expired``.
        """
        return self.verify(credentials.api_key or credentials.token)

    def verify(self, key: object) -> Principal:
        """Check one key synchronously (what :meth:`__call__` does)."""
        if key is None or key == "":
            raise AuthenticationFailed("no API key was presented", reason="missing")
        if (
            not isinstance(key, str)
            or len(key) > _MAX_KEY_CHARS
            or not (key.isascii() and key.isprintable())
        ):
            raise AuthenticationFailed("the API key is malformed", reason="malformed")
        record = self._records.get(_key_id(key))
        # Compare even for an unknown id, so both refusals take the same time.
        expected = record.digest if record is not None else "0" * 64
        if not hmac.compare_digest(expected, _digest(key)) or record is None:
            raise AuthenticationFailed("unknown or revoked API key", reason="unknown_key")
        if record.expires_at is not None and self._clock() >= record.expires_at:
            raise AuthenticationFailed("the API key has expired", reason="expired")
        return Principal(
            id=record.principal_id,
            claims={"key_id": record.key_id},
            scopes=record.scopes,
            expires_at=record.expires_at,
        )
