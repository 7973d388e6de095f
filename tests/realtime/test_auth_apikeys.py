"""APIKeyAuthorizer: hashed at rest, expiry on an injected clock, revocation, hostile keys."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.realtime import APIKeyAuthorizer, APIKeyRecord, Credentials

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reason(auth: APIKeyAuthorizer, key: object) -> str:
    with pytest.raises(AuthenticationFailed) as info:
        auth.verify(key)
    return info.value.reason


async def test_created_key_authenticates_as_its_principal() -> None:
    auth = APIKeyAuthorizer(clock=Clock(1000.0))
    key, record = auth.create_key("alice", scopes={"orders:read"}, expires_at=5000.0)
    principal = await auth(Credentials(api_key=key))
    assert principal.id == "alice"
    assert principal.scopes == {"orders:read"}
    assert principal.expires_at == 5000.0
    assert principal.claims == {"key_id": record.key_id}
    # The key may also come as the token (?token=, an authenticate frame).
    assert (await auth(Credentials(token=key))).id == "alice"


def test_only_a_hash_is_stored() -> None:
    auth = APIKeyAuthorizer()
    key, record = auth.create_key("alice")
    secret = key.rsplit("_", 1)[1]
    stored = json.dumps(record.to_dict())
    assert secret not in stored
    assert secret not in repr(record)
    assert len(record.digest) == 64
    assert key.startswith(f"epk_{record.key_id}_")
    other, _ = auth.create_key("alice")
    assert other != key  # random, never derived from the principal


def test_records_round_trip_through_storage() -> None:
    first = APIKeyAuthorizer()
    key, record = first.create_key("bob", scopes={"b", "a"}, expires_at=None)
    loaded = APIKeyRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert loaded == record
    second = APIKeyAuthorizer([loaded])
    assert second.verify(key).id == "bob"
    assert second.records == (record,)


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"key_id": "x", "digest": "0" * 64, "principal_id": "a"},
        {"key_id": "0" * 16, "digest": "nothex", "principal_id": "a"},
        {"key_id": "0" * 16, "digest": "0" * 64, "principal_id": ""},
        {"key_id": "0" * 16, "digest": "0" * 64, "principal_id": "a", "scopes": 5},
        {"key_id": "0" * 16, "digest": "0" * 64, "principal_id": "a", "expires_at": "soon"},
    ],
)
def test_malformed_records_are_refused(data: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        APIKeyRecord.from_dict(data)


def test_create_key_needs_a_principal() -> None:
    with pytest.raises(ConfigurationError):
        APIKeyAuthorizer().create_key("")


def test_expiry_follows_the_clock() -> None:
    clock = Clock(1000.0)
    auth = APIKeyAuthorizer(clock=clock)
    key, _ = auth.create_key("alice", expires_at=1060.0)
    assert auth.verify(key).id == "alice"
    clock.now = 1060.0
    assert reason(auth, key) == "expired"


def test_revoked_key_is_refused() -> None:
    auth = APIKeyAuthorizer()
    key, record = auth.create_key("alice")
    kept, _ = auth.create_key("alice")
    assert auth.revoke(record.key_id) is True
    assert auth.revoke(record.key_id) is False
    assert reason(auth, key) == "unknown_key"
    assert auth.verify(kept).id == "alice"


def test_wrong_secret_for_a_known_id_is_refused() -> None:
    auth = APIKeyAuthorizer()
    key, _ = auth.create_key("alice")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert reason(auth, forged) == "unknown_key"


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (None, "missing"),
        ("", "missing"),
        (42, "malformed"),
        ("epk_" + "x" * 10_000, "malformed"),
        ("not-a-key", "unknown_key"),
        ("epk_0123456789abcdef_short", "unknown_key"),
        ("epk_0123456789abcdef_" + "é" * 43, "malformed"),
        ("line\nbreak", "malformed"),
        ("epk_0123456789abcdef_" + "a" * 43, "unknown_key"),
    ],
)
def test_hostile_keys(key: object, expected: str) -> None:
    auth = APIKeyAuthorizer()
    auth.create_key("alice")
    assert reason(auth, key) == expected


@settings(max_examples=200)
@given(st.text(max_size=120) | st.from_regex(r"epk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", fullmatch=True))
def test_fuzz_keys_raise_only_authentication_failed(key: str) -> None:
    auth = APIKeyAuthorizer()
    auth.create_key("alice")
    with pytest.raises(AuthenticationFailed):
        auth.verify(key)


def test_imported_key() -> None:
    auth = APIKeyAuthorizer()
    record = auth.import_key("dev-key-from-the-cli", "dev", scopes={"admin"})
    assert "dev-key-from-the-cli" not in str(record.to_dict())
    principal = auth.verify("dev-key-from-the-cli")
    assert (principal.id, principal.scopes) == ("dev", frozenset({"admin"}))
    assert reason(auth, "dev-key-from-the-clj") == "unknown_key"
    assert auth.revoke(record.key_id)
    assert reason(auth, "dev-key-from-the-cli") == "unknown_key"
    # A key in the library's own format keeps its id.
    made, _ = APIKeyAuthorizer().create_key("x")
    assert auth.import_key(made, "alice").key_id == made.split("_")[1]
    assert auth.verify(made).id == "alice"


@pytest.mark.parametrize("key", ["short", "x" * 300, "é" * 20, "tab\there-and-more-text"])
def test_imported_keys_must_be_long_printable_ascii(key: str) -> None:
    with pytest.raises(ConfigurationError):
        APIKeyAuthorizer().import_key(key, "dev")
    with pytest.raises(ConfigurationError):
        APIKeyAuthorizer().import_key("a-long-enough-key", "")


async def test_first_of_api_keys_and_jwts() -> None:
    import jwt

    from eventpatterns.realtime import JWTAuthorizer, JWTKey, first_of

    keys = APIKeyAuthorizer()
    key, _ = keys.create_key("robot")
    secret = "j" * 32
    auth = first_of(keys, JWTAuthorizer(JWTKey(secret, "HS256"), clock=lambda: 1000.0))
    assert (await auth(Credentials(api_key=key))).id == "robot"
    token = jwt.encode({"sub": "alice", "exp": 2000}, secret, "HS256")
    assert (await auth(Credentials(token=token))).id == "alice"
    expired = jwt.encode({"sub": "alice", "exp": 999}, secret, "HS256")
    with pytest.raises(AuthenticationFailed) as info:
        await auth(Credentials(token=expired))
    assert info.value.reason == "expired"  # not the API key authorizer's unknown_key
    with pytest.raises(AuthenticationFailed) as info:
        await auth(Credentials())
    assert info.value.reason == "missing"
    with pytest.raises(ConfigurationError):
        first_of()
