"""JWTAuthorizer: every failure is AuthenticationFailed with its reason; key confusion refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import AuthenticationFailed, ConfigurationError
from eventpatterns.realtime import Credentials, JWTAuthorizer, JWTKey

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
SECRET = "s" * 32
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_OTHER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def clock() -> float:
    return NOW


def claims(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"sub": "alice", "exp": NOW + 60, "aud": "gw", "iss": "https://idp"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: Any, payload: Any, secret: bytes = b"", *, raw: bool = False) -> str:
    """Build a token by hand (HMAC-SHA256 over whatever header and payload)."""
    h = header if raw else b64(json.dumps(header).encode())
    p = payload if raw else b64(json.dumps(payload).encode())
    sig = b64(hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest())
    return f"{h}.{p}.{sig}"


def authorizer(keys: Any = None, **options: Any) -> JWTAuthorizer:
    options.setdefault("audience", "gw")
    options.setdefault("issuer", "https://idp")
    return JWTAuthorizer(keys or JWTKey(SECRET, "HS256"), clock=clock, **options)


def reason(auth: JWTAuthorizer, token: Any) -> str:
    with pytest.raises(AuthenticationFailed) as info:
        auth.verify(token)
    return info.value.reason


# -- accepted tokens -----------------------------------------------------------------------


async def test_hs256_token_gives_the_principal() -> None:
    token = jwt.encode(claims(scope="orders:read  orders:write", scp=["x"]), SECRET, "HS256")
    principal = await authorizer()(Credentials(token=token))
    assert principal.id == "alice"
    assert principal.scopes == {"orders:read", "orders:write", "x"}
    assert principal.expires_at == NOW + 60
    assert principal.claims["iss"] == "https://idp"


@pytest.mark.parametrize(
    ("key", "private", "algorithm"),
    [
        (RSA_PUBLIC_PEM, RSA_KEY, "RS256"),
        (RSA_KEY.public_key(), RSA_KEY, "RS256"),
        (RSA_KEY, RSA_KEY, "RS256"),  # a private key: its public half is used
        (EC_KEY.public_key(), EC_KEY, "ES256"),
    ],
)
def test_asymmetric_algorithms(key: Any, private: Any, algorithm: Any) -> None:
    token = jwt.encode(claims(scp="a b"), private, algorithm)
    principal = authorizer(JWTKey(key, algorithm)).verify(token)
    assert (principal.id, principal.scopes) == ("alice", frozenset({"a", "b"}))


def test_no_audience_or_issuer_configured() -> None:
    auth = JWTAuthorizer(JWTKey(SECRET, "HS256"), clock=clock)
    assert auth.verify(jwt.encode(claims(aud=None, iss=None), SECRET, "HS256")).id == "alice"
    # RFC 7519 4.1.3: a token for some audience is refused where none is configured.
    assert reason(auth, jwt.encode(claims(), SECRET, "HS256")) == "bad_audience"


def test_custom_subject_claim_and_required_claims() -> None:
    auth = authorizer(subject_claim="uid", require=("exp", "jti"))
    assert auth.verify(jwt.encode(claims(uid="u-7", jti="1"), SECRET, "HS256")).id == "u-7"
    assert reason(auth, jwt.encode(claims(uid="u-7"), SECRET, "HS256")) == "missing_claim"
    assert reason(auth, jwt.encode(claims(jti="1"), SECRET, "HS256")) == "missing_claim"


def test_exp_is_required_by_default_and_optional_on_request() -> None:
    token = jwt.encode(claims(exp=None), SECRET, "HS256")
    assert reason(authorizer(), token) == "missing_claim"
    principal = authorizer(require=()).verify(token)
    assert principal.expires_at is None


# -- time ----------------------------------------------------------------------------------


def test_expiry_and_leeway() -> None:
    token = jwt.encode(claims(exp=NOW), SECRET, "HS256")
    assert reason(authorizer(), token) == "expired"  # RFC 7519: valid *before* exp
    assert authorizer(leeway=5).verify(token).id == "alice"
    assert reason(authorizer(leeway=5), jwt.encode(claims(exp=NOW - 5), SECRET, "HS256")) == (
        "expired"
    )


def test_not_before_and_leeway() -> None:
    token = jwt.encode(claims(nbf=NOW + 10), SECRET, "HS256")
    assert reason(authorizer(), token) == "not_yet_valid"
    assert authorizer(leeway=10).verify(token).id == "alice"
    assert authorizer().verify(jwt.encode(claims(nbf=NOW), SECRET, "HS256")).id == "alice"


def test_injected_clock_is_used() -> None:
    token = jwt.encode(claims(exp=NOW + 60), SECRET, "HS256")
    times = [NOW, NOW + 61]
    auth = JWTAuthorizer(JWTKey(SECRET, "HS256"), audience="gw", clock=lambda: times.pop(0))
    assert auth.verify(token).id == "alice"
    assert reason(auth, token) == "expired"


# -- refused tokens ------------------------------------------------------------------------


def test_audience_and_issuer() -> None:
    assert reason(authorizer(), jwt.encode(claims(aud="other"), SECRET, "HS256")) == "bad_audience"
    assert reason(authorizer(), jwt.encode(claims(iss="https://evil"), SECRET, "HS256")) == (
        "bad_issuer"
    )
    auth = authorizer(audience=["a", "gw"], issuer=["https://idp", "https://idp2"])
    assert auth.verify(jwt.encode(claims(iss="https://idp2"), SECRET, "HS256")).id == "alice"


def test_bad_signature() -> None:
    assert reason(authorizer(), jwt.encode(claims(), "t" * 32, "HS256")) == "bad_signature"
    token = jwt.encode(claims(), SECRET, "HS256")
    head, _, sig = token.split(".")
    tampered = f"{head}.{b64(json.dumps(claims(sub='mallory')).encode())}.{sig}"
    assert reason(authorizer(), tampered) == "bad_signature"
    rs = jwt.encode(claims(), RSA_OTHER, "RS256")
    assert reason(authorizer(JWTKey(RSA_PUBLIC_PEM, "RS256")), rs) == "bad_signature"


def test_alg_none_is_refused() -> None:
    unsigned = jwt.encode(claims(), None, "none")  # type: ignore[arg-type]
    assert unsigned.endswith(".")
    assert reason(authorizer(), unsigned) == "alg_not_allowed"
    assert reason(authorizer(), forge({"alg": "None"}, claims())) == "alg_not_allowed"


def test_hs256_signed_with_the_rsa_public_key_is_refused() -> None:
    # The key-confusion attack: the attacker knows the public key and uses it as an
    # HMAC secret. The RS256 key verifies RS256 only.
    confused = forge({"alg": "HS256", "typ": "JWT"}, claims(), RSA_PUBLIC_PEM)
    auth = authorizer(JWTKey(RSA_PUBLIC_PEM, "RS256"))
    assert reason(auth, confused) == "alg_not_allowed"
    with_kid = forge({"alg": "HS256", "kid": "rsa"}, claims(), RSA_PUBLIC_PEM)
    both = authorizer([JWTKey(RSA_PUBLIC_PEM, "RS256", kid="rsa"), JWTKey(SECRET, "HS256")])
    assert reason(both, with_kid) == "alg_not_allowed"
    assert reason(both, confused) == "bad_signature"  # tried with the HS256 secret only


def test_a_public_key_cannot_be_an_hmac_secret() -> None:
    with pytest.raises(ConfigurationError, match="HS256"):
        JWTAuthorizer(JWTKey(RSA_PUBLIC_PEM, "HS256"))


@pytest.mark.parametrize(
    "key",
    [
        JWTKey("short", "HS256"),
        JWTKey(SECRET, "RS256"),
        JWTKey(rsa.generate_private_key(public_exponent=65537, key_size=1024), "RS256"),
        JWTKey(ec.generate_private_key(ec.SECP384R1()).public_key(), "ES256"),
        JWTKey(SECRET, "HS512"),  # type: ignore[arg-type]
    ],
)
def test_unusable_keys_are_configuration_errors(key: JWTKey) -> None:
    with pytest.raises(ConfigurationError):
        JWTAuthorizer(key)


def test_no_keys_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        JWTAuthorizer([])


def test_kid_selects_the_key() -> None:
    keys = [
        JWTKey(RSA_KEY.public_key(), "RS256", kid="old"),
        JWTKey(RSA_OTHER.public_key(), "RS256", kid="new"),
    ]
    auth = authorizer(keys)
    assert auth.verify(jwt.encode(claims(), RSA_OTHER, "RS256", headers={"kid": "new"})).id
    assert auth.verify(jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "old"})).id
    wrong = jwt.encode(claims(), RSA_OTHER, "RS256", headers={"kid": "old"})
    assert reason(auth, wrong) == "bad_signature"
    unknown = jwt.encode(claims(), RSA_OTHER, "RS256", headers={"kid": "gone"})
    assert reason(auth, unknown) == "unknown_key"
    # Without a kid, each key of the token's algorithm is tried.
    assert auth.verify(jwt.encode(claims(), RSA_OTHER, "RS256")).id == "alice"


def test_non_string_token_is_malformed() -> None:
    assert reason(authorizer(), 42) == "malformed"
    assert reason(authorizer(), b"a.b.c") == "malformed"


async def test_missing_token() -> None:
    for token in (None, ""):
        with pytest.raises(AuthenticationFailed) as info:
            await authorizer()(Credentials(token=token, api_key="x"))
        assert info.value.reason == "missing"


# -- hostile input -------------------------------------------------------------------------

DEEP = "[" * 5000 + "]" * 5000
HS_HEADER = b64(b'{"alg":"HS256"}')


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("a" * 10_000 + ".b.c", "malformed"),  # over max_token_size, not even split
        ("not a token", "malformed"),
        ("a.b", "malformed"),
        ("a.b.c.d", "malformed"),
        ("é.b.c", "malformed"),
        ("!!!.b.c", "malformed"),
        ("a.b.c", "malformed"),  # base64 of garbage
        (forge(HS_HEADER, "a", raw=True), "malformed"),
        (forge(b64(b"\xff\xfe{}"), "e30", raw=True), "malformed"),  # not UTF-8
        (forge(b64(DEEP.encode()), "e30", raw=True), "malformed"),  # deep JSON header
        (forge(b64(b"[1]"), "e30", raw=True), "malformed"),  # header not an object
        (forge({"alg": ["HS256"]}, claims()), "alg_not_allowed"),
        (forge({"alg": "HS256", "kid": {"a": 1}}, claims()), "malformed"),
        (forge({"alg": "HS256", "kid": "k" * 300}, claims()), "malformed"),
        (forge({"alg": "HS256", "crit": ["b64"]}, claims(), SECRET.encode()), "malformed"),
    ],
)
def test_hostile_tokens(token: str, expected: str) -> None:
    assert reason(authorizer(), token) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (DEEP, "malformed"),  # deep JSON claims, validly signed
        ("[1, 2]", "malformed"),
        ('"text"', "malformed"),
        (json.dumps(claims(sub=7)), "malformed"),
        (json.dumps(claims(sub=["alice"])), "malformed"),
        (json.dumps(claims(sub="")), "malformed"),
        (json.dumps(claims(sub="x" * 300)), "malformed"),
        (json.dumps(claims(sub=None)), "missing_claim"),
        (json.dumps(claims(exp="tomorrow")), "malformed"),
        (json.dumps(claims(exp=True)), "malformed"),
        (
            '{"sub": "a", "aud": "gw", "iss": "https://idp", "exp": 1e400}',
            "malformed",
        ),  # infinity: never expires
        ('{"sub": "a", "aud": "gw", "iss": "https://idp", "exp": Infinity}', "malformed"),
        ('{"sub": "alice", "exp": ' + "9" * 5000 + "}", "malformed"),
        (json.dumps(claims(nbf=[1])), "malformed"),
        (json.dumps(claims(iat="x")), "malformed"),
        (json.dumps(claims(scope=["a", 1])), "malformed"),
        (json.dumps(claims(scp={"a": 1})), "malformed"),
        (json.dumps(claims(aud=7)), "bad_audience"),
    ],
)
def test_hostile_claims_with_a_valid_signature(payload: str, expected: str) -> None:
    token = forge(HS_HEADER, b64(payload.encode()), SECRET.encode(), raw=True)
    assert reason(authorizer(max_token_size=50_000), token) == expected


segments = st.one_of(
    st.text(alphabet="ABCabc012-_", max_size=40),
    st.binary(max_size=60).map(b64),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.sampled_from(["alg", "kid", "sub", "exp", "crit", "x"]), inner)
        ),
        max_leaves=10,
    ).map(lambda v: b64(json.dumps(v).encode())),
)


@settings(max_examples=300)
@given(
    parts=st.lists(segments, min_size=1, max_size=4),
    sign=st.booleans(),
    noise=st.text(max_size=20),
)
def test_fuzz_token_parsing_raises_only_authentication_failed(
    parts: list[str], sign: bool, noise: str
) -> None:
    auth = authorizer([JWTKey(SECRET, "HS256"), JWTKey(RSA_PUBLIC_PEM, "RS256", kid="r")])
    token = ".".join(parts)
    if sign and len(parts) >= 2:
        token = forge(parts[0], parts[1], SECRET.encode(), raw=True)
    reasons = set()
    for candidate in (token, token + noise, noise):
        try:
            principal = auth.verify(candidate)
        except AuthenticationFailed as exc:
            reasons.add(exc.reason)
        else:
            assert isinstance(principal.id, str)
            assert principal.id
    assert reasons <= {
        "missing", "malformed", "alg_not_allowed", "unknown_key", "bad_signature",
        "expired", "not_yet_valid", "bad_audience", "bad_issuer", "missing_claim",
    }  # fmt: skip
