"""The public conformance suite of :class:`~eventpatterns.push.DeviceRegistry`."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from ..errors import ArgumentTypeError, ConfigurationError, InvalidDevice, LimitExceeded
from ..push import DEFAULT_MAX_DEVICES, Device, DeviceRegistry, Platform, Registration, device_id
from ._suite_base import SuiteBase, close

__all__ = ["DeviceRegistrySuite"]

#: A valid subscription's keys (RFC 8291 section 5, the user agent's).
P256DH = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
AUTH = "BTBZMqHH6r4Tts7J_aSIgg"
#: Another valid pair, for a subscription whose keys changed.
P256DH_2 = "BNtO3BpnoS52m-6RohMMFFgue0xLHE8ZUpiQe4_81CQ53gPiSapXwlf6RDgiD7omw97NkmUA3GXZmlBWIIPcT9I"
AUTH_2 = "8eDyX_uCN0XRhSbY5hs7Hg"
T0 = 1_700_000_000.0


def fcm(token: str = "fcm-token:APA91b", **kw: Any) -> Registration:  # noqa: S107
    """An FCM registration."""
    return Registration(Platform.FCM, token, **kw)


def webpush(endpoint: str = "https://push.example.net/send/abc", **kw: Any) -> Registration:
    """A Web Push registration with valid keys."""
    kw.setdefault("p256dh", P256DH)
    kw.setdefault("auth", AUTH)
    return Registration(Platform.WEBPUSH, endpoint, **kw)


def apns(token: str = "a0" * 32, **kw: Any) -> Registration:
    """An APNs registration."""
    return Registration(Platform.APNS, token, **kw)


class DeviceRegistrySuite(SuiteBase):
    """Subclass once per registry and implement :meth:`make_registry`.

    Example::

        class TestMyRegistry(DeviceRegistrySuite):
            async def make_registry(self, *, max_devices):
                return MyDeviceRegistry(max_devices=max_devices)
    """

    async def make_registry(self, *, max_devices: int = DEFAULT_MAX_DEVICES) -> DeviceRegistry:
        """Return a fresh, empty registry allowing ``max_devices`` devices per user."""
        raise NotImplementedError("subclasses return their registry here")

    @pytest.fixture
    async def registry(self) -> AsyncIterator[DeviceRegistry]:
        registry = await self.make_registry()
        yield registry
        await close(registry)

    @pytest.fixture
    async def small(self) -> AsyncIterator[DeviceRegistry]:
        """A registry allowing 3 devices per user."""
        registry = await self.make_registry(max_devices=3)
        yield registry
        await close(registry)

    # -- register and read -----------------------------------------------------------------

    async def test_a_registered_device_reads_back_equal(self, registry: DeviceRegistry) -> None:
        device = await registry.register("alice", fcm(topics={"orders"}), now=T0)
        assert device.id == device_id("fcm", "fcm-token:APA91b")
        assert (device.user, device.platform, device.token) == ("alice", Platform.FCM, fcm().token)
        assert (device.created_at, device.registered_at, device.last_seen) == (T0, T0, T0)
        assert device.topics == frozenset({"orders"})
        assert await registry.get(device.id) == device
        assert await registry.devices("alice") == [device]
        assert await registry.devices("bob") == []
        assert await registry.get(device_id("fcm", "never")) is None

    async def test_every_field_round_trips(self, registry: DeviceRegistry) -> None:
        browser = webpush(
            locale="fr-CA", time_zone="America/Toronto", topics={"a", "b:c"}, expires_at=T0 + 9
        )
        phone = apns(
            "B1" * 32, apns_topic="com.example.app", apns_environment="sandbox",
            locale="ja", time_zone="Asia/Tokyo", topics={"news"},
        )  # fmt: skip
        stamp = T0 + 0.123456789
        registered = [
            await registry.register("ünï", browser, now=stamp),
            await registry.register("ünï", phone, now=stamp + 1),
            await registry.register("ünï", fcm(), now=stamp + 2),
        ]
        for device in registered:
            assert await registry.get(device.id) == device
        assert await registry.devices("ünï") == registered
        web, ios, _ = registered
        assert (web.p256dh, web.auth, web.expires_at) == (P256DH, AUTH, T0 + 9)
        assert web.zone is not None
        assert web.zone.key == "America/Toronto"
        assert (ios.token, ios.apns_topic, ios.apns_environment) == (
            "b1" * 32,
            "com.example.app",
            "sandbox",
        )
        assert ios.created_at == stamp + 1

    async def test_registering_again_updates_the_same_device(
        self, registry: DeviceRegistry
    ) -> None:
        first = await registry.register("alice", webpush(topics={"a"}), now=T0)
        again = webpush(p256dh=P256DH_2, auth=AUTH_2, topics={"b"}, locale="de")
        second = await registry.register("alice", again, now=T0 + 60)
        assert second.id == first.id
        assert (second.created_at, second.registered_at, second.last_seen) == (
            T0,
            T0 + 60,
            T0 + 60,
        )
        assert (second.p256dh, second.auth, second.topics, second.locale) == (
            P256DH_2,
            AUTH_2,
            frozenset({"b"}),
            "de",
        )
        assert await registry.devices("alice") == [second]
        assert await registry.get(first.id) == second

    async def test_times_never_move_back(self, registry: DeviceRegistry) -> None:
        await registry.register("alice", fcm(), now=T0 + 100)
        device = await registry.register("alice", fcm(locale="it"), now=T0)
        assert (device.registered_at, device.last_seen, device.locale) == (T0 + 100, T0 + 100, "it")
        assert await registry.get(device.id) == device

    async def test_an_apns_token_is_the_same_device_in_any_case(
        self, registry: DeviceRegistry
    ) -> None:
        lower = await registry.register("alice", apns("ab" * 32), now=T0)
        upper = await registry.register("alice", apns("AB" * 32), now=T0 + 1)
        assert upper.id == lower.id
        assert len(await registry.devices("alice")) == 1

    async def test_a_token_moves_to_its_new_user(self, registry: DeviceRegistry) -> None:
        old = await registry.register("alice", fcm(topics={"a"}), now=T0)
        await registry.register("alice", fcm("other"), now=T0)
        moved = await registry.register("bob", fcm(), now=T0 + 5)
        assert moved.id == old.id
        assert moved.user == "bob"
        assert moved.created_at == T0 + 5  # new to bob
        assert [d.token for d in await registry.devices("alice")] == ["other"]
        assert await registry.devices("bob") == [moved]
        assert await registry.get(old.id) == moved
        assert not await registry.unregister("alice", old.id)  # alice no longer holds it
        assert await registry.get(old.id) == moved

    # -- owner-scoped changes ----------------------------------------------------------------

    async def test_unregister_is_owner_scoped(self, registry: DeviceRegistry) -> None:
        device = await registry.register("alice", fcm(), now=T0)
        assert not await registry.unregister("mallory", device.id)
        assert await registry.get(device.id) == device
        assert await registry.unregister("alice", device.id)
        assert await registry.get(device.id) is None
        assert await registry.devices("alice") == []
        assert not await registry.unregister("alice", device.id)
        assert not await registry.unregister("alice", "not-an-id")

    async def test_unregister_all_removes_only_that_users_devices(
        self, registry: DeviceRegistry
    ) -> None:
        for token in ("t1", "t2", "t3"):
            await registry.register("alice", fcm(token), now=T0)
        kept = await registry.register("bob", fcm("t4"), now=T0)
        assert await registry.unregister_all("alice") == 3
        assert await registry.devices("alice") == []
        assert await registry.get(device_id("fcm", "t1")) is None
        assert await registry.devices("bob") == [kept]
        assert await registry.unregister_all("alice") == 0

    async def test_devices_by_topic_oldest_first(self, registry: DeviceRegistry) -> None:
        c = await registry.register("alice", fcm("c", topics={"news", "deals"}), now=T0 + 2)
        a = await registry.register("alice", fcm("a", topics={"news"}), now=T0)
        await registry.register("alice", fcm("b"), now=T0 + 1)
        assert await registry.devices("alice", topic="news") == [a, c]
        assert await registry.devices("alice", topic="deals") == [c]
        assert await registry.devices("alice", topic="none") == []
        assert [d.token for d in await registry.devices("alice")] == ["a", "b", "c"]

    async def test_set_topics_is_owner_scoped(self, registry: DeviceRegistry) -> None:
        device = await registry.register("alice", fcm(topics={"a"}), now=T0)
        assert await registry.set_topics("mallory", device.id, ["x"]) is None
        changed = await registry.set_topics("alice", device.id, ["b", "c"])
        assert changed is not None
        assert changed.topics == frozenset({"b", "c"})
        assert await registry.get(device.id) == changed
        assert await registry.devices("alice", topic="a") == []
        with pytest.raises(InvalidDevice, match="topic") as info:
            await registry.set_topics("alice", device.id, ["bad topic"])
        assert info.value.field == "topics"
        with pytest.raises(ArgumentTypeError):
            await registry.set_topics("alice", device.id, "b")
        assert await registry.get(device.id) == changed
        assert await registry.set_topics("alice", device_id("fcm", "gone"), []) is None
        assert await registry.set_topics("alice", "malformed", []) is None

    async def test_touch_moves_last_seen_forward_only(self, registry: DeviceRegistry) -> None:
        device = await registry.register("alice", fcm(), now=T0)
        assert await registry.touch(device.id, T0 + 30)
        assert await registry.touch(device.id, T0 + 10)
        seen = await registry.get(device.id)
        assert seen is not None
        assert seen.last_seen == T0 + 30
        assert seen.registered_at == T0
        assert not await registry.touch(device_id("fcm", "gone"), T0)
        assert not await registry.touch("malformed", T0)

    # -- dead tokens and clean-up ----------------------------------------------------------

    async def test_a_410_removes_a_device_not_registered_since(
        self, registry: DeviceRegistry
    ) -> None:
        device = await registry.register("alice", apns(), now=T0)
        assert await registry.remove_if_not_registered_since(device.id, T0 + 50)
        assert await registry.get(device.id) is None
        assert await registry.devices("alice") == []
        assert not await registry.remove_if_not_registered_since(device.id, T0 + 50)

    async def test_a_410_keeps_a_device_registered_again_after_it(
        self, registry: DeviceRegistry
    ) -> None:
        await registry.register("alice", apns(), now=T0)
        device = await registry.register("alice", apns(), now=T0 + 200)
        assert not await registry.remove_if_not_registered_since(device.id, T0 + 150)
        assert await registry.get(device.id) == device
        assert await registry.remove_if_not_registered_since(device.id, T0 + 200)  # at: removed
        assert await registry.get(device.id) is None

    async def test_a_410_for_a_moved_token_spares_its_new_owner(
        self, registry: DeviceRegistry
    ) -> None:
        await registry.register("alice", apns(), now=T0)
        moved = await registry.register("bob", apns(), now=T0 + 100)
        assert not await registry.remove_if_not_registered_since(moved.id, T0 + 50)
        assert await registry.devices("bob") == [moved]
        assert not await registry.remove_if_not_registered_since("malformed", T0)

    async def test_prune_removes_devices_not_seen_since(self, registry: DeviceRegistry) -> None:
        old = await registry.register("alice", fcm("old"), now=T0)
        older = await registry.register("bob", fcm("older"), now=T0 - 10)
        fresh = await registry.register("alice", fcm("fresh"), now=T0)
        await registry.touch(fresh.id, T0 + 100)
        assert await registry.prune(seen_before=T0 + 50, limit=1) == 1
        assert await registry.get(older.id) is None  # the oldest goes first
        assert await registry.devices("bob") == []
        assert await registry.prune(seen_before=T0 + 50) == 1
        assert await registry.get(old.id) is None
        assert [d.token for d in await registry.devices("alice")] == ["fresh"]
        assert await registry.prune(seen_before=T0 + 50) == 0
        with pytest.raises(ConfigurationError, match="limit"):
            await registry.prune(seen_before=T0, limit=0)

    # -- limits --------------------------------------------------------------------------

    async def test_the_device_limit_refuses_and_changes_nothing(
        self, small: DeviceRegistry
    ) -> None:
        assert small.max_devices == 3
        kept = [await small.register("alice", fcm(f"t{i}"), now=T0 + i) for i in range(3)]
        with pytest.raises(LimitExceeded, match="3 devices") as info:
            await small.register("alice", fcm("t3"), now=T0)
        assert (info.value.limit, info.value.value) == ("max_devices", 3)
        assert await small.get(device_id("fcm", "t3")) is None
        again = await small.register("alice", fcm("t0", topics={"x"}), now=T0 + 9)
        assert again.topics == frozenset({"x"})  # re-registering a held device is fine
        assert [d.id for d in await small.devices("alice")] == [d.id for d in kept]

    async def test_a_move_into_a_full_user_is_refused_and_stays(
        self, small: DeviceRegistry
    ) -> None:
        for i in range(3):
            await small.register("bob", fcm(f"b{i}"), now=T0)
        held = await small.register("alice", fcm("shared"), now=T0)
        with pytest.raises(LimitExceeded):
            await small.register("bob", fcm("shared"), now=T0 + 1)
        assert await small.get(held.id) == held
        assert await small.devices("alice") == [held]
        assert len(await small.devices("bob")) == 3

    async def test_a_token_that_moves_away_frees_its_place(self, small: DeviceRegistry) -> None:
        for i in range(3):
            await small.register("alice", fcm(f"t{i}"), now=T0)
        await small.register("bob", fcm("t0"), now=T0 + 1)
        added = await small.register("alice", fcm("t3"), now=T0 + 2)
        assert sorted(d.token for d in await small.devices("alice")) == ["t1", "t2", "t3"]
        assert added.created_at == T0 + 2
        assert await small.unregister("bob", fcm("t0").id)
        assert await small.unregister("alice", added.id)
        await small.register("alice", fcm("t4"), now=T0 + 3)  # freed by the unregister
        assert len(await small.devices("alice")) == 3

    # -- concurrency ---------------------------------------------------------------------

    async def test_concurrent_registrations_of_one_token_leave_one_owner(
        self, registry: DeviceRegistry
    ) -> None:
        users = ("alice", "bob")
        results: list[Device] = []

        async def register(n: int) -> None:
            results.append(await registry.register(users[n % 2], apns(), now=T0 + n))

        async with anyio.create_task_group() as tg:
            for n in range(100):
                tg.start_soon(register, n)
        assert len(results) == 100
        listed = [d for user in users for d in await registry.devices(user)]
        assert len(listed) == 1
        stored = await registry.get(listed[0].id)
        assert stored == listed[0]
        assert stored.registered_at == T0 + 99  # the latest registration time wins

    async def test_concurrent_registrations_respect_the_limit(self, small: DeviceRegistry) -> None:
        outcomes: list[str] = []

        async def register(n: int) -> None:
            try:
                await small.register("alice", fcm(f"t{n}"), now=T0)
                outcomes.append("ok")
            except LimitExceeded:
                outcomes.append("limit")

        async with anyio.create_task_group() as tg:
            for n in range(40):
                tg.start_soon(register, n)
        assert sorted(outcomes).count("ok") == 3
        assert len(await small.devices("alice")) == 3

    async def test_a_410_racing_a_registration_loses_nothing(
        self, registry: DeviceRegistry
    ) -> None:
        tokens = [f"{n:02x}" * 32 for n in range(30)]
        for token in tokens:
            await registry.register("alice", apns(token), now=T0)

        async def reregister(token: str) -> None:
            await registry.register("alice", apns(token), now=T0 + 100)

        async def prune(token: str) -> None:
            await registry.remove_if_not_registered_since(device_id("apns", token), T0 + 50)

        async with anyio.create_task_group() as tg:
            for token in tokens:
                tg.start_soon(reregister, token)
                tg.start_soon(prune, token)
        for token in tokens:
            device = await registry.get(device_id("apns", token))
            # Either the removal came first and the registration made it anew, or the
            # registration came first and the removal kept it: never gone.
            assert device is not None
            assert device.registered_at == T0 + 100

    # -- bad arguments -------------------------------------------------------------------

    @pytest.mark.parametrize("user", ["", "x" * 257, "a\nb"])
    async def test_a_bad_user_is_refused(self, registry: DeviceRegistry, user: str) -> None:
        with pytest.raises(InvalidDevice) as info:
            await registry.register(user, fcm(), now=T0)
        assert info.value.field == "user"
        with pytest.raises(InvalidDevice):
            await registry.devices(user)
        assert await registry.get(fcm().id) is None

    async def test_arguments_of_the_wrong_type_are_refused(self, registry: DeviceRegistry) -> None:
        bad: Any = object()
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: registry.register(bad, fcm(), now=T0),
            lambda: registry.register("alice", bad, now=T0),
            lambda: registry.register("alice", fcm(), now=bad),
            lambda: registry.register("alice", fcm(), now=True),
            lambda: registry.get(bad),
            lambda: registry.devices("alice", topic=bad),
            lambda: registry.unregister("alice", bad),
            lambda: registry.touch(bad, T0),
            lambda: registry.remove_if_not_registered_since("0" * 32, bad),
            lambda: registry.prune(seen_before=bad),
        ]
        for call in calls:
            with pytest.raises(ArgumentTypeError):
                await call()
        with pytest.raises(ConfigurationError, match="finite"):
            await registry.register("alice", fcm(), now=math.nan)
        with pytest.raises(InvalidDevice):
            await registry.devices("alice", topic="no spaces")
        assert await registry.devices("alice") == []
        assert await registry.get("../../etc") is None
