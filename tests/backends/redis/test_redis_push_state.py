"""The Redis dispatch stores run the public suites against the real server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis.asyncio
from redis_helpers import REDIS_URL, delete_prefix, new_prefix

from eventpatterns.backends.redis import RedisDispatchState, RedisPushDeadLetters, _push_state
from eventpatterns.errors import BackendUnavailable, BusClosed, ConfigurationError
from eventpatterns.push import (
    DispatchState,
    Notification,
    PushDeadLetter,
    PushDeadLetters,
    Release,
    UserFatigue,
)
from eventpatterns.testing import DispatchStateSuite, PushDeadLetterSuite

pytestmark = [pytest.mark.redis, pytest.mark.usefixtures("redis_server")]


class _Prefixes:
    @pytest.fixture(autouse=True)
    def _prefixes(self) -> Iterator[None]:
        self.prefixes: list[str] = []
        yield
        for prefix in self.prefixes:
            delete_prefix(prefix)

    def new(self) -> str:
        prefix = new_prefix("pst")
        self.prefixes.append(prefix)
        return prefix


class TestRedisDispatchState(_Prefixes, DispatchStateSuite):
    anyio_backends = ("asyncio",)  # redis-py's asyncio client

    async def make_state(self, *, key_ttl: float = 3600.0) -> DispatchState:
        return RedisDispatchState(REDIS_URL, prefix=self.new(), key_ttl=key_ttl)


class TestRedisPushDeadLetters(_Prefixes, PushDeadLetterSuite):
    anyio_backends = ("asyncio",)

    async def make_dead_letters(self) -> PushDeadLetters:
        return RedisPushDeadLetters(REDIS_URL, prefix=self.new())


@pytest.mark.anyio
async def test_the_keys_expire_and_empty_state_is_deleted(
    prefix: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisDispatchState(REDIS_URL, prefix=prefix, key_ttl=90) as state:
        assert await state.claim("alice", "k", "n1", now=10.0) is None
        key = "{" + prefix + "}:pushstate:k:5:alicek"
        assert await raw.get(key) == b"100.0 n1"
        assert 89_000 < await raw.pttl(key) <= 90_000  # Redis forgets it too
        held = UserFatigue(None, (Notification(title="t"),), 0)
        await state.update_fatigue("alice", lambda s: Release(held, (), None))
        assert await raw.exists("{" + prefix + "}:pushstate:f:alice") == 1
        await state.update_fatigue("alice", lambda s: Release(UserFatigue(), (), None))
        assert await raw.exists("{" + prefix + "}:pushstate:f:alice") == 0


@pytest.mark.anyio
async def test_a_corrupt_or_contended_state_raises_backend_unavailable(
    prefix: str, raw: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with RedisDispatchState(REDIS_URL, prefix=prefix) as state:
        await raw.set("{" + prefix + "}:pushstate:f:alice", b"not json")
        with pytest.raises(BackendUnavailable, match="fatigue state is malformed"):
            await state.fatigue("alice")
        monkeypatch.setattr(_push_state, "CAS_ROUNDS", 3)
        calls = 0

        def meddle(s: UserFatigue) -> Release:  # another process writes between read and set
            nonlocal calls
            calls += 1
            import redis as sync_redis

            sync_redis.Redis.from_url(REDIS_URL).set(
                "{" + prefix + "}:pushstate:f:bob", f'{{"b":null,"h":[],"f":{calls}}}'
            )
            return Release(UserFatigue(folded=99), (), None)

        with pytest.raises(BackendUnavailable, match="changed under 3 updates"):
            await state.update_fatigue("bob", meddle)
        assert calls == 3
        assert (await state.fatigue("bob")).folded == 3  # the meddler's, not ours


@pytest.mark.anyio
async def test_settings_are_checked_and_closed_stores_refuse(prefix: str) -> None:
    for bad in (0, -1.0, float("nan"), True, "1"):
        with pytest.raises(ConfigurationError, match="key_ttl"):
            RedisDispatchState(REDIS_URL, prefix=prefix, key_ttl=bad)  # type: ignore[arg-type]
    for bad_prefix in ("", "a{b", 5):
        with pytest.raises(ConfigurationError, match="prefix"):
            RedisPushDeadLetters(REDIS_URL, prefix=bad_prefix)  # type: ignore[arg-type]
    letters = RedisPushDeadLetters(REDIS_URL, prefix=prefix)
    await letters.aclose()
    letter = PushDeadLetter(letters.new_id(), "a", None, None, Notification(), "", "r", 0, 1.0)
    with pytest.raises(BusClosed):
        await letters.add(letter)
    with pytest.raises(BusClosed):
        await letters.get(letter.id)


@pytest.mark.anyio
async def test_an_unreachable_redis_is_backend_unavailable() -> None:
    url = "redis://127.0.0.1:1/0?socket_connect_timeout=0.5"
    async with RedisDispatchState(url) as state, RedisPushDeadLetters(url) as letters:
        with pytest.raises(BackendUnavailable):
            await state.claim("a", "k", "n", now=1.0)
        with pytest.raises(BackendUnavailable):
            await letters.list()
