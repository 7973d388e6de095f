"""The Redis device registry: a hash per device, a set per user, moves and removals in Lua.

Keys (every one starts with the hash tag ``{prefix}``, so on Redis Cluster a registry
lives in one slot):

===========================  ======  ==================================================
``{p}:push:d:<id>``          hash    ``u`` user, ``c`` created_at, ``r`` registered_at,
                                     ``s`` last_seen, ``j`` the registration (JSON),
                                     ``k`` the consented topics (JSON)
``{p}:push:u:<user>``        set     the user's device ids
``{p}:push:seen``            zset    device ids by last_seen (for ``prune``)
===========================  ======  ==================================================

A device's id is derived from its platform and token, so the device hash is the token
index: registering a token looks up its one hash, and a move from another user, the
limit check and the write are one script (``lua/push/register.lua``). The APNs
conditional removal compares ``r`` inside a script too, so a registration that races
it either lands first (and the device is kept) or after (and it is registered anew).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from ...errors import ConfigurationError
from ...push._devices import Device, Platform, Registration, check_topics
from ...push._devices_json import registration_key_json, topics_json
from ...push._registry import (
    DEFAULT_MAX_DEVICES,
    check_device_id,
    check_max_devices,
    check_prune_limit,
    check_registration,
    check_time,
    check_topic,
    check_user,
    too_many,
)
from ._connection import RedisConnection
from ._url import STORE_OPTIONS, split_store_url

__all__ = ["RedisDeviceRegistry"]

_SCRIPTS = (
    "register", "devices", "unregister", "unregister_all", "set_topics", "touch",
    "remove_stale", "prune",
)  # fmt: skip


#: The query options ``RedisDeviceRegistry.from_url`` reads.
REGISTRY_OPTIONS = STORE_OPTIONS["RedisDeviceRegistry"]


def _script(name: str) -> str:
    lua = files(__package__) / "lua" / "push"
    helpers = (lua / "helpers.lua").read_text(encoding="utf-8")
    return helpers + (lua / f"{name}.lua").read_text(encoding="utf-8")


def _device(device_id: str, fields: list[Any]) -> Device:
    """Build a device from its hash fields (``u c r s j k``), as the scripts stored them."""
    user, created, registered, last, registration, topics = (
        f.decode() if isinstance(f, bytes) else f for f in fields
    )
    platform, token, p256dh, auth, apns_topic, environment, locale, zone, expires = json.loads(
        registration
    )
    return Device(
        device_id, user, Platform(platform), token, float(created), float(last),
        float(registered), p256dh, auth, apns_topic, environment, locale, zone,
        frozenset(json.loads(topics)), expires,
    )  # fmt: skip


class RedisDeviceRegistry:
    """A :class:`~eventpatterns.push.DeviceRegistry` on Redis, shared by every process.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` or
            ``unix:///path``, with redis-py connection options in the query.
        prefix: Key namespace (keys are ``{prefix}:push:...``); it may be the prefix
            of a bus or job store: the keys do not collide.
        max_devices: Most devices one user may hold (1 to 10,000).
        **redis_options: redis-py client options (``password``, ``socket_timeout``...).

    Raises:
        ConfigurationError: A bad URL, prefix or option.
        MissingDependency: redis-py is not installed (``pip install 'eventpatterns[redis]'``).

    Example:
        ```python
        import anyio
        from eventpatterns.backends.redis import RedisDeviceRegistry
        from eventpatterns.push import Registration

        async def main() -> None:
            url = "redis://127.0.0.1:6379/0"
            async with RedisDeviceRegistry(url, prefix="docs-devices") as registry:
                token = "a1" * 32
                device = await registry.register(
                    "alice", Registration("apns", token, apns_topic="com.example.app"), now=1.0
                )
                print(await registry.get(device.id))
                await registry.unregister("alice", device.id)

        anyio.run(main)
        ```
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventpatterns",
        max_devices: int = DEFAULT_MAX_DEVICES,
        **redis_options: Any,
    ) -> None:
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"prefix must be non-empty without braces, got {prefix!r}")
        self.max_devices = check_max_devices(max_devices)
        self.prefix = prefix
        self._base = "{" + prefix + "}:push:"
        self._seen = self._base + "seen"
        self._conn = RedisConnection(
            url, cluster=False, route_key=self._seen, redis_options=redis_options
        )
        client = self._conn.client
        self._scripts = {name: client.register_script(_script(name)) for name in _SCRIPTS}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisDeviceRegistry:
        """Build from ``redis://host:port/db?prefix=myapp&max_devices=20``.

        ``prefix`` and ``max_devices`` are read from the query string, beside the
        redis-py connection options of ``docs/backends.md``; the other Redis stores'
        options (a bus URL's ``max_entries``...) are skipped, so one URL serves every
        store. Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not a Redis URL, or a malformed or unknown option.
        """
        return cls(split_store_url(url, options, "RedisDeviceRegistry"), **options)

    async def __aenter__(self) -> RedisDeviceRegistry:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (idempotent); later calls raise ``BusClosed``."""
        await self._conn.aclose()

    async def _run(self, name: str, *args: Any) -> Any:
        with self._conn.mapped():
            return await self._scripts[name](keys=[self._seen], args=[self._base, *args])

    # -- the contract --------------------------------------------------------------------

    async def register(self, user: str, registration: Registration, *, now: float) -> Device:
        """Register the device for ``user``; see :meth:`DeviceRegistry.register`."""
        check_user("register", user)
        check_registration("register", registration)
        at = check_time("register", "now", now)
        reply = await self._run(
            "register",
            registration.id,
            user,
            repr(at),
            registration_key_json(registration),
            topics_json(registration.topics),
            self.max_devices,
        )
        if reply[0] == b"LIMIT":
            raise too_many(user, self.max_devices)
        created, registered, last = (float(x) for x in reply[1:])
        return Device.of(
            user, registration, created_at=created, registered_at=registered, last_seen=last
        )

    async def get(self, device_id: str) -> Device | None:
        """Return the device, or ``None``."""
        if not check_device_id("get", device_id):
            return None
        with self._conn.mapped():
            fields = await self._conn.client.hmget(self._base + "d:" + device_id, *"ucrsjk")
        return None if fields[0] is None else _device(device_id, fields)

    async def devices(self, user: str, *, topic: str | None = None) -> list[Device]:
        """Return the user's devices, oldest first; see :meth:`DeviceRegistry.devices`."""
        check_user("devices", user)
        wanted = check_topic("devices", topic)
        flat = await self._run("devices", user)
        found = [_device(flat[i].decode(), flat[i + 1 : i + 7]) for i in range(0, len(flat), 7)]
        return sorted(
            (d for d in found if wanted is None or wanted in d.topics),
            key=lambda d: (d.created_at, d.id),
        )

    async def unregister(self, user: str, device_id: str) -> bool:
        """Remove the user's device; ``False`` if they hold no such device."""
        check_user("unregister", user)
        if not check_device_id("unregister", device_id):
            return False
        return bool(await self._run("unregister", device_id, user))

    async def unregister_all(self, user: str) -> int:
        """Remove every device of the user; return how many."""
        check_user("unregister_all", user)
        return int(await self._run("unregister_all", user))

    async def set_topics(self, user: str, device_id: str, topics: Iterable[str]) -> Device | None:
        """Replace a device's consented topics; ``None`` if the user holds no such device."""
        check_user("set_topics", user)
        valid = check_device_id("set_topics", device_id)
        checked = check_topics(topics)
        if not valid:
            return None
        fields = await self._run("set_topics", device_id, user, topics_json(checked))
        return None if fields is None else _device(device_id, fields)

    async def touch(self, device_id: str, now: float) -> bool:
        """Record that the device was seen at ``now``; ``False`` if it does not exist."""
        at = check_time("touch", "now", now)
        if not check_device_id("touch", device_id):
            return False
        return bool(await self._run("touch", device_id, repr(at)))

    async def remove_if_not_registered_since(self, device_id: str, timestamp: float) -> bool:
        """Remove the device unless registered after ``timestamp``; tell if removed."""
        at = check_time("remove_if_not_registered_since", "timestamp", timestamp)
        if not check_device_id("remove_if_not_registered_since", device_id):
            return False
        return bool(await self._run("remove_stale", device_id, repr(at)))

    async def prune(self, *, seen_before: float, limit: int = 1000) -> int:
        """Remove up to ``limit`` devices last seen before ``seen_before``."""
        at = check_time("prune", "seen_before", seen_before)
        check_prune_limit(limit)
        return int(await self._run("prune", repr(at), limit))
