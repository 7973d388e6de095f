"""VAPID (RFC 8292): keys in every form, the claims, signing and every verification error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.push import Vapid, VapidKeys, verify_vapid
from eventpatterns.push._vapid import b64url_decode, b64url_encode, origin_of

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors_rfc8291.json").read_text(encoding="utf-8")
)["vapid_example_rfc8292"]
NOW = 1_800_000_000.0
AUD = "https://push.example.net"


@pytest.fixture(scope="module")
def keys() -> VapidKeys:
    return VapidKeys.generate()


def test_keys_round_trip_through_pem_and_raw(keys: VapidKeys) -> None:
    assert VapidKeys.from_pem(keys.private_pem()).private_raw() == keys.private_raw()
    assert VapidKeys.from_raw(keys.private_raw()).private_pem() == keys.private_pem()
    assert VapidKeys.load(keys.private_pem().encode()).public_key == keys.public_key
    assert VapidKeys.load("  " + keys.private_raw() + "\n").public_key == keys.public_key
    assert len(b64url_decode(keys.application_server_key, what="k")) == 65
    assert keys.public_key[0] == 4  # uncompressed point, as applicationServerKey needs


def test_a_sec1_pem_loads_too(keys: VapidKeys) -> None:
    sec1 = keys.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert sec1.startswith(b"-----BEGIN EC PRIVATE KEY")
    assert VapidKeys.from_pem(sec1).public_key == keys.public_key


def test_no_repr_shows_the_private_key(keys: VapidKeys) -> None:
    vapid = Vapid(keys, subject="mailto:ops@example.com")
    for text in (repr(keys), repr(vapid), str(keys)):
        assert keys.private_raw() not in text
        assert keys.application_server_key in text


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not base64!", "not base64url"),
        ("abc", "32 octets of base64url, not 2"),
        ("a", "length cannot be decoded"),
        (b64url_encode(b"\0" * 32), "not a valid P-256 scalar"),
        (b64url_encode(b"\xff" * 32), "not a valid P-256 scalar"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "unencrypted PEM"),
    ],
)
def test_bad_private_keys_are_refused_by_name(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as info:
        VapidKeys.load(value)
    assert value not in str(info.value) or len(value) < 5


def test_keys_of_another_kind_or_curve_are_refused() -> None:
    rsa_pem = (
        ec.generate_private_key(ec.SECP384R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(ConfigurationError, match="P-256"):
        VapidKeys.from_pem(rsa_pem)
    from cryptography.hazmat.primitives.asymmetric import ed25519

    ed = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError, match="not an EC"):
        VapidKeys.from_pem(ed)


def test_authorization_is_an_es256_jwt_with_aud_exp_sub(keys: VapidKeys) -> None:
    vapid = Vapid(keys, subject="mailto:ops@example.com", lifetime=3600)
    value, expires = vapid.authorization(AUD, now=NOW)
    assert value.startswith("vapid t=")
    token, k = value[len("vapid t=") :].split(", k=")
    assert k == keys.application_server_key
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "typ": "JWT"}
    claims = jwt.decode(token, keys.private_key.public_key(), algorithms=["ES256"],
                        audience=AUD, options={"verify_exp": False})  # fmt: skip
    assert claims == {"aud": AUD, "exp": int(NOW) + 3600, "sub": "mailto:ops@example.com"}
    assert expires == NOW + 3600
    verified = verify_vapid(value, audience=AUD, now=NOW)
    assert (verified.audience, verified.subject, verified.expires) == (AUD, claims["sub"], expires)
    assert verified.application_server_key == keys.application_server_key


def test_the_callers_claims_are_copied_never_changed(keys: VapidKeys) -> None:
    extra = {"jti": "abc"}
    vapid = Vapid(keys, subject="https://example.com/contact", claims=extra)
    first = vapid.claims(AUD, now=NOW)
    assert first["jti"] == "abc"
    first["sub"] = "changed"
    assert extra == {"jti": "abc"}
    assert vapid.claims("https://other.example", now=NOW)["sub"] == "https://example.com/contact"
    with pytest.raises(ConfigurationError, match=r"\['aud', 'sub'\] are set by Vapid"):
        Vapid(keys, subject="mailto:a@b.c", claims={"sub": "x", "aud": "y"})


@pytest.mark.parametrize(
    "subject",
    ["ops@example.com", "mailto:", "mailto:nobody", "mailto:a @b.c", "http://example.com",
     "https://", "https:// example.com", "", "tel:123"],
)  # fmt: skip
def test_the_subject_must_be_mailto_or_https(keys: VapidKeys, subject: str) -> None:
    with pytest.raises(ConfigurationError, match="mailto: address or an https: URL"):
        Vapid(keys, subject=subject)


def test_the_lifetime_is_at_most_24_hours(keys: VapidKeys) -> None:
    Vapid(keys, subject="mailto:a@b.c", lifetime=24 * 3600)
    with pytest.raises(ConfigurationError, match="60 s to 24 h"):
        Vapid(keys, subject="mailto:a@b.c", lifetime=24 * 3600 + 1)
    with pytest.raises(ConfigurationError, match="60 s to 24 h"):
        Vapid(keys, subject="mailto:a@b.c", lifetime=10)
    with pytest.raises(ConfigurationError, match="needs VapidKeys"):
        Vapid("key", subject="mailto:a@b.c")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="P-256"):
        VapidKeys("key")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "audience",
    ["push.example.net", "https://push.example.net/path", "ftp://push.example.net",
     "https://push.example.net?q=1", "https://user@push.example.net", "https://"],
)  # fmt: skip
def test_the_audience_must_be_an_origin(keys: VapidKeys, audience: str) -> None:
    with pytest.raises(ConfigurationError, match="must be an origin"):
        Vapid(keys, subject="mailto:a@b.c").authorization(audience, now=NOW)


def test_origin_of_an_endpoint() -> None:
    assert origin_of("https://FCM.googleapis.com/fcm/send/abc") == "https://fcm.googleapis.com"
    assert origin_of("http://127.0.0.1:8080/push/1?x") == "http://127.0.0.1:8080"


def test_the_rfc8292_example_token_verifies_before_its_exp() -> None:
    claims = verify_vapid(
        EXAMPLE["authorization"], audience=AUD, now=EXAMPLE["jwt_claims"]["exp"] - 60
    )
    assert claims.subject == "mailto:push@example.com"
    assert claims.expires == 1453523768
    with pytest.raises(AuthenticationFailed, match="expired") as info:
        verify_vapid(EXAMPLE["authorization"], audience=AUD, now=NOW)
    assert info.value.reason == "expired"


def _token(keys: VapidKeys, claims: dict[str, Any], *, alg: str = "ES256") -> str:
    token = jwt.encode(claims, keys.private_key, algorithm=alg)
    return f"vapid t={token}, k={keys.application_server_key}"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "https://other.example", "exp": NOW + 60, "sub": "mailto:a@b.c"}, "audience"),
        ({"aud": AUD, "exp": NOW - 1, "sub": "mailto:a@b.c"}, "expired"),
        ({"aud": AUD, "exp": NOW + 24 * 3600 + 1, "sub": "mailto:a@b.c"}, "lifetime"),
        ({"aud": AUD, "sub": "mailto:a@b.c"}, "malformed"),
        ({"aud": AUD, "exp": "soon", "sub": "mailto:a@b.c"}, "malformed"),
        ({"aud": AUD, "exp": NOW + 60, "sub": "a@b.c"}, "subject"),
        ({"aud": AUD, "exp": NOW + 60}, "subject"),
    ],
)
def test_verify_refuses_bad_claims(keys: VapidKeys, claims: dict[str, Any], reason: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        verify_vapid(_token(keys, claims), audience=AUD, now=NOW)
    assert info.value.reason == reason
    assert str(info.value).startswith("VAPID: ")


def test_verify_refuses_a_token_signed_by_another_key(keys: VapidKeys) -> None:
    other = VapidKeys.generate()
    value, _ = Vapid(other, subject="mailto:a@b.c").authorization(AUD, now=NOW)
    forged = value.replace(other.application_server_key, keys.application_server_key)
    with pytest.raises(AuthenticationFailed, match="does not match k=") as info:
        verify_vapid(forged, audience=AUD, now=NOW)
    assert info.value.reason == "bad_signature"


def test_verify_refuses_another_algorithm(keys: VapidKeys) -> None:
    hs = jwt.encode(
        {"aud": AUD, "exp": NOW + 60, "sub": "mailto:a@b.c"}, "k" * 32, algorithm="HS256"
    )
    with pytest.raises(AuthenticationFailed, match="ES256"):
        verify_vapid(f"vapid t={hs}, k={keys.application_server_key}", audience=AUD, now=NOW)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("", "missing"),
        ("Bearer abc", "missing"),
        ("vapid t", "malformed"),
        ("vapid t=abc", "malformed"),
        ("vapid t=abc, k=!!", "unknown_key"),
        ("vapid t=abc, k=" + b64url_encode(b"\x04" + b"\1" * 64), "unknown_key"),
    ],
)
def test_verify_refuses_malformed_headers(header: str, reason: str) -> None:
    with pytest.raises(AuthenticationFailed) as info:
        verify_vapid(header, audience=AUD, now=NOW)
    assert info.value.reason == reason


def test_verify_refuses_a_token_that_is_not_a_jwt(keys: VapidKeys) -> None:
    with pytest.raises(AuthenticationFailed, match="not a valid JWT"):
        verify_vapid(f"vapid t=abc.def, k={keys.application_server_key}", audience=AUD, now=NOW)


@settings(max_examples=200)
@given(st.one_of(st.text(max_size=120), st.binary(max_size=120).map(b64url_encode)))
def test_fuzz_key_loading_raises_only_configuration_errors(value: str) -> None:
    try:
        keys = VapidKeys.load(value)
    except ConfigurationError:
        return
    assert len(keys.public_key) == 65


@settings(max_examples=200)
@given(st.text(max_size=200), st.text(alphabet="abcAZ09-_=.,tk ", max_size=200))
def test_fuzz_verify_raises_only_authentication_failed(noise: str, shaped: str) -> None:
    for header in (noise, "vapid " + shaped, "vapid t=" + shaped + ", k=" + shaped):
        with pytest.raises(AuthenticationFailed):
            verify_vapid(header, audience=AUD, now=NOW)


@settings(max_examples=200)
@given(st.binary(max_size=100))
def test_fuzz_b64url_round_trips(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert b64url_decode(text, what="x") == data
    assert b64url_decode(text + "=" * (-len(text) % 4), what="x") == data
