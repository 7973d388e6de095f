"""WebPushProvider against the WebPushReceiver over real sockets: every answer mapped."""

from __future__ import annotations

import email.utils
import socket
from collections.abc import AsyncIterator

import http_ece  # type: ignore[import-untyped]
import httpx
import pytest

from eventpatterns.errors import ConfigurationError, LimitExceeded
from eventpatterns.push import (
    DeadToken,
    Delivered,
    PermanentFailure,
    RetryLater,
    Vapid,
    VapidKeys,
    WebPushProvider,
)
from eventpatterns.push._webpush import DEFAULT_TTL, classify, retry_after
from eventpatterns.testing import ManualClock, WebPushReceiver

pytestmark = pytest.mark.anyio
NOW = 1_800_000_000.0
KEYS = VapidKeys.generate()
VAPID = Vapid(KEYS, subject="mailto:ops@example.com")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=NOW)


@pytest.fixture
async def receiver(clock: ManualClock) -> AsyncIterator[WebPushReceiver]:
    async with WebPushReceiver(clock=clock) as receiver:
        yield receiver


@pytest.fixture
async def provider(clock: ManualClock) -> AsyncIterator[WebPushProvider]:
    async with WebPushProvider(VAPID, clock=clock, deadline=5) as provider:
        yield provider


async def test_delivered_decrypts_with_every_header(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe(application_server_key=KEYS.application_server_key)
    result = await provider.send(sub, b'{"title": "hi"}', ttl=60, urgency="high", topic="order-42")
    assert isinstance(result, Delivered)
    assert result.message_id == f"{receiver.origin}/message/1"
    (message,) = receiver.messages
    assert message.payload == b'{"title": "hi"}'
    assert (message.ttl, message.urgency, message.topic) == (60, "high", "order-42")
    assert message.subject == "mailto:ops@example.com"
    assert message.application_server_key == KEYS.application_server_key
    assert message.body_size == 86 + 256 + 16  # padded to the default 256-octet bucket
    assert receiver.rejections == []


async def test_defaults_are_a_one_day_ttl_and_normal_urgency(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    assert isinstance(await provider.send(sub, b"x"), Delivered)
    (message,) = receiver.messages
    assert message.ttl == DEFAULT_TTL == 86400
    assert (message.urgency, message.topic) == ("normal", None)


async def test_one_vapid_token_per_origin_until_near_expiry(
    clock: ManualClock, receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    subs = [receiver.subscribe() for _ in range(3)]
    for sub in subs:
        assert isinstance(await provider.send(sub, b"x"), Delivered)
    assert provider.auth.mints == 1
    async with WebPushReceiver(clock=clock) as other:
        assert isinstance(await provider.send(other.subscribe(), b"x"), Delivered)
    assert provider.auth.mints == 2  # another origin, another aud
    clock.advance(12 * 3600 - 30)  # within the minute before the token's exp
    assert isinstance(await provider.send(subs[0], b"x"), Delivered)
    assert provider.auth.mints == 3
    assert len(receiver.messages) == 4


async def test_404_for_an_unknown_subscription_is_a_dead_token(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    unknown = type(sub)(sub.endpoint + "0", sub.p256dh, sub.auth)
    assert await provider.send(unknown, b"x") == DeadToken("webpush", "404", status=404)


async def test_410_for_a_revoked_subscription_is_a_dead_token(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    receiver.unsubscribe(sub)
    assert await provider.send(sub, b"x") == DeadToken("webpush", "410", status=410)
    other = receiver.subscribe()
    receiver.fail(410, subscription=other)
    assert await provider.send(sub, b"x") == DeadToken("webpush", "410", status=410)
    assert await provider.send(other, b"x") == DeadToken("webpush", "410", status=410)
    assert isinstance(await provider.send(other, b"x"), Delivered)  # the script was used up


async def test_413_is_a_permanent_too_large(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    receiver.fail(413)
    result = await provider.send(receiver.subscribe(), b"x")
    assert result == PermanentFailure("webpush", "payload too large", status=413)


async def test_a_payload_over_4096_encrypted_is_refused_before_sending(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    assert isinstance(await provider.send(sub, b"x" * 3993), Delivered)
    assert receiver.messages[0].body_size == 4096
    with pytest.raises(LimitExceeded, match="3994 bytes"):
        await provider.send(sub, b"x" * 3994)
    assert receiver.requests == 1


async def test_the_receiver_itself_answers_413_over_4096(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    headers = {"ttl": "0", "content-encoding": "aes128gcm"}
    value, _ = VAPID.authorization(receiver.origin, now=NOW)
    headers["authorization"] = value
    async with httpx.AsyncClient() as client:
        response = await client.post(sub.endpoint, content=b"x" * 4097, headers=headers)
    assert response.status_code == 413
    assert classify(response, now=NOW) == PermanentFailure(
        "webpush", "payload too large", status=413
    )


async def test_429_retries_after_seconds_or_an_http_date(
    clock: ManualClock, receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    receiver.fail(429, retry_after=120)
    assert await provider.send(sub, b"x") == RetryLater("webpush", "429", at=NOW + 120, status=429)
    date = email.utils.formatdate(NOW + 3600, usegmt=True)
    receiver.fail(429, retry_after=date)
    assert await provider.send(sub, b"x") == RetryLater("webpush", "429", at=NOW + 3600, status=429)
    receiver.fail(429)
    assert await provider.send(sub, b"x") == RetryLater("webpush", "429", at=None, status=429)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_5xx_retries_later(
    status: int, receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    receiver.fail(status, retry_after=5)
    result = await provider.send(receiver.subscribe(), b"x")
    assert result == RetryLater("webpush", str(status), at=NOW + 5, status=status)


async def test_400_is_permanent(receiver: WebPushReceiver, provider: WebPushProvider) -> None:
    receiver.fail(400)
    result = await provider.send(receiver.subscribe(), b"x")
    assert result == PermanentFailure("webpush", "bad request", status=400)


async def test_a_scripted_401_or_403_refreshes_the_token_once(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    for status in (401, 403):
        receiver.fail(status)
        assert isinstance(await provider.send(sub, b"x"), Delivered)
    assert provider.auth.mints == 3


async def test_an_expired_token_is_refreshed_once_then_permanent(clock: ManualClock) -> None:
    # The push service's clock is a day ahead: every token is expired there.
    async with (
        WebPushReceiver(clock=ManualClock(start=NOW + 86400)) as receiver,
        WebPushProvider(VAPID, clock=clock) as provider,
    ):
        result = await provider.send(receiver.subscribe(), b"x")
        assert result == PermanentFailure("webpush", "VAPID token rejected", status=401)
        assert provider.auth.mints == 2
        assert [status for status, _ in receiver.rejections] == [401, 401]
        assert "expired" in receiver.rejections[0][1]


async def test_a_key_the_subscription_was_not_made_with_is_403(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe(application_server_key=VapidKeys.generate().application_server_key)
    result = await provider.send(sub, b"x")
    assert result == PermanentFailure(
        "webpush", "VAPID key not allowed for this subscription", status=403
    )
    assert provider.auth.mints == 2  # refreshed once, no more


async def test_a_service_that_never_answers_is_retried_later(
    clock: ManualClock, receiver: WebPushReceiver
) -> None:
    receiver.fail(201, delay=3)
    async with WebPushProvider(VAPID, clock=clock, deadline=0.3) as provider:
        assert await provider.send(receiver.subscribe(), b"x") == RetryLater("webpush", "timeout")


async def test_a_connection_refused_is_retried_later(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sub = receiver.subscribe()
    closed = type(sub)(f"http://127.0.0.1:{port}/push/1", sub.p256dh, sub.auth)
    result = await provider.send(closed, b"x")
    assert result == RetryLater("webpush", "connection error: ConnectError")


async def test_a_client_passed_in_is_used_and_left_open(
    clock: ManualClock, receiver: WebPushReceiver
) -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.headers["content-encoding"])

    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        async with WebPushProvider(VAPID, client=client, clock=clock) as provider:
            assert isinstance(await provider.send(receiver.subscribe(), b"x"), Delivered)
        assert not client.is_closed
    assert seen == ["aes128gcm"]


async def test_bad_arguments_send_nothing(
    receiver: WebPushReceiver, provider: WebPushProvider
) -> None:
    sub = receiver.subscribe()
    bad: list[dict[str, object]] = [
        {"topic": "x" * 33},
        {"topic": "has space"},
        {"topic": "a+b"},
        {"topic": ""},
        {"urgency": "urgent"},
        {"ttl": -1},
        {"ttl": 1.5},
        {"ttl": True},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigurationError):
            await provider.send(sub, b"x", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="bytes, not str"):
        await provider.send(sub, "x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="WebPushSubscription"):
        await provider.send(sub.to_json(), b"x")  # type: ignore[arg-type]
    assert receiver.requests == 0
    assert isinstance(await provider.send(sub, b"x", topic="A" * 32, urgency="very-low"), Delivered)


async def test_provider_arguments_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="Vapid"):
        WebPushProvider(KEYS)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="deadline"):
        WebPushProvider(VAPID, deadline=0)
    with pytest.raises(ConfigurationError, match="padding"):
        WebPushProvider(VAPID, padding=-1)
    provider = WebPushProvider(VAPID, padding=0)
    assert KEYS.private_raw() not in repr(provider)
    await provider.aclose()


async def test_padding_is_configurable_and_http_ece_decrypts_it(
    receiver: WebPushReceiver, clock: ManualClock
) -> None:
    sub = receiver.subscribe()
    async with WebPushProvider(VAPID, clock=clock, padding=1024) as provider:
        body = provider.encrypt(sub, b"hello")
        assert len(body) == 86 + 1024 + 16
        assert isinstance(await provider.send(sub, b"hello"), Delivered)
    assert receiver.messages[0].body_size == 86 + 1024 + 16
    private = receiver._subs[sub.endpoint].private_key  # what the browser holds
    assert http_ece.decrypt(body, private_key=private, auth_secret=sub.auth) == b"hello"


def test_retry_after_forms() -> None:
    assert retry_after(None, now=NOW) is None
    assert retry_after(" 30 ", now=NOW) == NOW + 30
    assert retry_after(email.utils.formatdate(NOW + 10, usegmt=True), now=NOW) == NOW + 10
    assert retry_after(email.utils.formatdate(NOW - 10, usegmt=True), now=NOW) == NOW
    # no zone (the asctime and rfc850 forms): GMT, as RFC 9110 section 5.6.7 says
    assert retry_after("Sat, 01 Jan 2050 00:00:00", now=NOW) == 2524608000.0
    assert retry_after("Sat Jan  1 00:00:00 2050", now=NOW) == 2524608000.0
    assert retry_after("soon", now=NOW) is None
    assert retry_after("-5", now=NOW) is None


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (201, Delivered("webpush", None)),
        (202, Delivered("webpush", None)),
        (200, Delivered("webpush", None)),
        (404, DeadToken("webpush", "404", status=404)),
        (410, DeadToken("webpush", "410", status=410)),
        (413, PermanentFailure("webpush", "payload too large", status=413)),
        (429, RetryLater("webpush", "429", status=429)),
        (503, RetryLater("webpush", "503", status=503)),
        (400, PermanentFailure("webpush", "bad request", status=400)),
        (401, PermanentFailure("webpush", "VAPID token rejected", status=401)),
        (418, PermanentFailure("webpush", "418", status=418)),
    ],
)
def test_the_one_table(status: int, expected: object) -> None:
    assert classify(httpx.Response(status), now=NOW) == expected
