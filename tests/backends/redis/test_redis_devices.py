"""The Redis device registry runs the public DeviceRegistry suite against the real server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import redis.asyncio
from redis_helpers import REDIS_URL, delete_prefix, new_prefix

from eventpatterns.backends.redis import RedisDeviceRegistry
from eventpatterns.errors import BackendUnavailable, BusClosed, ConfigurationError
from eventpatterns.push import DEFAULT_MAX_DEVICES, DeviceRegistry, Registration
from eventpatterns.testing import DeviceRegistrySuite

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_server")]


class TestRedisDeviceRegistry(DeviceRegistrySuite):
    anyio_backends = ("asyncio",)  # redis-py's asyncio client

    @pytest.fixture(autouse=True)
    def _prefixes(self) -> Iterator[None]:
        self.prefixes: list[str] = []
        yield
        for prefix in self.prefixes:
            delete_prefix(prefix)

    async def make_registry(self, *, max_devices: int = DEFAULT_MAX_DEVICES) -> DeviceRegistry:
        prefix = new_prefix("dev")
        self.prefixes.append(prefix)
        return RedisDeviceRegistry(REDIS_URL, prefix=prefix, max_devices=max_devices)


@pytest.mark.anyio
async def test_the_keys_are_a_hash_a_user_set_and_a_seen_index(
    prefix: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisDeviceRegistry(REDIS_URL, prefix=prefix) as registry:
        device = await registry.register(
            "alice", Registration("fcm", "tok", topics={"b", "a"}), now=12.5
        )
        base = f"{{{prefix}}}:push:"
        stored = await raw.hgetall(f"{base}d:{device.id}")
        assert stored[b"u"] == b"alice"
        assert (stored[b"c"], stored[b"r"], stored[b"s"]) == (b"12.5", b"12.5", b"12.5")
        assert json.loads(stored[b"k"]) == ["a", "b"]
        assert json.loads(stored[b"j"])[:2] == ["fcm", "tok"]
        assert await raw.smembers(f"{base}u:alice") == {device.id.encode()}
        assert await raw.zscore(f"{base}seen", device.id) == 12.5
        await registry.register("bob", Registration("fcm", "tok"), now=13.0)
        assert await raw.exists(f"{base}u:alice") == 0  # moved: alice's set is empty
        assert await registry.unregister("bob", device.id)
        assert await raw.keys(f"{base}*") == []


@pytest.mark.anyio
async def test_an_unreachable_server_is_backend_unavailable() -> None:
    registry = RedisDeviceRegistry("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    with pytest.raises(BackendUnavailable):
        await registry.get("0" * 32)
    await registry.aclose()
    with pytest.raises(BusClosed):
        await registry.devices("alice")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prefix": ""}, "prefix"),
        ({"prefix": "a}b"}, "prefix"),
        ({"max_devices": 0}, "max_devices"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_options_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisDeviceRegistry(REDIS_URL, **kwargs)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_the_routes_over_redis_and_a_503_when_it_is_down(prefix: str) -> None:
    import httpx
    from starlette.applications import Starlette

    from eventpatterns.push.asgi import device_routes
    from eventpatterns.realtime import APIKeyAuthorizer

    keys = APIKeyAuthorizer()
    key, _ = keys.create_key("alice")
    async with RedisDeviceRegistry(REDIS_URL, prefix=prefix) as registry:
        down = RedisDeviceRegistry("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
        for target, status in ((registry, 201), (down, 503)):
            app = Starlette(routes=device_routes(target, authorizer=keys))
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://api", headers={"x-api-key": key}
            ) as client:
                answer = await client.post("/devices", json={"platform": "fcm", "token": "t"})
            assert answer.status_code == status
        assert answer.headers["retry-after"] == "1"
        assert [d.token for d in await registry.devices("alice")] == ["t"]
        await down.aclose()


@pytest.mark.anyio
async def test_from_url_reads_prefix_and_max_devices(prefix: str) -> None:
    url = f"{REDIS_URL}?prefix={prefix}&max_devices=2&socket_timeout=5"
    async with RedisDeviceRegistry.from_url(url) as registry:
        assert (registry.prefix, registry.max_devices) == (prefix, 2)
        await registry.register("alice", Registration("fcm", "a"), now=1.0)
    async with RedisDeviceRegistry.from_url(url, max_devices=5) as again:
        assert again.max_devices == 5  # a keyword wins over the URL
        assert [d.token for d in await again.devices("alice")] == ["a"]
    for bad, message in (
        ("http://127.0.0.1/", "redis://"),
        (f"{REDIS_URL}?max_devices=0", "max_devices"),
        (f"{REDIS_URL}?max_devices=x", "max_devices"),
        (f"{REDIS_URL}?prefix=a&prefix=b", "twice"),
        (f"{REDIS_URL}?colour=blue", "colour"),
    ):
        with pytest.raises(ConfigurationError, match=message):
            RedisDeviceRegistry.from_url(bad)
