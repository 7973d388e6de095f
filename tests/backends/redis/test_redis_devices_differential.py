"""RedisDeviceRegistry does what the memory registry (the executable specification) does.

Hypothesis draws sequences of operations on a few users and tokens (moves, limits,
removals by timestamp, pruning); both registries run them and must answer the same,
step by step, and end in the same state. Two separately connected Redis registries
racing on one token end with one owner.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_helpers import REDIS_URL, delete_prefix, new_prefix

from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.backends.redis import RedisDeviceRegistry
from eventpatterns.errors import LimitExceeded
from eventpatterns.push import DeviceRegistry, Registration, device_id

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_server")]

USERS = ("alice", "bob", "carol")
TOKENS = tuple(f"tok{i}" for i in range(3))
users = st.sampled_from(USERS)
tokens = st.sampled_from(TOKENS)
times = st.integers(0, 5).map(float)  # few values: equal times are where rules bite
topic_sets = st.frozensets(st.sampled_from(["a", "b", "c"]))
operations = st.lists(
    st.one_of(
        st.tuples(st.just("register"), users, tokens, topic_sets, times),
        st.tuples(st.just("unregister"), users, tokens),
        st.tuples(st.just("unregister_all"), users),
        st.tuples(st.just("set_topics"), users, tokens, topic_sets),
        st.tuples(st.just("touch"), tokens, times),
        st.tuples(st.just("remove_stale"), tokens, times),
        st.tuples(st.just("prune"), times, st.integers(1, 3)),
        st.tuples(st.just("devices"), users, st.sampled_from([None, "a", "b"])),
    ),
    min_size=4,
    max_size=30,
)


async def apply(registry: DeviceRegistry, op: tuple[Any, ...]) -> Any:
    name, *args = op
    try:
        if name == "register":
            user, token, topics, now = args
            return await registry.register(user, Registration("fcm", token, topics=topics), now=now)
        if name == "unregister":
            return await registry.unregister(args[0], device_id("fcm", args[1]))
        if name == "unregister_all":
            return await registry.unregister_all(args[0])
        if name == "set_topics":
            return await registry.set_topics(args[0], device_id("fcm", args[1]), args[2])
        if name == "touch":
            return await registry.touch(device_id("fcm", args[0]), args[1])
        if name == "remove_stale":
            return await registry.remove_if_not_registered_since(device_id("fcm", args[0]), args[1])
        if name == "prune":
            return await registry.prune(seen_before=args[0], limit=args[1])
        return await registry.devices(args[0], topic=args[1])
    except LimitExceeded:
        return "limit"


async def state(registry: DeviceRegistry) -> Any:
    listed = {user: await registry.devices(user) for user in USERS}
    stored = {token: await registry.get(device_id("fcm", token)) for token in TOKENS}
    return listed, stored


async def compare(ops: list[tuple[Any, ...]]) -> None:
    prefix = new_prefix("devdiff")
    memory = MemoryDeviceRegistry(max_devices=2)
    try:
        async with RedisDeviceRegistry(REDIS_URL, prefix=prefix, max_devices=2) as redis:
            for step, op in enumerate(ops):
                expected = await apply(memory, op)
                assert await apply(redis, op) == expected, f"step {step}: {op}"
            assert await state(redis) == await state(memory)
    finally:
        delete_prefix(prefix)
    listed, stored = await state(memory)
    # The invariants the specification itself keeps: one owner per token, lists agree.
    owners = [d.id for devices in listed.values() for d in devices]
    assert len(owners) == len(set(owners))
    assert {d.id for d in stored.values() if d is not None} == set(owners)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(operations)
def test_redis_answers_as_the_memory_registry(ops: list[tuple[Any, ...]]) -> None:
    asyncio.run(compare(ops))


@pytest.mark.anyio
async def test_two_connected_registries_racing_on_a_token_leave_one_owner(prefix: str) -> None:
    token = Registration("apns", "c0" * 32)
    async with (
        RedisDeviceRegistry(REDIS_URL, prefix=prefix) as one,
        RedisDeviceRegistry(REDIS_URL, prefix=prefix) as two,
    ):
        await asyncio.gather(
            *(
                (one if n % 2 else two).register("alice" if n % 2 else "bob", token, now=float(n))
                for n in range(100)
            )
        )
        alice, bob = await one.devices("alice"), await two.devices("bob")
        assert len(alice) + len(bob) == 1
        (device,) = alice + bob
        assert await two.get(token.id) == device
