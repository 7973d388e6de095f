"""The WebPushReceiver fake refuses what a push service refuses, over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from eventpatterns.errors import ConfigurationError
from eventpatterns.push import Delivered, RetryLater, Vapid, VapidKeys, WebPushProvider
from eventpatterns.push._ece import encrypt
from eventpatterns.testing import ManualClock, WebPushReceiver

KEYS = VapidKeys.generate()
VAPID = Vapid(KEYS, subject="mailto:ops@example.com")


@pytest.fixture
def receiver() -> Iterator[WebPushReceiver]:
    with WebPushReceiver() as receiver:
        yield receiver


def post(receiver: WebPushReceiver, endpoint: str, body: bytes, **headers: str) -> httpx.Response:
    import time

    base = {
        "authorization": VAPID.authorization(receiver.origin, now=time.time())[0],
        "ttl": "60",
        "content-encoding": "aes128gcm",
    }
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    return httpx.post(endpoint, content=body, headers={k: v for k, v in base.items() if v})


def test_a_valid_request_is_recorded(receiver: WebPushReceiver) -> None:
    sub = receiver.subscribe()
    body = encrypt(b"hi", sub.public_key, auth_secret=sub.auth)
    response = post(receiver, sub.endpoint, body, urgency="low", topic="t1")
    assert response.status_code == 201
    assert response.headers["location"] == f"{receiver.origin}/message/1"
    (message,) = receiver.messages
    assert (message.payload, message.urgency, message.topic, message.ttl) == (
        b"hi",
        "low",
        "t1",
        60,
    )
    receiver.clear()
    assert receiver.messages == []


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ({"ttl": ""}, None, 400, "TTL"),
        ({"ttl": "soon"}, None, 400, "TTL"),
        ({"urgency": "urgent"}, None, 400, "Urgency"),
        ({"topic": "a b"}, None, 400, "Topic"),
        ({"topic": "x" * 33}, None, 400, "Topic"),
        ({"content_encoding": "aesgcm"}, None, 400, "Content-Encoding"),
        ({}, b"not encrypted at all", 400, "cannot decrypt"),
        ({}, os.urandom(200), 400, "cannot decrypt"),
        ({"authorization": ""}, None, 401, "missing"),
        ({"authorization": "vapid t=x, k=y"}, None, 401, "VAPID"),
    ],
)
def test_bad_requests_are_refused_as_a_push_service_does(
    receiver: WebPushReceiver, headers: dict[str, str], body: bytes | None, status: int, reason: str
) -> None:
    sub = receiver.subscribe()
    if body is None:
        body = encrypt(b"hi", sub.public_key, auth_secret=sub.auth)
    response = post(receiver, sub.endpoint, body, **headers)
    assert response.status_code == status
    ((seen, why),) = receiver.rejections
    assert seen == status
    assert reason in why
    assert receiver.messages == []


def test_a_body_for_another_subscription_does_not_decrypt(receiver: WebPushReceiver) -> None:
    one, two = receiver.subscribe(), receiver.subscribe()
    body = encrypt(b"hi", one.public_key, auth_secret=one.auth)
    assert post(receiver, two.endpoint, body).status_code == 400
    assert post(receiver, one.endpoint, body).status_code == 201


def test_only_post_is_a_push(receiver: WebPushReceiver) -> None:
    sub = receiver.subscribe()
    assert httpx.get(sub.endpoint).status_code == 405
    assert httpx.post(receiver.origin + "/elsewhere").status_code == 404
    assert receiver.requests == 2


def test_scripts_apply_in_order_and_run_out(receiver: WebPushReceiver) -> None:
    sub = receiver.subscribe()
    other = receiver.subscribe()
    receiver.fail(500, times=2, subscription=sub)
    receiver.fail(503, retry_after="Wed, 21 Oct 2065 07:28:00 GMT")
    body = encrypt(b"hi", sub.public_key, auth_secret=sub.auth)
    first = post(receiver, other.endpoint, b"")
    assert (first.status_code, first.headers["retry-after"]) == (
        503,
        "Wed, 21 Oct 2065 07:28:00 GMT",
    )
    assert [post(receiver, sub.endpoint, body).status_code for _ in range(3)] == [500, 500, 201]
    assert receiver.rejections == []  # scripted answers are not rejections


def test_a_token_verified_before_is_still_checked_for_expiry() -> None:
    clock = ManualClock(start=1_800_000_000.0)
    with WebPushReceiver(clock=clock) as receiver:
        sub = receiver.subscribe()
        value, expires = VAPID.authorization(receiver.origin, now=clock.time())
        headers = {"authorization": value, "ttl": "0", "content-encoding": "aes128gcm"}

        def send() -> int:
            body = encrypt(b"hi", sub.public_key, auth_secret=sub.auth)
            return httpx.post(sub.endpoint, content=body, headers=headers).status_code

        assert [send(), send()] == [201, 201]
        clock.advance(expires - clock.time())
        assert send() == 401
        assert "expired" in receiver.rejections[-1][1]


def test_start_twice_is_an_error_and_stop_is_idempotent() -> None:
    receiver = WebPushReceiver()
    receiver.start()
    try:
        with pytest.raises(RuntimeError, match="running already"):
            receiver.start()
    finally:
        receiver.stop()
    receiver.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(receiver.origin)


@pytest.mark.anyio
async def test_httpx_own_timeout_is_retry_later_too(receiver: WebPushReceiver) -> None:
    receiver.fail(201, delay=2)
    async with httpx.AsyncClient(timeout=0.2) as client:
        provider = WebPushProvider(VAPID, client=client, deadline=5)
        sub = receiver.subscribe()
        assert await provider.send(sub, b"x") == RetryLater("webpush", "timeout")
        assert isinstance(await provider.send(sub, b"x"), Delivered)


def test_a_subject_that_is_not_a_string_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be a string"):
        Vapid(KEYS, subject=5)  # type: ignore[arg-type]


def test_the_cache_of_verified_tokens_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from eventpatterns.testing import _webpush_receiver

    monkeypatch.setattr(_webpush_receiver, "_MAX_VERIFIED", 2)
    with WebPushReceiver() as receiver:
        sub = receiver.subscribe()
        for _ in range(5):
            signer = Vapid(VapidKeys.generate(), subject="mailto:a@b.c")
            value = signer.authorization(receiver.origin, now=__import__("time").time())[0]
            body = encrypt(b"hi", sub.public_key, auth_secret=sub.auth)
            assert post(receiver, sub.endpoint, body, authorization=value).status_code == 201
            assert len(receiver._verified) <= 2
        assert len({m.application_server_key for m in receiver.messages}) == 5


def test_importing_the_testing_package_loads_no_server_or_http_ece() -> None:
    import subprocess
    import sys

    import eventpatterns.testing

    heavy = ("http_ece", "uvicorn")
    code = "import sys, eventpatterns.testing;"
    code += f"print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
    assert eventpatterns.testing.WebPushReceiver is WebPushReceiver


def test_deferred_decryption_answers_first_and_decrypts_on_read() -> None:
    with WebPushReceiver(defer_decryption=True) as receiver:
        sub = receiver.subscribe()
        good = encrypt(b"hi", sub.public_key, auth_secret=sub.auth)
        assert post(receiver, sub.endpoint, good, topic="t1").status_code == 201
        # Not decryptable, yet answered 201: the check comes when the messages are read.
        response = post(receiver, sub.endpoint, b"not encrypted at all")
        assert response.status_code == 201
        assert response.headers["location"] == f"{receiver.origin}/message/2"
        assert receiver._pending  # nothing decrypted yet
        (message,) = receiver.messages
        assert (message.payload, message.topic, message.body_size) == (b"hi", "t1", len(good))
        ((status, reason),) = receiver.rejections
        assert status == 400
        assert reason.startswith("cannot decrypt")
        assert post(receiver, sub.endpoint, good).status_code == 201
        receiver.clear()
        assert receiver.messages == []
        assert receiver.rejections == []


def test_deferred_decryption_still_checks_the_vapid_token_first() -> None:
    with WebPushReceiver(defer_decryption=True) as receiver:
        sub = receiver.subscribe()
        body = encrypt(b"hi", sub.public_key, auth_secret=sub.auth)
        assert post(receiver, sub.endpoint, body, authorization="vapid t=x, k=y").status_code == 401
        assert receiver.messages == []
        assert [status for status, _ in receiver.rejections] == [401]
