"""The in-memory device registry: dicts in one process, for development and tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ...push._devices import Device, Registration, check_topics
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
from ._url import Closeable, parse_memory_url

__all__ = ["MemoryDeviceRegistry"]


class MemoryDeviceRegistry(Closeable):
    """A :class:`~eventpatterns.push.DeviceRegistry` in this process's memory.

    Every method runs without awaiting anything in between, so each is atomic within
    the event loop. Nothing survives the process.

    Args:
        max_devices: Most devices one user may hold (1 to 10,000).

    Raises:
        ConfigurationError: ``max_devices`` out of range.

    Example:
        ```python
        import anyio
        from eventpatterns.backends.memory import MemoryDeviceRegistry
        from eventpatterns.push import Registration

        async def main() -> None:
            registry = MemoryDeviceRegistry(max_devices=10)
            phone = Registration("fcm", "token-1", topics={"orders"})
            device = await registry.register("alice", phone, now=1_700_000_000)
            assert await registry.devices("alice", topic="orders") == [device]

        anyio.run(main)
        ```
    """

    def __init__(self, *, max_devices: int = DEFAULT_MAX_DEVICES) -> None:
        self.max_devices = check_max_devices(max_devices)
        self._devices: dict[str, Device] = {}
        self._by_user: dict[str, set[str]] = {}

    @classmethod
    def from_url(cls, url: str, **options: Any) -> MemoryDeviceRegistry:
        """Build from ``memory://?max_devices=20``, as the Redis and AWS stores from theirs.

        ``max_devices`` is read; the other memory stores' options are skipped, so one URL
        serves every store. Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not a ``memory://`` URL, or a bad or unknown option.
        """
        return cls(**parse_memory_url(url, "MemoryDeviceRegistry", options))

    def _drop(self, device: Device) -> None:
        del self._devices[device.id]
        owned = self._by_user[device.user]
        owned.discard(device.id)
        if not owned:
            del self._by_user[device.user]

    def _owned(self, function: str, user: object, device_id: object) -> Device | None:
        check_user(function, user)
        if not check_device_id(function, device_id):
            return None
        device = self._devices.get(str(device_id))
        return device if device is not None and device.user == user else None

    async def register(self, user: str, registration: Registration, *, now: float) -> Device:
        """Register the device for ``user``; see :meth:`DeviceRegistry.register`."""
        check_user("register", user)
        check_registration("register", registration)
        at = check_time("register", "now", now)
        old = self._devices.get(registration.id)
        owned = self._by_user.get(user, set())
        if (old is None or old.user != user) and len(owned) >= self.max_devices:
            raise too_many(user, self.max_devices)
        created = old.created_at if old is not None and old.user == user else at
        registered, last = at, at
        if old is not None:  # times never move back (processes' clocks differ a little)
            registered, last = max(old.registered_at, at), max(old.last_seen, at)
            self._drop(old)
        device = Device.of(
            user, registration, created_at=created, registered_at=registered, last_seen=last
        )
        self._devices[device.id] = device
        self._by_user.setdefault(user, set()).add(device.id)
        return device

    async def get(self, device_id: str) -> Device | None:
        """Return the device, or ``None``."""
        if not check_device_id("get", device_id):
            return None
        return self._devices.get(device_id)

    async def devices(self, user: str, *, topic: str | None = None) -> list[Device]:
        """Return the user's devices, oldest first; see :meth:`DeviceRegistry.devices`."""
        check_user("devices", user)
        wanted = check_topic("devices", topic)
        found = [self._devices[i] for i in self._by_user.get(user, ())]
        return sorted(
            (d for d in found if wanted is None or wanted in d.topics),
            key=lambda d: (d.created_at, d.id),
        )

    async def unregister(self, user: str, device_id: str) -> bool:
        """Remove the user's device; ``False`` if they hold no such device."""
        device = self._owned("unregister", user, device_id)
        if device is None:
            return False
        self._drop(device)
        return True

    async def unregister_all(self, user: str) -> int:
        """Remove every device of the user; return how many."""
        check_user("unregister_all", user)
        ids = self._by_user.pop(user, set())
        for device_id in ids:
            del self._devices[device_id]
        return len(ids)

    async def set_topics(self, user: str, device_id: str, topics: Iterable[str]) -> Device | None:
        """Replace a device's consented topics; ``None`` if the user holds no such device."""
        device = self._owned("set_topics", user, device_id)
        checked = check_topics(topics)
        if device is None:
            return None
        device = dataclasses.replace(device, topics=checked)
        self._devices[device.id] = device
        return device

    async def touch(self, device_id: str, now: float) -> bool:
        """Record that the device was seen at ``now``; ``False`` if it does not exist."""
        at = check_time("touch", "now", now)
        if not check_device_id("touch", device_id) or device_id not in self._devices:
            return False
        device = self._devices[device_id]
        if at > device.last_seen:
            self._devices[device_id] = dataclasses.replace(device, last_seen=at)
        return True

    async def remove_if_not_registered_since(self, device_id: str, timestamp: float) -> bool:
        """Remove the device unless registered after ``timestamp``; tell if removed."""
        at = check_time("remove_if_not_registered_since", "timestamp", timestamp)
        if not check_device_id("remove_if_not_registered_since", device_id):
            return False
        device = self._devices.get(device_id)
        if device is None or device.registered_at > at:
            return False
        self._drop(device)
        return True

    async def prune(self, *, seen_before: float, limit: int = 1000) -> int:
        """Remove up to ``limit`` devices last seen before ``seen_before``."""
        at = check_time("prune", "seen_before", seen_before)
        check_prune_limit(limit)
        stale = sorted((d.last_seen, d.id) for d in self._devices.values() if d.last_seen < at)
        for _, device_id in stale[:limit]:
            self._drop(self._devices[device_id])
        return min(len(stale), limit)
