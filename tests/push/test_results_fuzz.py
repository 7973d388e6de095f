"""Bounded fuzz of the parsers of answers and requests: they classify, they never raise."""

from __future__ import annotations

import json
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.push import DeadToken, Delivered, PermanentFailure, RetryLater
from eventpatterns.push._apns import apns_result
from eventpatterns.push._fcm_errors import fcm_result
from eventpatterns.testing._apns_fake import FakeAPNs
from eventpatterns.testing._fcm_fake import _shape_error

FAKE = FakeAPNs()  # never started: only its header checks run

_json: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_keys = st.sampled_from(
    ["error", "details", "@type", "errorCode", "status", "message", "reason", "timestamp", "name"]
)
_shaped = st.recursive(
    st.none()
    | st.integers()
    | st.text(max_size=6)
    | st.just("type.googleapis.com/google.firebase.fcm.v1.FcmError"),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=10,
)
_bodies = (
    st.binary(max_size=40)
    | _json.map(lambda v: json.dumps(v).encode())
    | _shaped.map(lambda v: json.dumps(v).encode())
)
_statuses = st.sampled_from([200, 400, 401, 403, 404, 410, 413, 418, 429, 500, 502, 503])
_retry_after = st.none() | st.text(max_size=30) | st.integers(0, 10**6).map(str)


def _response(status: int, body: bytes, retry_after: str | None) -> httpx.Response:
    headers = {} if retry_after is None else {"retry-after": retry_after}
    return httpx.Response(status, content=body, headers=headers)


@settings(max_examples=400)
@given(status=_statuses, body=_bodies, retry_after=_retry_after)
def test_fcm_answers_always_classify(status: int, body: bytes, retry_after: Any) -> None:
    try:
        _response(status, body, retry_after)
    except (UnicodeEncodeError, ValueError):  # httpx refuses the header itself
        retry_after = None
    result = fcm_result(_response(status, body, retry_after), 100.0)
    if status == 200:
        assert isinstance(result, Delivered)
    else:
        assert isinstance(result, (RetryLater, DeadToken, PermanentFailure))
        assert result.status == status
    if isinstance(result, RetryLater):
        assert result.at is None or result.at >= 100.0


@settings(max_examples=400)
@given(status=_statuses, body=_bodies)
def test_apns_answers_always_classify(status: int, body: bytes) -> None:
    result = apns_result(httpx.Response(status, content=body), 0.0)
    if status == 200:
        assert isinstance(result, Delivered)
    else:
        assert not isinstance(result, Delivered)
        assert result.status == status
        assert result.reason
    if isinstance(result, DeadToken) and result.timestamp is not None:
        assert isinstance(result.timestamp, float)


@settings(max_examples=400)
@given(body=_bodies | _shaped.map(lambda v: json.dumps({"message": v}).encode()))
def test_the_fcm_fake_judges_any_body(body: bytes) -> None:
    problem = _shape_error(body)
    assert problem is None or isinstance(problem, str)


_header_names = st.sampled_from(
    [
        "apns-topic",
        "apns-push-type",
        "apns-priority",
        "apns-expiration",
        "apns-collapse-id",
        "apns-id",
    ]
)


@settings(max_examples=400)
@given(headers=st.dictionaries(_header_names, st.text(max_size=70), max_size=6))
def test_the_apns_fake_judges_any_headers(headers: dict[str, str]) -> None:
    try:
        headers["apns-collapse-id"].encode("latin-1")
    except (KeyError, UnicodeEncodeError):
        headers.pop("apns-collapse-id", None)  # a server only ever sees latin-1 headers
    problem = FAKE._check_headers(headers)
    if headers.get("apns-topic") and problem is None:
        assert headers.get("apns-priority", "10") in ("10", "5", "1")
