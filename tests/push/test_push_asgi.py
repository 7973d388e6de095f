"""The device routes over real HTTP semantics (httpx's ASGI transport), owner-scoped."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.errors import ConfigurationError
from eventpatterns.push import device_id
from eventpatterns.push.asgi import KNOWN_PUSH_SERVICES, device_endpoint, device_routes
from eventpatterns.realtime import APIKeyAuthorizer, JWTAuthorizer, JWTKey
from eventpatterns.testing import ManualClock
from eventpatterns.testing._device_registry_suite import AUTH, P256DH

pytestmark = pytest.mark.anyio

ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc:def"
SUBSCRIPTION = {
    "endpoint": ENDPOINT,
    "expirationTime": None,
    "keys": {"p256dh": P256DH, "auth": AUTH},
}
SECRET = "s" * 32


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Api:
    """An app with the routes, a memory registry, and a client per user."""

    def __init__(self, **options: Any) -> None:
        self.clock = ManualClock(start=1_000.0)
        self.registry = MemoryDeviceRegistry(max_devices=options.pop("max_devices", 5))
        self.keys = APIKeyAuthorizer()
        self.app = Starlette(
            routes=device_routes(self.registry, authorizer=self.keys, clock=self.clock, **options)
        )

    def client(self, user: str | None) -> httpx.AsyncClient:
        headers = {}
        if user is not None:
            key, _ = self.keys.create_key(user)
            headers["x-api-key"] = key
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers)


@pytest.fixture
def api() -> Api:
    return Api()


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    return body


async def test_register_list_get_and_delete(api: Api) -> None:
    async with api.client("alice") as alice:
        created = await alice.post("/devices", json={**SUBSCRIPTION, "topics": ["news"]})
        assert created.status_code == 201
        device = created.json()
        assert device["id"] == device_id("webpush", ENDPOINT)
        assert created.headers["location"] == f"/devices/{device['id']}"
        assert (device["user"], device["topics"], device["created_at"]) == (
            "alice",
            ["news"],
            1000.0,
        )
        assert "keys" not in device
        api.clock.advance(5)
        again = await alice.post("/devices", json={**SUBSCRIPTION, "topics": ["deals"]})
        assert again.status_code == 200
        assert "location" not in again.headers
        assert again.json()["registered_at"] == 1005.0
        listed = await alice.get("/devices")
        assert [d["id"] for d in listed.json()["devices"]] == [device["id"]]
        assert (await alice.get("/devices", params={"topic": "news"})).json() == {"devices": []}
        one = await alice.get(f"/devices/{device['id']}")
        assert one.json()["topics"] == ["deals"]
        gone = await alice.delete(f"/devices/{device['id']}")
        assert gone.status_code == 204
        assert gone.content == b""
        assert await api.registry.devices("alice") == []
        problem(await alice.delete(f"/devices/{device['id']}"), 404)


async def test_every_platform_registers(api: Api) -> None:
    fcm = {"platform": "fcm", "token": "fcm:tok", "locale": "pt_BR"}
    apns = {"platform": "apns", "token": "AB" * 32, "apns_topic": "com.example"}
    bodies = [
        {**fcm, "time_zone": "America/Sao_Paulo"},
        {**apns, "apns_environment": "sandbox"},
        {"platform": "webpush", "subscription": SUBSCRIPTION},
    ]
    async with api.client("alice") as alice:
        for body in bodies:
            assert (await alice.post("/devices", json=body)).status_code == 201
    platforms = {d.platform.value: d for d in await api.registry.devices("alice")}
    assert set(platforms) == {"fcm", "apns", "webpush"}
    assert platforms["fcm"].locale == "pt-BR"
    assert platforms["apns"].token == "ab" * 32


async def test_another_users_device_is_not_found(api: Api) -> None:
    async with api.client("alice") as alice, api.client("mallory") as mallory:
        device = (await alice.post("/devices", json={"platform": "fcm", "token": "t"})).json()
        url = f"/devices/{device['id']}"
        problem(await mallory.get(url), 404)
        problem(await mallory.delete(url), 404)
        problem(await mallory.put(url + "/topics", json={"topics": ["x"]}), 404)
        assert (await mallory.get("/devices")).json() == {"devices": []}
        assert (await alice.get(url)).status_code == 200
        problem(await alice.get("/devices/not-an-id"), 404)
        problem(await alice.get("/devices/" + "0" * 32), 404)


async def test_a_token_posted_by_another_user_moves_to_them(api: Api) -> None:
    async with api.client("alice") as alice, api.client("bob") as bob:
        await alice.post("/devices", json={"platform": "fcm", "token": "shared"})
        moved = await bob.post("/devices", json={"platform": "fcm", "token": "shared"})
        assert moved.status_code == 201  # new to bob
        assert (await alice.get("/devices")).json() == {"devices": []}
        assert [d["user"] for d in (await bob.get("/devices")).json()["devices"]] == ["bob"]


async def test_set_topics(api: Api) -> None:
    async with api.client("alice") as alice:
        device = (await alice.post("/devices", json={"platform": "fcm", "token": "t"})).json()
        url = f"/devices/{device['id']}/topics"
        changed = await alice.put(url, json={"topics": ["b", "a"]})
        assert changed.json()["topics"] == ["a", "b"]
        assert problem(await alice.put(url, json={"topics": "a"}), 400)["field"] == "topics"
        assert problem(await alice.put(url, json={"topic": ["a"]}), 400)["field"] == "topics"
        assert problem(await alice.put(url, json={"topics": ["a b"]}), 400)["field"] == "topics"
        problem(await alice.post(url, json={"topics": []}), 405)
    stored = await api.registry.get(device["id"])
    assert stored is not None
    assert stored.topics == frozenset({"a", "b"})


async def test_credentials_are_required_and_checked(api: Api) -> None:
    async with api.client(None) as anonymous:
        missing = await anonymous.get("/devices")
        assert problem(missing, 401)["reason"] == "missing"
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = await anonymous.post(
            "/devices", json={"platform": "fcm", "token": "t"}, headers={"x-api-key": "epk_nope"}
        )
        problem(wrong, 401)
    assert await api.registry.get(device_id("fcm", "t")) is None


async def test_a_jwt_bearer_token_names_the_owner() -> None:
    registry = MemoryDeviceRegistry()
    authorizer = JWTAuthorizer(JWTKey(SECRET, "HS256"))
    app = Starlette(routes=device_routes(registry, authorizer=authorizer, path="/api/devices/"))
    token = jwt.encode({"sub": "carol", "exp": int(time.time()) + 600}, SECRET, algorithm="HS256")
    transport = httpx.ASGITransport(app=app)
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers) as c:
        response = await c.post("/api/devices", json={"platform": "fcm", "token": "t"})
        assert response.status_code == 201
        assert response.headers["location"].startswith("/api/devices/")
    assert [d.user for d in await registry.devices("carol")] == ["carol"]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"platform": "fcm"}, 400, "token"),
        ({"platform": "fcm", "token": 3}, 400, None),
        ({"platform": "fcm", "token": "t", "timezone": "UTC"}, 400, "timezone"),
        ({**SUBSCRIPTION, "endpoint": "http://10.0.0.1/x"}, 400, "token"),
        ({**SUBSCRIPTION, "endpoint": "https://169.254.169.254/latest"}, 400, "token"),
        ({**SUBSCRIPTION, "keys": {"p256dh": AUTH, "auth": AUTH}}, 400, "p256dh"),
        (["not", "an", "object"], 400, "registration"),
    ],
)
async def test_bad_registrations_are_problems_naming_the_field(
    api: Api, body: Any, status: int, field: str | None
) -> None:
    async with api.client("alice") as alice:
        answer = problem(await alice.post("/devices", json=body), status)
    assert answer.get("field") == field
    assert await api.registry.devices("alice") == []


async def test_bodies_that_are_not_json_or_too_large(api: Api) -> None:
    async with api.client("alice") as alice:
        problem(
            await alice.post(
                "/devices", content=b"{", headers={"content-type": "application/json"}
            ),
            400,
        )
        problem(
            await alice.post("/devices", content=b"{}", headers={"content-type": "text/plain"}), 415
        )
        problem(await alice.post("/devices", content=b"{}"), 415)  # no content type
        big = b'{"platform": "fcm", "token": "' + b"x" * 20_000 + b'"}'
        problem(
            await alice.post("/devices", content=big, headers={"content-type": "application/json"}),
            413,
        )

        deep = b"[" * 100_000 + b"]" * 100_000
        problem(
            await alice.post(
                "/devices", content=deep[:16_000], headers={"content-type": "application/json"}
            ),
            400,
        )
    assert await api.registry.devices("alice") == []


async def test_a_streamed_body_is_counted_as_it_comes(api: Api) -> None:
    key, _ = api.keys.create_key("alice")
    scope = {
        "type": "http", "method": "POST", "path": "/devices", "query_string": b"",
        "headers": [(b"x-api-key", key.encode()), (b"content-type", b"application/json")],
    }  # fmt: skip
    chunks = [{"type": "http.request", "body": b" " * 1000, "more_body": True}] * 20
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return chunks.pop()

    async def send(message: Any) -> None:
        sent.append(message)

    await api.app(scope, receive, send)  # no content-length: the 17th chunk is too many
    assert sent[0]["status"] == 413
    assert len(chunks) == 3
    gone = [{"type": "http.disconnect"}]
    sent.clear()
    await api.app(scope, lambda: _pop(gone), send)
    assert sent[0]["status"] == 400


async def _pop(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return messages.pop()


async def test_methods_and_limits(api: Api) -> None:
    async with api.client("alice") as alice:
        refused = await alice.patch("/devices")
        problem(refused, 405)
        assert refused.headers["allow"] == "GET, POST"
        assert (await alice.put("/devices/x")).headers["allow"] == "GET, DELETE"
        problem(await alice.get("/devices", params={"topic": "a b"}), 400)
        for n in range(5):
            await alice.post("/devices", json={"platform": "fcm", "token": f"t{n}"})
        full = await alice.post("/devices", json={"platform": "fcm", "token": "t5"})
        assert problem(full, 409)["limit"] == "max_devices"
    assert len(await api.registry.devices("alice")) == 5


async def test_endpoint_hosts_is_the_ssrf_allowlist() -> None:
    local = {**SUBSCRIPTION, "endpoint": "http://127.0.0.1:9/push"}
    strict = Api()
    async with strict.client("alice") as alice:
        assert problem(await alice.post("/devices", json=local), 400)["field"] == "token"
        apple = {**SUBSCRIPTION, "endpoint": "https://web.push.apple.com/QGu"}
        assert (await alice.post("/devices", json=apple)).status_code == 201
        lookalike = {**SUBSCRIPTION, "endpoint": "https://evilpush.apple.com.example/x"}
        problem(await alice.post("/devices", json=lookalike), 400)
    assert "push.apple.com" in KNOWN_PUSH_SERVICES
    for hosts in (("127.0.0.1",), None):
        tests = Api(endpoint_hosts=hosts)
        async with tests.client("alice") as alice:
            assert (await alice.post("/devices", json=local)).status_code == 201


async def test_websocket_scopes_are_closed() -> None:
    app = device_endpoint(MemoryDeviceRegistry(), authorizer=APIKeyAuthorizer())
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(message)

    await app({"type": "websocket", "path": "/devices"}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "HTTP only"}]
    await app({"type": "lifespan"}, receive, send)
    assert len(sent) == 1


def test_bad_settings_are_refused() -> None:
    registry = MemoryDeviceRegistry()
    with pytest.raises(ConfigurationError, match="kind"):
        device_endpoint(registry, authorizer=APIKeyAuthorizer(), kind="all")
    with pytest.raises(ConfigurationError, match="max_body"):
        device_endpoint(registry, authorizer=APIKeyAuthorizer(), max_body=0)


@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=st.binary(max_size=300) | st.sampled_from([b'{"platform":"fcm","token":"t"}', b"{}"]))
async def test_fuzz_any_body_gets_an_answer_and_nothing_half_written(body: bytes) -> None:
    api = Api()
    async with api.client("alice") as alice:
        response = await alice.post(
            "/devices", content=body, headers={"content-type": "application/json"}
        )
    assert response.status_code in (201, 400)
    devices = await api.registry.devices("alice")
    assert len(devices) == (1 if response.status_code == 201 else 0)
