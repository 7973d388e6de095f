"""Web Push message encryption: ``aes128gcm`` (RFC 8188) keyed as RFC 8291 says.

Sans-I/O: bytes in, bytes out. P-256 ECDH and AES-128-GCM come from ``cryptography``;
HKDF-SHA-256 (RFC 5869) is four HMACs of the standard library's C ``hmac.digest``,
a fifth of the cost of building ``cryptography``'s HKDF objects for 32 octets. This
module only arranges them in the order of
RFC 8291 section 3.4 and frames the single record of RFC 8188 section 2. A push
message body is at most 4,096 octets (RFC 8291 section 4), so one record of size 4,096
always holds it and there is never a second record.
"""

from __future__ import annotations

import hmac
import os
import struct
from dataclasses import dataclass

from ..errors import ConfigurationError, LimitExceeded, MissingDependency

try:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
except ImportError as exc:  # pragma: no cover - the push extra is installed in the tests
    raise MissingDependency("cryptography", extra="push") from exc

__all__ = [
    "DEFAULT_PADDING",
    "HEADER_SIZE",
    "MAX_BODY_SIZE",
    "MAX_PAYLOAD_SIZE",
    "RECORD_SIZE",
    "Keys",
    "derive",
    "encrypt",
    "encrypted_size",
]

#: The largest body a push service must accept (RFC 8291 section 4; RFC 8030 7.2).
MAX_BODY_SIZE = 4096
#: The record size written in the header: one record always holds a whole message.
RECORD_SIZE = 4096
#: salt (16) || rs (4) || idlen (1) || keyid: the sender's P-256 public key (65).
HEADER_SIZE = 16 + 4 + 1 + 65
_TAG = 16
#: The largest payload that fits: the body less header, tag and padding delimiter.
MAX_PAYLOAD_SIZE = MAX_BODY_SIZE - HEADER_SIZE - _TAG - 1
#: Pad each record's plaintext to a multiple of this many octets by default, so a
#: body's length tells an observer only roughly how long the message is (RFC 8291
#: section 7 and RFC 8188 section 4 on padding).
DEFAULT_PADDING = 256

_KEY_INFO = b"WebPush: info\x00"
_CEK_INFO = b"Content-Encoding: aes128gcm\x00"
_NONCE_INFO = b"Content-Encoding: nonce\x00"
_CURVE = ec.SECP256R1()
_ECDH = ec.ECDH()
_SHA256 = "sha256"  # by name: the OpenSSL one-shot path of hmac.digest
_RS = struct.pack("!IB", RECORD_SIZE, 65)


@dataclass(frozen=True, slots=True)
class Keys:
    """The values RFC 8291 derives for one message (Appendix A names them).

    Attributes:
        ecdh_secret: The P-256 shared secret (32 octets).
        ikm: The input keying material mixed with the auth secret (32 octets).
        cek: The AES-128-GCM content-encryption key (16 octets).
        nonce: The record nonce (12 octets; one record, so sequence number 0).
    """

    ecdh_secret: bytes
    ikm: bytes
    cek: bytes
    nonce: bytes


def _point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def derive(
    as_private: ec.EllipticCurvePrivateKey,
    ua_public: ec.EllipticCurvePublicKey,
    *,
    auth_secret: bytes,
    salt: bytes,
    as_public: bytes | None = None,
    ua_point: bytes | None = None,
) -> Keys:
    """Derive the content-encryption key and nonce (RFC 8291 section 3.4).

    Args:
        as_private: The sender's ephemeral private key.
        ua_public: The subscription's ``p256dh`` key.
        auth_secret: The subscription's ``auth`` secret (16 octets).
        salt: The record salt (16 octets).
        as_public: The sender's public key as 65 octets (computed when omitted).
        ua_point: ``ua_public`` as 65 octets (computed when omitted).

    Returns:
        The derived keys.
    """
    ua_point = ua_point if ua_point is not None else _point(ua_public)
    as_public = as_public if as_public is not None else _point(as_private.public_key())
    ecdh_secret = as_private.exchange(_ECDH, ua_public)
    # IKM = HKDF(salt=auth_secret, IKM=ecdh_secret, info="WebPush: info" 0 ua as, L=32):
    # extract, then one expand block (T(1) = HMAC(PRK, info || 0x01); 32 octets is one).
    key_prk = hmac.digest(auth_secret, ecdh_secret, _SHA256)
    ikm = hmac.digest(key_prk, _KEY_INFO + ua_point + as_public + b"\x01", _SHA256)
    # PRK = HMAC-SHA-256(salt, IKM), expanded twice (RFC 8188 section 2.2 and 2.3).
    prk = hmac.digest(salt, ikm, _SHA256)
    cek = hmac.digest(prk, _CEK_INFO + b"\x01", _SHA256)[:16]
    nonce = hmac.digest(prk, _NONCE_INFO + b"\x01", _SHA256)[:12]
    return Keys(ecdh_secret, ikm, cek, nonce)


def encrypted_size(length: int, *, padding: int = DEFAULT_PADDING) -> int:
    """Return the body size :func:`encrypt` makes for a payload of ``length`` octets.

    The plaintext and its delimiter are padded up to a multiple of ``padding`` (0 or
    1: no padding), but never beyond what fits in :data:`MAX_BODY_SIZE`.
    """
    record = length + 1
    if padding > 1:
        record = min(-(-record // padding) * padding, MAX_PAYLOAD_SIZE + 1)
    return HEADER_SIZE + record + _TAG


def encrypt(
    payload: bytes,
    ua_public: ec.EllipticCurvePublicKey,
    *,
    auth_secret: bytes,
    padding: int = DEFAULT_PADDING,
    salt: bytes | None = None,
    as_private: ec.EllipticCurvePrivateKey | None = None,
    ua_point: bytes | None = None,
) -> bytes:
    """Encrypt a push message body as ``Content-Encoding: aes128gcm`` (RFC 8291).

    Args:
        payload: The message (at most :data:`MAX_PAYLOAD_SIZE` octets).
        ua_public: The subscription's ``p256dh`` key.
        auth_secret: The subscription's ``auth`` secret (16 octets).
        padding: Pad the plaintext to a multiple of this many octets (0: none).
        salt: The 16-octet salt; random when omitted (only tests pass one).
        as_private: The sender's key; a fresh one when omitted (only tests pass one:
            reusing a key with a salt breaks the encryption).
        ua_point: ``ua_public`` as 65 octets, when the caller has it already.

    Returns:
        The body: header (salt, record size, key id = the sender's public key) and
        the one encrypted record.

    Raises:
        LimitExceeded: The payload does not fit in a 4,096-octet body.
        ConfigurationError: ``padding`` is negative, or ``salt`` not 16 octets.
    """
    if len(payload) > MAX_PAYLOAD_SIZE:
        raise LimitExceeded(
            f"the push payload is {len(payload)} bytes; at most {MAX_PAYLOAD_SIZE} fit in"
            f" the {MAX_BODY_SIZE}-byte encrypted body a push service accepts",
            limit="max_payload_size",
            value=MAX_PAYLOAD_SIZE,
        )
    if padding < 0:
        raise ConfigurationError(f"padding must be >= 0 octets, not {padding}")
    if salt is None:
        salt = os.urandom(16)
    elif len(salt) != 16:
        raise ConfigurationError(f"the salt must be 16 octets, not {len(salt)}")
    if as_private is None:
        as_private = ec.generate_private_key(_CURVE)
    as_public = _point(as_private.public_key())
    keys = derive(
        as_private,
        ua_public,
        auth_secret=auth_secret,
        salt=salt,
        as_public=as_public,
        ua_point=ua_point,
    )
    record_length = encrypted_size(len(payload), padding=padding) - HEADER_SIZE - _TAG
    # RFC 8188 section 2: the last record's plaintext is data || 0x02 || zero padding.
    plaintext = payload + b"\x02" + bytes(record_length - len(payload) - 1)
    record = AESGCM(keys.cek).encrypt(keys.nonce, plaintext, None)
    return salt + _RS + as_public + record
