"""APNsProvider against FakeAPNs over HTTP/2 and TLS: every error mapping, tokens, deadline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import jwt
import pytest

from eventpatterns.errors import ArgumentTypeError, ConfigurationError, LimitExceeded
from eventpatterns.push import (
    APNsMessage,
    APNsProvider,
    DeadToken,
    Delivered,
    PermanentFailure,
    RetryLater,
)
from eventpatterns.push._apns import REASONS, apns_result
from eventpatterns.push._fcm_errors import Outcome
from eventpatterns.testing import FakeAPNs, ManualClock, make_apns_key
from eventpatterns.testing._apns_fake import APNS_REASONS

pytestmark = pytest.mark.anyio

TOKEN = "a1" * 32
HELLO = APNsMessage(token=TOKEN, topic="com.example.app", alert="Hello")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def apns(clock: ManualClock) -> AsyncIterator[FakeAPNs]:
    async with FakeAPNs(clock=clock) as fake:
        yield fake


def provider_for(
    fake: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock | None, **options: object
) -> APNsProvider:
    return APNsProvider(
        team_id=fake.team_id,
        key_id=fake.key_id,
        private_key=fake.private_key,
        client=client,
        clock=clock,
        production_url=fake.base_url,
        **options,  # type: ignore[arg-type]
    )


@pytest.fixture
async def client(apns: FakeAPNs) -> AsyncIterator[httpx.AsyncClient]:
    async with apns.client() as http:
        yield http


@pytest.fixture
def provider(apns: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock) -> APNsProvider:
    return provider_for(apns, client, clock)


async def test_a_notification_is_delivered_over_http2(
    apns: FakeAPNs, provider: APNsProvider
) -> None:
    message = APNsMessage(
        token=TOKEN,
        topic="com.example.app",
        alert={"title": "Hi"},
        collapse_id="c-1",
        expiration=0,
        apns_id="123e4567-e89b-12d3-a456-426614174000",
    )
    result = await provider.send(message)
    assert result == Delivered("apns", "123e4567-e89b-12d3-a456-426614174000")
    [received] = apns.notifications
    assert (received.token, received.http_version) == (TOKEN, "2")
    assert received.payload == {"aps": {"alert": {"title": "Hi"}}}
    for name, value in message.headers().items():
        assert received.headers[name] == value
    scheme, _, token = received.headers["authorization"].partition(" ")
    assert scheme == "bearer"
    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": apns.key_id, "typ": "JWT"}
    generated = await provider.send(HELLO)
    assert isinstance(generated, Delivered)
    assert generated.message_id is not None
    assert len(generated.message_id) == 36  # the fake made an apns-id, as APNs does


@pytest.mark.parametrize(
    ("reason", "expected", "status"),
    [
        ("Unregistered", DeadToken, 410),
        ("ExpiredToken", DeadToken, 410),
        ("BadDeviceToken", DeadToken, 400),
        ("TooManyRequests", RetryLater, 429),
        ("InternalServerError", RetryLater, 500),
        ("ServiceUnavailable", RetryLater, 503),
        ("Shutdown", RetryLater, 503),
        ("PayloadTooLarge", PermanentFailure, 413),
        ("BadTopic", PermanentFailure, 400),
        ("DeviceTokenNotForTopic", PermanentFailure, 400),
        ("TopicDisallowed", PermanentFailure, 400),
        ("InvalidProviderToken", PermanentFailure, 403),
        ("BadPath", PermanentFailure, 404),
    ],
)
async def test_every_error_maps_to_its_outcome(
    apns: FakeAPNs, provider: APNsProvider, reason: str, expected: type, status: int
) -> None:
    apns.fail(reason)
    result = await provider.send(HELLO)
    assert type(result) is expected
    assert not isinstance(result, Delivered)
    assert (result.reason, result.status) == (reason, status)
    assert apns.notifications == []
    assert isinstance(await provider.send(HELLO), Delivered)


async def test_unregistered_carries_apples_timestamp_in_seconds(
    apns: FakeAPNs, provider: APNsProvider
) -> None:
    apns.unregister(TOKEN, at=1_700_000_123.456)
    result = await provider.send(HELLO)
    assert result == DeadToken("apns", "Unregistered", timestamp=1_700_000_123.456, status=410)
    other = APNsMessage(token="b2" * 32, topic="com.example.app", alert="x")
    assert isinstance(await provider.send(other), Delivered)


async def test_the_fake_refuses_what_apple_refuses(apns: FakeAPNs, provider: APNsProvider) -> None:
    short = APNsMessage(token="abcd" * 4, topic="com.example.app", alert="x")
    assert isinstance(await provider.send(short), Delivered)  # 8 bytes: still a token
    clock = provider._clock
    async with FakeAPNs(topics={"com.other"}, clock=clock) as strict, strict.client() as http:
        p = provider_for(strict, http, clock)  # type: ignore[arg-type]
        assert await p.send(HELLO) == PermanentFailure("apns", "TopicDisallowed", 400)


async def test_retry_after_is_honoured_when_apns_sends_it(
    apns: FakeAPNs, provider: APNsProvider, clock: ManualClock
) -> None:
    apns.fail("TooManyRequests")
    result = await provider.send(HELLO)
    assert result == RetryLater("apns", "TooManyRequests", None, 429)
    response = httpx.Response(
        503, json={"reason": "ServiceUnavailable"}, headers={"retry-after": "7"}
    )
    assert apns_result(response, clock.time()) == RetryLater(
        "apns", "ServiceUnavailable", clock.time() + 7, 503
    )


async def test_one_provider_token_serves_many_sends(apns: FakeAPNs, provider: APNsProvider) -> None:
    for _ in range(10):
        assert isinstance(await provider.send(HELLO), Delivered)
    assert provider.auth.mints == 1
    assert apns.token_updates == 1


async def test_fifty_concurrent_sends_share_one_token_and_connection(
    apns: FakeAPNs, provider: APNsProvider
) -> None:
    results: list[object] = []

    async def send(n: int) -> None:
        message = APNsMessage(token=f"{n:02x}" * 32, topic="com.example.app", alert=str(n))
        results.append(await provider.send(message))

    async with anyio.create_task_group() as tg:
        for n in range(50):
            tg.start_soon(send, n)
    assert all(isinstance(result, Delivered) for result in results)
    assert len(results) == len(apns.notifications) == 50
    assert (provider.auth.mints, apns.token_updates) == (1, 1)


async def test_the_token_is_not_refreshed_before_20_minutes(
    apns: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    provider = provider_for(apns, client, clock, refresh_after=20 * 60)
    await provider.send(HELLO)
    clock.advance(20 * 60 - 1)
    await provider.send(HELLO)
    assert provider.auth.mints == 1
    clock.advance(1)
    assert isinstance(await provider.send(HELLO), Delivered)  # the fake allows it now
    assert (provider.auth.mints, apns.token_updates) == (2, 2)


async def test_the_token_is_refreshed_at_refresh_after(
    apns: FakeAPNs, provider: APNsProvider, clock: ManualClock
) -> None:
    await provider.send(HELLO)
    clock.advance(50 * 60 - 1)  # the default: 50 minutes
    await provider.send(HELLO)
    assert provider.auth.mints == 1
    clock.advance(1)
    assert isinstance(await provider.send(HELLO), Delivered)
    assert (provider.auth.mints, apns.token_updates) == (2, 2)


async def test_the_fake_refuses_refreshes_sooner_than_20_minutes(
    apns: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    first = provider_for(apns, client, clock)
    second = provider_for(apns, client, clock)  # another process with the same key
    await first.send(HELLO)
    clock.advance(1)
    assert await second.send(HELLO) == RetryLater("apns", "TooManyProviderTokenUpdates", None, 429)


async def test_expired_provider_token_refreshes_once_and_succeeds(
    apns: FakeAPNs, provider: APNsProvider, clock: ManualClock
) -> None:
    await provider.send(HELLO)
    clock.advance(60)  # a new token gets a new iat
    apns.fail("ExpiredProviderToken")
    assert isinstance(await provider.send(HELLO), Delivered)
    assert (provider.auth.mints, apns.token_updates) == (2, 2)
    assert len(apns.notifications) == 2


async def test_expired_provider_token_refreshes_only_once(
    apns: FakeAPNs, provider: APNsProvider
) -> None:
    apns.fail("ExpiredProviderToken", times=3)
    result = await provider.send(HELLO)
    assert result == PermanentFailure("apns", "ExpiredProviderToken", 403)
    assert provider.auth.mints == 2


async def test_a_token_older_than_an_hour_is_refused_by_the_fake(
    client: httpx.AsyncClient, apns: FakeAPNs, clock: ManualClock
) -> None:
    slow = ManualClock(start=clock.time() - 2 * 3600)  # the provider's clock is 2 h behind
    provider = provider_for(apns, client, slow)
    assert await provider.send(HELLO) == PermanentFailure("apns", "ExpiredProviderToken", 403)
    assert provider.auth.mints == 2  # one refresh; still old
    assert apns.notifications == []


async def test_a_token_signed_by_another_key_is_refused(
    apns: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    forged = APNsProvider(
        team_id=apns.team_id,
        key_id=apns.key_id,
        private_key=make_apns_key(),
        client=client,
        clock=clock,
        production_url=apns.base_url,
    )
    assert await forged.send(HELLO) == PermanentFailure("apns", "InvalidProviderToken", 403)
    wrong_kid = APNsProvider(
        team_id=apns.team_id,
        key_id="OTHERKEY00",
        private_key=apns.private_key,
        client=client,
        clock=clock,
        production_url=apns.base_url,
    )
    assert await wrong_kid.send(HELLO) == PermanentFailure("apns", "InvalidProviderToken", 403)
    assert apns.token_updates == 0


async def test_a_send_that_is_never_answered_meets_its_deadline(
    apns: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    provider = provider_for(apns, client, clock, deadline=0.3)
    await provider.send(HELLO)
    apns.hang()
    with anyio.fail_after(5):
        assert await provider.send(HELLO) == RetryLater("apns", "timeout")
    assert isinstance(await provider.send(HELLO), Delivered)  # the connection still works
    assert len(apns.notifications) == 2


async def test_sandbox_messages_go_to_the_sandbox(
    apns: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock
) -> None:
    async with (
        FakeAPNs(
            team_id=apns.team_id, key_id=apns.key_id, private_key=apns.private_key, clock=clock
        ) as sandbox,
        sandbox.client() as sandbox_http,
    ):
        provider = provider_for(apns, sandbox_http, clock, sandbox_url=sandbox.base_url)
        message = APNsMessage(token=TOKEN, topic="com.x", alert="dev", sandbox=True)
        assert isinstance(await provider.send(message), Delivered)
    assert [n.payload["aps"]["alert"] for n in sandbox.notifications] == ["dev"]
    assert apns.notifications == []


async def test_an_http1_client_is_refused_and_unreachable_means_retry(
    apns: FakeAPNs, clock: ManualClock
) -> None:
    async with apns.client(http2=False) as http1:
        response = await http1.post(f"{apns.base_url}/3/device/{TOKEN}", content=b"{}")
        assert response.status_code == 505
    async with httpx.AsyncClient(http2=True) as plain:  # does not trust the certificate
        provider = provider_for(apns, plain, clock)
        result = await provider.send(HELLO)
    assert result == RetryLater("apns", "connection: ConnectError")


async def test_a_payload_over_the_limit_is_refused_before_sending(
    apns: FakeAPNs, provider: APNsProvider
) -> None:
    with pytest.raises(LimitExceeded, match="APNs accepts at most 4096"):
        await provider.send(APNsMessage(token=TOKEN, topic="t", alert="x" * 4096))
    with pytest.raises(ArgumentTypeError, match="takes an APNsMessage, got str"):
        await provider.send("hello")  # type: ignore[arg-type]
    assert provider.auth.mints == 0
    assert apns.token_updates == 0


async def test_the_fake_checks_headers_path_and_body(
    apns: FakeAPNs, provider: APNsProvider
) -> None:
    await provider.send(HELLO)
    authorization = apns.notifications[0].headers["authorization"]
    good = {"authorization": authorization, "apns-topic": "com.x"}
    cases: list[tuple[str, dict[str, str], bytes, str]] = [
        ("/3/device/", good, b"{}", "MissingDeviceToken"),
        ("/3/device/zz", good, b'{"aps": {}}', "BadDeviceToken"),
        ("/4/device/ab", good, b"{}", "BadPath"),
        (f"/3/device/{TOKEN}", {"apns-topic": "com.x"}, b"{}", "MissingProviderToken"),
        (
            f"/3/device/{TOKEN}",
            {**good, "authorization": "bearer x.y.z"},
            b"",
            "InvalidProviderToken",
        ),
        (f"/3/device/{TOKEN}", {"authorization": authorization}, b"{}", "MissingTopic"),
        (f"/3/device/{TOKEN}", {**good, "apns-push-type": "x"}, b"{}", "InvalidPushType"),
        (f"/3/device/{TOKEN}", {**good, "apns-priority": "3"}, b"{}", "BadPriority"),
        (
            f"/3/device/{TOKEN}",
            {**good, "apns-push-type": "background", "apns-priority": "10"},
            b"{}",
            "BadPriority",
        ),
        (f"/3/device/{TOKEN}", {**good, "apns-expiration": "soon"}, b"{}", "BadExpirationDate"),
        (f"/3/device/{TOKEN}", {**good, "apns-collapse-id": "x" * 65}, b"{}", "BadCollapseId"),
        (f"/3/device/{TOKEN}", {**good, "apns-id": "nope"}, b"{}", "BadMessageId"),
        (f"/3/device/{TOKEN}", good, b"", "PayloadEmpty"),
        (f"/3/device/{TOKEN}", good, b"{", "BadPayload"),
        (f"/3/device/{TOKEN}", good, b'{"aps": 1}', "BadPayload"),
        (f"/3/device/{TOKEN}", good, b"x" * 4097, "PayloadTooLarge"),
    ]
    http: httpx.AsyncClient = provider._client
    for path, headers, body, reason in cases:
        response = await http.post(f"{apns.base_url}{path}", content=body, headers=headers)
        assert response.json()["reason"] == reason, path
        assert response.status_code == APNS_REASONS[reason]
        assert response.headers["apns-id"]
    get = await http.get(f"{apns.base_url}/3/device/{TOKEN}", headers=good)
    assert (get.status_code, get.json()["reason"]) == (405, "MethodNotAllowed")
    assert len(apns.notifications) == 1


async def test_a_key_file_works_and_repr_hides_it(
    apns: FakeAPNs, client: httpx.AsyncClient, clock: ManualClock, tmp_path: Path
) -> None:
    path = tmp_path / "AuthKey.p8"
    path.write_text(apns.private_key)
    async with APNsProvider(
        team_id=apns.team_id,
        key_id=apns.key_id,
        private_key=path,
        client=client,
        clock=clock,
        production_url=apns.base_url,
    ) as provider:
        assert isinstance(await provider.send(HELLO), Delivered)
        assert repr(provider) == "<APNsProvider team='TEAM123456' key='KEY1234567'>"
    assert not client.is_closed  # a client passed in stays open


async def test_an_owned_client_is_closed() -> None:
    provider = APNsProvider(team_id="T", key_id="K", private_key=make_apns_key())
    async with provider:
        pass
    assert provider._client.is_closed


def test_bad_configuration_is_refused(tmp_path: Path) -> None:
    key = make_apns_key()
    with pytest.raises(ConfigurationError, match="non-empty"):
        APNsProvider(team_id="", key_id="K", private_key=key)
    with pytest.raises(ConfigurationError, match="between 1200 and 3600"):
        APNsProvider(team_id="T", key_id="K", private_key=key, refresh_after=1199)
    with pytest.raises(ConfigurationError, match="between 1200 and 3600"):
        APNsProvider(team_id="T", key_id="K", private_key=key, refresh_after=3600)
    with pytest.raises(ConfigurationError, match="deadline must be positive"):
        APNsProvider(team_id="T", key_id="K", private_key=key, deadline=-1)
    with pytest.raises(ConfigurationError, match="cannot read the APNs key"):
        APNsProvider(team_id="T", key_id="K", private_key=tmp_path / "missing.p8")
    with pytest.raises(ConfigurationError, match=r"not a PEM \(.p8\) private key"):
        APNsProvider(team_id="T", key_id="K", private_key=b"nope")
    from eventpatterns.testing import make_service_account

    with pytest.raises(ConfigurationError, match="EC P-256"):
        APNsProvider(team_id="T", key_id="K", private_key=make_service_account()["private_key"])


def test_the_fake_needs_starting_and_knows_its_reasons() -> None:
    fake = FakeAPNs()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.base_url
    with pytest.raises(ValueError, match="unknown APNs reason 'Nope'"):
        fake.fail("Nope")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(200), Delivered("apns", None)),
        (httpx.Response(502, content=b"<html>"), RetryLater("apns", "502", None, 502)),
        (
            httpx.Response(400, json={"reason": "Brand new"}),
            PermanentFailure("apns", "Brand new", 400),
        ),
        (httpx.Response(418, json={}), PermanentFailure("apns", "418", 418)),
        (
            httpx.Response(410, json={"reason": "Unregistered", "timestamp": True}),
            DeadToken("apns", "Unregistered", None, 410),
        ),
    ],
)
def test_odd_answers_map_by_status(response: httpx.Response, expected: object) -> None:
    assert apns_result(response, 0.0) == expected


def test_the_table_follows_apple() -> None:
    assert REASONS["Unregistered"] is REASONS["BadDeviceToken"] is Outcome.DEAD
    assert REASONS["PayloadTooLarge"] is Outcome.PERMANENT
    assert set(REASONS) <= set(APNS_REASONS)
