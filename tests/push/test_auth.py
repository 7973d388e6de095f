"""TokenAuth: one mint per key until near expiry, min_age, one refresh on an expired answer."""

from __future__ import annotations

import json

import anyio
import httpx
import pytest

from eventpatterns.push import TokenAuth
from eventpatterns.testing import ManualClock

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Minter:
    """Mints ``token-<n>`` valid for ``lifetime`` seconds; records each call."""

    def __init__(self, clock: ManualClock, lifetime: float = 3600.0, delay: float = 0.0) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.delay = delay
        self.calls: list[str] = []

    async def __call__(self, request: httpx.Request) -> tuple[str, float]:
        if self.delay:
            await anyio.sleep(self.delay)  # let concurrent requests pile up on the lock
        self.calls.append(request.url.host)
        return f"Bearer token-{len(self.calls)}", self.clock.time() + self.lifetime


class Service:
    """An httpx transport that accepts only the ``valid`` credentials and records headers."""

    def __init__(self, *, expired_status: int = 401, body: bytes = b"") -> None:
        self.valid: set[str] = set()
        self.seen: list[str] = []
        self.expired_status = expired_status
        self.body = body

    def handler(self, request: httpx.Request) -> httpx.Response:
        value = request.headers.get("authorization", "")
        self.seen.append(value)
        if value in self.valid or (not self.valid and value):
            return httpx.Response(200)
        return httpx.Response(self.expired_status, content=self.body)


def client(service: Service) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(service.handler))


async def test_one_mint_serves_many_requests() -> None:
    clock = ManualClock()
    mint = Minter(clock)
    auth = TokenAuth(mint, clock=clock)
    service = Service()
    async with client(service) as http:
        for _ in range(5):
            assert (await http.get("https://a.example/", auth=auth)).status_code == 200
    assert mint.calls == ["a.example"]
    assert service.seen == ["Bearer token-1"] * 5
    assert auth.mints == 1


async def test_refreshes_margin_seconds_before_expiry() -> None:
    clock = ManualClock()
    mint = Minter(clock, lifetime=100)
    auth = TokenAuth(mint, margin=60, clock=clock)
    service = Service()
    async with client(service) as http:
        await http.get("https://a.example/", auth=auth)
        clock.advance(39)  # 61 s left: still good
        await http.get("https://a.example/", auth=auth)
        assert auth.mints == 1
        clock.advance(2)  # 59 s left: inside the margin
        await http.get("https://a.example/", auth=auth)
    assert auth.mints == 2
    assert service.seen == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]


async def test_min_age_keeps_a_credential_past_its_expiry() -> None:
    clock = ManualClock()
    mint = Minter(clock, lifetime=10)
    auth = TokenAuth(mint, margin=0, min_age=1200, clock=clock)
    service = Service()
    async with client(service) as http:
        await http.get("https://a.example/", auth=auth)
        clock.advance(1199)
        await http.get("https://a.example/", auth=auth)
        assert auth.mints == 1
        clock.advance(1)
        await http.get("https://a.example/", auth=auth)
    assert auth.mints == 2


async def test_an_expired_answer_refreshes_once_and_succeeds() -> None:
    clock = ManualClock()
    auth = TokenAuth(Minter(clock), clock=clock)
    service = Service()
    service.valid = {"Bearer token-1"}
    async with client(service) as http:
        await http.get("https://a.example/", auth=auth)
        service.valid = {"Bearer token-2"}  # the service revoked token-1
        response = await http.get("https://a.example/", auth=auth)
    assert response.status_code == 200
    assert service.seen == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    assert auth.mints == 2


async def test_an_expired_answer_refreshes_only_once() -> None:
    clock = ManualClock()
    auth = TokenAuth(Minter(clock), clock=clock)
    service = Service()
    service.valid = {"never"}
    async with client(service) as http:
        response = await http.get("https://a.example/", auth=auth)
    assert response.status_code == 401
    assert service.seen == ["Bearer token-1", "Bearer token-2"]
    assert auth.mints == 2


async def test_the_expired_predicate_sees_the_body_and_min_age_does_not_block_it() -> None:
    clock = ManualClock()

    def expired(response: httpx.Response) -> bool:
        return response.status_code == 403 and json.loads(response.content) == {"reason": "Old"}

    auth = TokenAuth(Minter(clock), expired=expired, min_age=1200, clock=clock)
    old = Service(expired_status=403, body=b'{"reason": "Old"}')
    old.valid = {"Bearer token-2"}
    other = Service(expired_status=403, body=b'{"reason": "Forbidden"}')
    other.valid = {"never"}
    async with client(old) as http:
        assert (await http.get("https://a.example/", auth=auth)).status_code == 200
    async with client(other) as http:  # a 403 of another reason is not "expired"
        assert (await http.get("https://a.example/", auth=auth)).status_code == 403
    assert other.seen == ["Bearer token-2"]
    assert auth.mints == 2


async def test_fifty_concurrent_requests_mint_once() -> None:
    clock = ManualClock()
    mint = Minter(clock, delay=0.01)
    auth = TokenAuth(mint, clock=clock)
    service = Service()
    statuses: list[int] = []

    async def get(http: httpx.AsyncClient) -> None:
        statuses.append((await http.get("https://a.example/", auth=auth)).status_code)

    async with client(service) as http, anyio.create_task_group() as tg:
        for _ in range(50):
            tg.start_soon(get, http)
    assert statuses == [200] * 50
    assert mint.calls == ["a.example"]


async def test_fifty_concurrent_expired_answers_mint_once_more() -> None:
    clock = ManualClock()
    mint = Minter(clock, delay=0.01)
    auth = TokenAuth(mint, clock=clock)
    service = Service()
    service.valid = {"Bearer token-1"}
    statuses: list[int] = []

    async def get(http: httpx.AsyncClient) -> None:
        statuses.append((await http.get("https://a.example/", auth=auth)).status_code)

    async with client(service) as http:
        await http.get("https://a.example/", auth=auth)
        service.valid = {"Bearer token-2"}
        async with anyio.create_task_group() as tg:
            for _ in range(50):
                tg.start_soon(get, http)
    assert statuses == [200] * 50
    assert auth.mints == 2  # the first expired answer mints; the other 49 reuse it


async def test_keys_get_credentials_of_their_own() -> None:
    clock = ManualClock()
    mint = Minter(clock)
    auth = TokenAuth(mint, key=lambda request: request.url.host, clock=clock)
    service = Service()
    async with client(service) as http:
        for host in ("a.example", "b.example", "a.example", "b.example"):
            await http.get(f"https://{host}/", auth=auth)
    assert mint.calls == ["a.example", "b.example"]
    assert service.seen == ["Bearer token-1", "Bearer token-2", "Bearer token-1", "Bearer token-2"]


async def test_a_custom_header_carries_the_credential() -> None:
    clock = ManualClock()
    auth = TokenAuth(Minter(clock), header="x-api-key", clock=clock)
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("x-api-key"))
        return httpx.Response(200 if "authorization" not in request.headers else 500)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        assert (await http.get("https://a.example/", auth=auth)).status_code == 200
    assert seen == ["Bearer token-1"]


async def test_repr_hides_the_token() -> None:
    clock = ManualClock()
    auth = TokenAuth(Minter(clock), clock=clock)
    async with client(Service()) as http:
        await http.get("https://a.example/", auth=auth)
    assert "token-1" not in repr(auth)
    assert repr(auth) == "<TokenAuth keys=1 mints=1>"


def test_the_sync_client_is_refused() -> None:
    auth = TokenAuth(Minter(ManualClock()))
    with (
        httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200))) as http,
        pytest.raises(RuntimeError, match="AsyncClient only"),
    ):
        http.get("https://a.example/", auth=auth)
