"""aes128gcm for Web Push (RFC 8291): the RFC's vectors, padding, and http_ece decrypting it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import http_ece  # type: ignore[import-untyped]
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ConfigurationError, LimitExceeded
from eventpatterns.push._ece import (
    HEADER_SIZE,
    MAX_BODY_SIZE,
    MAX_PAYLOAD_SIZE,
    derive,
    encrypt,
    encrypted_size,
)
from eventpatterns.push._vapid import b64url_decode

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors_rfc8291.json").read_text(encoding="utf-8")
)


def raw(name: str, table: dict[str, Any] = VECTORS) -> bytes:
    return b64url_decode(table[name], what=name)


def private(name: str) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(int.from_bytes(raw(name), "big"), ec.SECP256R1())


def public(name: str) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw(name))


UA_PRIVATE = private("ua_private")
UA_PUBLIC = public("ua_public")
AUTH = raw("auth_secret")


def test_rfc8291_example_body_is_byte_exact() -> None:
    body = encrypt(
        raw("plaintext"),
        UA_PUBLIC,
        auth_secret=AUTH,
        padding=0,  # the example pads nothing
        salt=raw("salt"),
        as_private=private("as_private"),
    )
    assert body == raw("body")
    # The RFC's request says Content-Length: 145; its body is 144 octets (see notes).
    assert len(body) == 144 == HEADER_SIZE + 41 + 1 + 16
    assert body[:HEADER_SIZE] == raw("header", VECTORS["intermediate"])
    assert body[HEADER_SIZE:] == raw("ciphertext", VECTORS["intermediate"])


def test_rfc8291_appendix_a_intermediate_values() -> None:
    keys = derive(private("as_private"), UA_PUBLIC, auth_secret=AUTH, salt=raw("salt"))
    table = VECTORS["intermediate"]
    assert keys.ecdh_secret == raw("ecdh_secret", table)
    assert keys.ikm == raw("ikm", table)
    assert keys.cek == raw("cek", table)
    assert keys.nonce == raw("nonce", table)


def test_the_example_decrypts_with_http_ece_to_the_plaintext() -> None:
    text = http_ece.decrypt(raw("body"), private_key=UA_PRIVATE, auth_secret=AUTH)
    assert text.decode() == VECTORS["plaintext_utf8"]


@pytest.mark.parametrize(
    ("length", "padding", "size"),
    [
        (0, 0, HEADER_SIZE + 1 + 16),
        (41, 0, 144),
        (41, 256, HEADER_SIZE + 256 + 16),
        (255, 256, HEADER_SIZE + 256 + 16),
        (256, 256, HEADER_SIZE + 512 + 16),
        (100, 1, HEADER_SIZE + 101 + 16),
        (MAX_PAYLOAD_SIZE, 0, MAX_BODY_SIZE),
        (MAX_PAYLOAD_SIZE - 10, 1000, MAX_BODY_SIZE),  # capped, never over 4096
    ],
)
def test_padding_rounds_the_record_up_to_the_bucket(length: int, padding: int, size: int) -> None:
    assert encrypted_size(length, padding=padding) == size
    body = encrypt(b"x" * length, UA_PUBLIC, auth_secret=AUTH, padding=padding)
    assert len(body) == size
    assert http_ece.decrypt(body, private_key=UA_PRIVATE, auth_secret=AUTH) == b"x" * length


def test_default_padding_hides_the_length_within_a_bucket() -> None:
    short = encrypt(b"ok", UA_PUBLIC, auth_secret=AUTH)
    longer = encrypt(b"a much longer message, still under the bucket", UA_PUBLIC, auth_secret=AUTH)
    assert len(short) == len(longer) == HEADER_SIZE + 256 + 16


def test_each_message_has_its_own_salt_and_key() -> None:
    one = encrypt(b"same", UA_PUBLIC, auth_secret=AUTH)
    two = encrypt(b"same", UA_PUBLIC, auth_secret=AUTH)
    assert one[:16] != two[:16]  # salt
    assert one[21:HEADER_SIZE] != two[21:HEADER_SIZE]  # the sender's ephemeral public key


def test_a_payload_that_cannot_fit_is_refused_by_name() -> None:
    encrypt(b"x" * MAX_PAYLOAD_SIZE, UA_PUBLIC, auth_secret=AUTH)
    with pytest.raises(LimitExceeded, match="3994 bytes; at most 3993") as info:
        encrypt(b"x" * (MAX_PAYLOAD_SIZE + 1), UA_PUBLIC, auth_secret=AUTH)
    assert info.value.limit == "max_payload_size"
    assert info.value.value == 3993


def test_bad_padding_or_salt_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="padding"):
        encrypt(b"x", UA_PUBLIC, auth_secret=AUTH, padding=-1)
    with pytest.raises(ConfigurationError, match="salt must be 16 octets, not 3"):
        encrypt(b"x", UA_PUBLIC, auth_secret=AUTH, salt=b"abc")


@settings(max_examples=60)
@given(
    payload=st.binary(max_size=MAX_PAYLOAD_SIZE),
    padding=st.integers(min_value=0, max_value=5000),
)
def test_any_payload_and_padding_decrypts_with_http_ece(payload: bytes, padding: int) -> None:
    receiver = ec.generate_private_key(ec.SECP256R1())
    point = receiver.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
    body = encrypt(payload, receiver.public_key(), auth_secret=AUTH, padding=padding)
    assert len(body) == encrypted_size(len(payload), padding=padding) <= MAX_BODY_SIZE
    if padding > 1 and len(body) < MAX_BODY_SIZE:
        assert (len(body) - HEADER_SIZE - 16) % padding == 0
    assert body[21:HEADER_SIZE] != point  # the key id is the sender's key, not the receiver's
    assert http_ece.decrypt(body, private_key=receiver, auth_secret=AUTH) == payload
