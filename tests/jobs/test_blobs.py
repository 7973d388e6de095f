"""Blob keys and signed URLs under hostile input (bounded hypothesis fuzz)."""

from __future__ import annotations

import posixpath
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ArgumentTypeError, ConfigurationError
from eventpatterns.jobs import URLSigner
from eventpatterns.jobs._blobs import check_key

KEYS = st.text(alphabet=st.sampled_from("ab./-_\\\x00é "), max_size=12) | st.text(max_size=40)


@settings(max_examples=500, deadline=None)
@given(KEYS)
def test_an_accepted_key_never_leaves_the_root(key: str) -> None:
    try:
        checked = check_key(key)
    except ConfigurationError as err:
        message = str(err)
    else:
        message = ""
    if message:
        assert len(message) < 300
        return
    root = Path("/srv/blobs")
    resolved = posixpath.normpath(posixpath.join(str(root), checked))
    assert resolved.startswith(str(root) + "/")
    assert resolved == f"{root}/{checked}"  # nothing to normalise away


@settings(max_examples=200, deadline=None)
@given(st.none() | st.integers() | st.binary() | st.lists(st.text()))
def test_a_key_of_another_type_is_a_type_error(key: object) -> None:
    try:
        check_key(key)
    except ArgumentTypeError:
        return
    raise AssertionError("accepted a key that is not a string")


@settings(max_examples=300, deadline=None)
@given(key=st.text(max_size=30), expires=st.text(max_size=30), signature=st.text(max_size=80))
def test_verify_never_raises_and_refuses_what_it_did_not_sign(
    key: str, expires: str, signature: str
) -> None:
    signer = URLSigner(b"s" * 32, base_url="/blobs")
    assert signer.verify(key, expires, signature, now=0) is False


def test_a_signed_url_round_trips() -> None:
    signer = URLSigner(b"s" * 32, base_url="https://x.example/blobs/")
    url = signer.sign("a/b.txt", expires_at=100.5)
    assert url.startswith("https://x.example/blobs/a/b.txt?expires=101&signature=")
    signature = url.rsplit("=", 1)[1]
    assert signer.verify("a/b.txt", "101", signature, now=101)
    assert not signer.verify("a/b.txt", "101", signature, now=101.5)
    other = URLSigner(b"t" * 32, base_url="/blobs")
    assert not other.verify("a/b.txt", "101", signature, now=0)
