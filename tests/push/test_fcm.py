"""FCMProvider against FakeFCM over real sockets: every error mapping, tokens, deadline."""

from __future__ import annotations

import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest

from eventpatterns.errors import (
    ArgumentTypeError,
    AuthenticationFailed,
    ConfigurationError,
    LimitExceeded,
)
from eventpatterns.push import (
    DeadToken,
    Delivered,
    FCMMessage,
    FCMProvider,
    PermanentFailure,
    RetryLater,
)
from eventpatterns.push._fcm_errors import ERRORS, Outcome, fcm_result
from eventpatterns.testing import FakeFCM, ManualClock, make_service_account

pytestmark = pytest.mark.anyio

HELLO = FCMMessage(token="device-1", title="Hello", data={"order": "42"})


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def fcm(clock: ManualClock) -> AsyncIterator[FakeFCM]:
    async with FakeFCM(clock=clock) as fake:
        yield fake


@pytest.fixture
async def provider(fcm: FakeFCM, clock: ManualClock) -> AsyncIterator[FCMProvider]:
    async with FCMProvider(fcm.service_account, base_url=fcm.base_url, clock=clock) as sender:
        yield sender


async def test_a_message_is_delivered_and_recorded(fcm: FakeFCM, provider: FCMProvider) -> None:
    result = await provider.send(HELLO)
    assert isinstance(result, Delivered)
    assert result.provider == "fcm"
    assert result.message_id is not None
    assert result.message_id.startswith("projects/demo-project/messages/")
    assert fcm.messages == [HELLO.payload()]
    assert fcm.token_requests == 1


async def test_validate_only_delivers_nothing(fcm: FakeFCM, provider: FCMProvider) -> None:
    assert isinstance(await provider.send(HELLO, validate_only=True), Delivered)
    assert fcm.messages == []


@pytest.mark.parametrize(
    ("code", "expected", "status"),
    [
        ("UNREGISTERED", DeadToken, 404),
        ("SENDER_ID_MISMATCH", DeadToken, 403),
        ("QUOTA_EXCEEDED", RetryLater, 429),
        ("UNAVAILABLE", RetryLater, 503),
        ("INTERNAL", RetryLater, 500),
        ("INVALID_ARGUMENT", PermanentFailure, 400),
        ("THIRD_PARTY_AUTH_ERROR", PermanentFailure, 401),
    ],
)
async def test_every_error_maps_to_its_outcome(
    fcm: FakeFCM, provider: FCMProvider, code: str, expected: type, status: int
) -> None:
    fcm.fail(code)
    result = await provider.send(HELLO)
    assert type(result) is expected
    assert not isinstance(result, Delivered)
    assert result.status == status
    assert result.reason.startswith(code)
    assert fcm.messages == []
    assert fcm.token_requests == 1  # THIRD_PARTY_AUTH_ERROR is a 401 no refresh can fix
    assert isinstance(await provider.send(HELLO), Delivered)  # told to fail once only


@pytest.mark.parametrize("code", ["QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"])
async def test_retry_later_honours_retry_after(
    fcm: FakeFCM, provider: FCMProvider, clock: ManualClock, code: str
) -> None:
    fcm.fail(code, retry_after="30")
    assert await provider.send(HELLO) == RetryLater(
        "fcm", code, at=clock.time() + 30, status=ERRORS_STATUS[code]
    )
    fcm.fail(code, retry_after="Wed, 21 Oct 2015 07:28:00 GMT")
    result = await provider.send(HELLO)
    assert isinstance(result, RetryLater)
    assert result.at == clock.time()  # a date in the past: now
    fcm.fail(code)
    result = await provider.send(HELLO)
    assert isinstance(result, RetryLater)
    assert result.at is None  # no Retry-After: the dispatcher's backoff


ERRORS_STATUS = {"QUOTA_EXCEEDED": 429, "UNAVAILABLE": 503, "INTERNAL": 500}


async def test_an_unregistered_token_is_dead_on_every_send(
    fcm: FakeFCM, provider: FCMProvider
) -> None:
    fcm.unregister("device-1")
    for _ in range(2):
        assert await provider.send(HELLO) == DeadToken("fcm", "UNREGISTERED", status=404)
    assert isinstance(await provider.send(FCMMessage(token="device-2", title="x")), Delivered)


async def test_one_access_token_serves_many_sends(fcm: FakeFCM, provider: FCMProvider) -> None:
    for _ in range(20):
        assert isinstance(await provider.send(HELLO), Delivered)
    assert fcm.token_requests == 1
    assert provider.auth.mints == 1
    assert len(fcm.messages) == 20


async def test_fifty_concurrent_sends_share_one_token(fcm: FakeFCM, provider: FCMProvider) -> None:
    results: list[object] = []

    async def send(n: int) -> None:
        results.append(await provider.send(FCMMessage(token=f"device-{n}", title="x")))

    async with anyio.create_task_group() as tg:
        for n in range(50):
            tg.start_soon(send, n)
    assert all(isinstance(result, Delivered) for result in results)
    assert len(results) == 50
    assert fcm.token_requests == 1
    assert sorted(m["token"] for m in fcm.messages) == sorted(f"device-{n}" for n in range(50))


async def test_the_token_is_refreshed_near_expiry(
    fcm: FakeFCM, provider: FCMProvider, clock: ManualClock
) -> None:
    await provider.send(HELLO)
    clock.advance(3600 - 300 - 1)  # the default margin is 300 s: not yet
    await provider.send(HELLO)
    assert fcm.token_requests == 1
    clock.advance(2)
    assert isinstance(await provider.send(HELLO), Delivered)
    assert fcm.token_requests == 2


async def test_an_expired_token_the_fake_refuses_is_replaced(
    clock: ManualClock,
) -> None:
    async with (
        FakeFCM(clock=clock, token_lifetime=100) as fcm,
        FCMProvider(fcm.service_account, base_url=fcm.base_url, clock=clock, margin=0) as p,
    ):
        await p.send(HELLO)
        clock.advance(100)  # expired at the fake; the provider refreshes at expiry too
        assert isinstance(await p.send(HELLO), Delivered)
        assert fcm.token_requests == 2


async def test_a_401_refreshes_the_token_once_and_succeeds(
    fcm: FakeFCM, provider: FCMProvider
) -> None:
    await provider.send(HELLO)
    fcm.revoke_tokens()
    assert isinstance(await provider.send(HELLO), Delivered)
    assert fcm.token_requests == 2
    assert len(fcm.messages) == 2


async def test_a_401_refreshes_only_once(fcm: FakeFCM, provider: FCMProvider) -> None:
    fcm.fail("UNAUTHENTICATED", times=3)
    result = await provider.send(HELLO)
    assert isinstance(result, PermanentFailure)
    assert result.status == 401
    assert result.reason.startswith("UNAUTHENTICATED: Request had invalid authentication")
    assert fcm.token_requests == 2  # the first token and one refresh, not three


async def test_a_refused_service_account_raises(fcm: FakeFCM, provider: FCMProvider) -> None:
    fcm.fail_token(400, "invalid_grant")
    with pytest.raises(AuthenticationFailed, match="refused the service account") as caught:
        await provider.send(HELLO)
    assert caught.value.reason == "invalid_grant"
    assert fcm.messages == []
    assert isinstance(await provider.send(HELLO), Delivered)


async def test_a_forged_assertion_is_refused_by_the_fake(fcm: FakeFCM) -> None:
    forged = {**make_service_account(), "client_email": fcm.service_account["client_email"]}
    async with FCMProvider(forged, base_url=fcm.base_url, token_url=fcm.token_url) as p:
        with pytest.raises(AuthenticationFailed) as caught:
            await p.send(HELLO)
    assert caught.value.reason == "invalid_grant"
    assert "Signature verification failed" in str(caught.value)
    assert fcm.token_requests == 0


async def test_a_busy_token_endpoint_means_retry_later(fcm: FakeFCM, provider: FCMProvider) -> None:
    fcm.fail_token(503, "backendError")
    result = await provider.send(HELLO)
    assert result == RetryLater("fcm", "token endpoint 503", None, 503)
    assert fcm.messages == []


async def test_an_unreadable_token_answer_raises(clock: ManualClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token_type": "Bearer"})  # no access_token

    account = make_service_account(token_uri="https://oauth2.example/token")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with client, FCMProvider(account, client=client, clock=clock) as p:
        with pytest.raises(AuthenticationFailed, match="200 200"):
            await p.send(HELLO)


async def test_a_send_that_is_never_answered_meets_its_deadline(
    fcm: FakeFCM, clock: ManualClock
) -> None:
    async with FCMProvider(
        fcm.service_account, base_url=fcm.base_url, clock=clock, deadline=0.3
    ) as p:
        await p.send(HELLO)
        fcm.hang()
        with anyio.fail_after(5):
            assert await p.send(HELLO) == RetryLater("fcm", "timeout")
        assert isinstance(await p.send(HELLO), Delivered)
    assert len(fcm.messages) == 2


async def test_an_unreachable_service_means_retry_later(fcm: FakeFCM, clock: ManualClock) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    async with FCMProvider(
        fcm.service_account, base_url=f"http://127.0.0.1:{port}", clock=clock
    ) as p:
        result = await p.send(HELLO)
    assert result == RetryLater("fcm", "connection: ConnectError")


async def test_a_payload_over_the_limit_is_refused_before_sending(
    fcm: FakeFCM, provider: FCMProvider
) -> None:
    with pytest.raises(LimitExceeded, match="FCM accepts at most 4096"):
        await provider.send(FCMMessage(token="t", data={"k": "x" * 4096}))
    with pytest.raises(LimitExceeded, match="FCM accepts at most 2048"):
        await provider.send(FCMMessage(topic="news", data={"k": "x" * 2048}))
    assert fcm.token_requests == 0  # nothing was sent at all
    with pytest.raises(ArgumentTypeError, match="takes an FCMMessage, got dict"):
        await provider.send({"token": "t"})  # type: ignore[arg-type]


async def test_the_fake_checks_the_message_shape(fcm: FakeFCM, provider: FCMProvider) -> None:
    await provider.send(HELLO)
    token = next(iter(fcm._tokens))
    url = f"{fcm.base_url}/v1/projects/demo-project/messages:send"
    bodies = {
        b"{": "the body is not JSON",
        b"{}": "no 'message' object",
        b'{"message": {"token": "t", "colour": 1}}': "Unknown name 'colour'",
        b'{"message": {"token": "t", "topic": "x"}}': "exactly one of",
        b'{"message": {"token": "t", "data": {"n": 1}}}': "data values must be strings",
        b'{"message": {"topic": "t", "data": {"k": "' + b"x" * 2048 + b'"}}}': "too big",
    }
    async with httpx.AsyncClient() as http:
        for body, words in bodies.items():
            response = await http.post(
                url, content=body, headers={"authorization": f"Bearer {token}"}
            )
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["status"] == "INVALID_ARGUMENT"
            assert words in error["message"]
        unknown = await http.post(f"{fcm.base_url}/v1/projects/other/messages:send", content=b"{}")
        assert unknown.status_code == 404
        grant = await http.post(fcm.token_url, data={"grant_type": "password"})
        assert grant.json()["error"] == "unsupported_grant_type"
    assert fcm.messages == [HELLO.payload()]


async def test_a_service_account_file_works(
    fcm: FakeFCM, clock: ManualClock, tmp_path: Path
) -> None:
    path = tmp_path / "key.json"
    path.write_text(json.dumps(fcm.service_account))
    async with FCMProvider(path, base_url=fcm.base_url, clock=clock) as p:
        assert isinstance(await p.send(HELLO), Delivered)
        assert "private_key" not in repr(p)
        assert repr(p) == (
            "<FCMProvider project='demo-project'"
            " account='firebase-adminsdk@demo-project.iam.gserviceaccount.com'>"
        )


def test_bad_service_accounts_are_refused(tmp_path: Path) -> None:
    good = make_service_account()
    (tmp_path / "list.json").write_text("[]")
    cases = {
        str(tmp_path / "missing.json"): "cannot read the service-account key",
        str(tmp_path / "list.json"): "is not a JSON object",
    }
    for path, words in cases.items():
        with pytest.raises(ConfigurationError, match=words):
            FCMProvider(path)
    with pytest.raises(ConfigurationError, match="type 'service_account'"):
        FCMProvider({**good, "type": "authorized_user"})
    with pytest.raises(ConfigurationError, match="lacks client_email"):
        FCMProvider({k: v for k, v in good.items() if k != "client_email"})
    with pytest.raises(ConfigurationError, match="not a PEM key"):
        FCMProvider({**good, "private_key": "nope"})
    from eventpatterns.testing import make_apns_key

    with pytest.raises(ConfigurationError, match="not an RSA key"):
        FCMProvider({**good, "private_key": make_apns_key()})
    with pytest.raises(ConfigurationError, match="deadline must be positive"):
        FCMProvider(good, deadline=0)


def test_the_fake_needs_starting_and_knows_its_errors() -> None:
    fake = FakeFCM()
    with pytest.raises(RuntimeError, match="not running"):
        _ = fake.base_url
    with pytest.raises(ValueError, match="unknown FCM error 'NOPE'"):
        fake.fail("NOPE")


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (httpx.Response(200, content=b"not json"), Delivered("fcm", None)),
        (httpx.Response(200, json={"name": 5}), Delivered("fcm", None)),
        (httpx.Response(502, content=b"<html>"), RetryLater("fcm", "502", None, 502)),
        (httpx.Response(418, json={"error": {}}), PermanentFailure("fcm", "418", 418)),
        (
            httpx.Response(404, json={"error": {"status": "NOT_FOUND", "message": "no project"}}),
            PermanentFailure("fcm", "NOT_FOUND: no project", 404),
        ),
        (
            httpx.Response(429, json={"error": {"status": "RESOURCE_EXHAUSTED", "details": None}}),
            RetryLater("fcm", "RESOURCE_EXHAUSTED", None, 429),
        ),
    ],
)
def test_odd_answers_map_by_status(response: httpx.Response, expected: object) -> None:
    assert fcm_result(response, 0.0) == expected


def test_the_table_covers_the_documented_codes() -> None:
    assert ERRORS["UNREGISTERED"] is ERRORS["SENDER_ID_MISMATCH"] is Outcome.DEAD
    assert {ERRORS[c] for c in ("QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL")} == {Outcome.RETRY}
    assert ERRORS["INVALID_ARGUMENT"] is Outcome.PERMANENT


async def test_the_fake_token_endpoint_checks_the_assertion(
    fcm: FakeFCM, clock: ManualClock
) -> None:
    import jwt

    account = fcm.service_account
    now = int(clock.time())

    def assertion(**claims: object) -> str:
        base = {
            "iss": account["client_email"],
            "aud": fcm.token_url,
            "scope": "https://www.googleapis.com/auth/firebase.messaging",
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode({**base, **claims}, account["private_key"], algorithm="RS256")

    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    cases = {
        assertion(exp=now + 7200): "invalid_grant",  # longer than an hour
        assertion(iat=now - 7200, exp=now - 3600): "invalid_grant",  # expired
        assertion(scope="https://www.googleapis.com/auth/drive"): "invalid_scope",
        assertion(aud="https://elsewhere.example/token"): "invalid_grant",
        jwt.encode(
            {
                "iss": account["client_email"],
                "aud": fcm.token_url,
                "scope": "x",
                "iat": now,
                "exp": now + 60,
            },
            account["private_key"],
            algorithm="RS256",
            headers={"kid": "another-key-id"},
        ): "invalid_grant",
    }
    async with httpx.AsyncClient() as http:
        for token, error in cases.items():
            response = await http.post(
                fcm.token_url, data={"grant_type": grant, "assertion": token}
            )
            assert (response.status_code, response.json()["error"]) == (400, error)
        good = await http.post(fcm.token_url, data={"grant_type": grant, "assertion": assertion()})
        assert good.json()["expires_in"] == 3600
    assert fcm.token_requests == 1


async def test_a_token_endpoint_answering_html_raises(clock: ManualClock) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, content=b"<html>bad</html>")

    account = make_service_account(token_uri="https://oauth2.example/token")
    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with client, FCMProvider(account, client=client, clock=clock) as p:
        with pytest.raises(AuthenticationFailed, match="400 400") as caught:
            await p.send(HELLO)
    assert caught.value.reason == "400"


@pytest.mark.parametrize("module", ["jwt", "h2"])
def test_a_missing_extra_names_it(module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from eventpatterns.errors import MissingDependency
    from eventpatterns.push import APNsProvider
    from eventpatterns.testing import make_apns_key

    monkeypatch.setitem(sys.modules, module, None)  # "import jwt" now raises ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'eventpatterns\[push\]'"):
        FCMProvider(make_service_account())
    with pytest.raises(MissingDependency, match=module):
        APNsProvider(team_id="T", key_id="K", private_key=make_apns_key())
