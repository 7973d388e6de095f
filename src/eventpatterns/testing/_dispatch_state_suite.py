"""The public conformance suites of the dispatcher's stores.

:class:`DispatchStateSuite` for :class:`~eventpatterns.push.DispatchState` (idempotency
keys claimed once, fatigue state updated atomically) and :class:`PushDeadLetterSuite`
for :class:`~eventpatterns.push.PushDeadLetters`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import anyio
import pytest

from ..errors import ConfigurationError
from ..push import (
    Bucket,
    Budget,
    DeadToken,
    Delivered,
    DispatchState,
    FatiguePolicy,
    Notification,
    PermanentFailure,
    PushDeadLetter,
    PushDeadLetters,
    Release,
    RetryLater,
    SendResult,
    UserFatigue,
    admit,
)
from ._suite_base import SuiteBase, close

__all__ = ["DispatchStateSuite", "PushDeadLetterSuite"]

T0 = 1_700_000_000.0
#: A notification using every field, to prove stores keep each.
FULL = Notification(
    title="Order shipped", body="Ça arrive 🚚", data={"order": "42", "notificationId": "n1"},
    topic="orders", urgency="high", collapse_key="order-42", ttl=600.5, idempotency_key="k-42",
)  # fmt: skip


def _bump(state: UserFatigue) -> Release:
    return Release(dataclasses.replace(state, folded=state.folded + 1), (), None)


class DispatchStateSuite(SuiteBase):
    """Subclass once per dispatch state and implement :meth:`make_state`.

    Example::

        class TestMyState(DispatchStateSuite):
            async def make_state(self, *, key_ttl):
                return MyDispatchState(key_ttl=key_ttl)
    """

    async def make_state(self, *, key_ttl: float = 3600.0) -> DispatchState:
        """Return a fresh, empty state remembering idempotency keys ``key_ttl`` seconds."""
        raise NotImplementedError("subclasses return their state here")

    @pytest.fixture
    async def state(self) -> AsyncIterator[DispatchState]:
        state = await self.make_state(key_ttl=60.0)
        yield state
        await close(state)

    async def test_it_is_a_dispatch_state(self, state: DispatchState) -> None:
        assert isinstance(state, DispatchState)

    async def test_a_key_is_claimed_once_then_names_its_holder(self, state: DispatchState) -> None:
        assert await state.claim("alice", "order-42", "n1", now=T0) is None
        assert await state.claim("alice", "order-42", "n2", now=T0 + 1) == "n1"
        assert await state.claim("bob", "order-42", "n3", now=T0 + 1) is None  # per user
        assert await state.claim("alice", "order-43", "n4", now=T0 + 1) is None
        # A user and key that concatenate alike are still different claims.
        assert await state.claim("ab", "c", "n5", now=T0) is None
        assert await state.claim("a", "bc", "n6", now=T0) is None

    async def test_a_key_is_claimable_again_after_its_ttl(self, state: DispatchState) -> None:
        assert await state.claim("alice", "k", "n1", now=T0) is None
        assert await state.claim("alice", "k", "n2", now=T0 + 59) == "n1"
        assert await state.claim("alice", "k", "n3", now=T0 + 60) is None
        assert await state.claim("alice", "k", "n4", now=T0 + 61) == "n3"

    async def test_concurrent_claims_have_one_winner(self, state: DispatchState) -> None:
        answers: dict[str, str | None] = {}

        async def claim(i: int) -> None:
            answers[f"n{i}"] = await state.claim("alice", "once", f"n{i}", now=T0)

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(claim, i)
        winners = [nid for nid, held in answers.items() if held is None]
        assert len(winners) == 1
        assert {held for held in answers.values() if held is not None} == set(winners)

    async def test_a_new_user_has_a_fresh_fatigue_state(self, state: DispatchState) -> None:
        assert await state.fatigue("nobody") == UserFatigue()

    async def test_an_update_is_stored_and_reads_back_equal(self, state: DispatchState) -> None:
        stored = UserFatigue(Bucket(2.5, T0), (FULL, Notification(title="b")), 3)
        got = await state.update_fatigue("alice", lambda s: Release(stored, (FULL,), T0 + 5))
        assert got == Release(stored, (FULL,), T0 + 5)
        assert await state.fatigue("alice") == stored
        assert await state.fatigue("bob") == UserFatigue()
        seen: list[UserFatigue] = []

        def empty(s: UserFatigue) -> Release:
            seen.append(s)
            return Release(UserFatigue(), (), None)

        await state.update_fatigue("alice", empty)
        assert seen[-1] == stored  # the change sees what was stored
        assert await state.fatigue("alice") == UserFatigue()

    async def test_concurrent_updates_lose_none(self, state: DispatchState) -> None:
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(state.update_fatigue, "alice", _bump)
        assert (await state.fatigue("alice")).folded == 20

    async def test_concurrent_admits_spend_the_budget_once(self, state: DispatchState) -> None:
        policy = FatiguePolicy(user_budget=Budget(3, 3600.0))
        delivered: list[Notification] = []

        async def notify(i: int) -> None:
            n = Notification(title=f"n{i}")
            decided = await state.update_fatigue("alice", lambda s: admit(policy, s, n, T0))
            delivered.extend(decided.deliver)

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(notify, i)
        assert len(delivered) == 3
        left = await state.fatigue("alice")
        assert len(left.held) == 5
        assert {n.title for n in (*delivered, *left.held)} == {f"n{i}" for i in range(8)}


def _letter(store: PushDeadLetters, user: str, result: SendResult | None = None) -> PushDeadLetter:
    return PushDeadLetter(
        store.new_id(), user, "dev-1", "webpush", FULL, "n1", "gone: 410", 2, T0 + 0.25, result
    )


class PushDeadLetterSuite(SuiteBase):
    """Subclass once per push dead letter store and implement :meth:`make_dead_letters`.

    Example::

        class TestMyLetters(PushDeadLetterSuite):
            async def make_dead_letters(self):
                return MyPushDeadLetters()
    """

    async def make_dead_letters(self) -> PushDeadLetters:
        """Return a fresh, empty dead letter store."""
        raise NotImplementedError("subclasses return their store here")

    @pytest.fixture
    async def letters(self) -> AsyncIterator[PushDeadLetters]:
        store = await self.make_dead_letters()
        yield store
        await close(store)

    async def test_it_is_a_dead_letter_store(self, letters: PushDeadLetters) -> None:
        assert isinstance(letters, PushDeadLetters)
        assert len({letters.new_id() for _ in range(100)}) == 100

    async def test_a_letter_reads_back_equal(self, letters: PushDeadLetters) -> None:
        results: list[SendResult | None] = [
            None,
            Delivered("webpush", "m-1"),
            RetryLater("fcm", "QUOTA_EXCEEDED", at=T0 + 30, status=429),
            DeadToken("apns", "Unregistered", timestamp=T0 - 5, status=410),
            PermanentFailure("webpush", "too large", status=413),
        ]
        made = [_letter(letters, "alice", result) for result in results]
        bare = PushDeadLetter(
            letters.new_id(), "bob", None, None, Notification(), "", "closed", 0, T0
        )
        for letter in (*made, bare):
            await letters.add(letter)
        for letter in (*made, bare):
            assert await letters.get(letter.id) == letter
        assert await letters.get("pdl-missing") is None

    async def test_letters_list_oldest_first_per_user_and_limited(
        self, letters: PushDeadLetters
    ) -> None:
        made = [_letter(letters, user) for user in ("alice", "bob", "alice", "carol", "alice")]
        for letter in made:
            await letters.add(letter)
        assert await letters.list() == made
        assert await letters.list(user="alice") == [made[0], made[2], made[4]]
        assert await letters.list(user="alice", limit=2) == [made[0], made[2]]
        assert await letters.list(limit=1) == [made[0]]
        assert await letters.list(user="dave") == []
        for bad in (0, -1, True, 1.5):
            with pytest.raises(ConfigurationError, match="limit"):
                await letters.list(limit=bad)  # type: ignore[arg-type]

    async def test_discard_removes_and_counts_what_existed(self, letters: PushDeadLetters) -> None:
        made = [_letter(letters, user) for user in ("alice", "bob", "alice")]
        for letter in made:
            await letters.add(letter)
        assert await letters.discard([made[0].id, "pdl-missing", made[1].id]) == 2
        assert await letters.discard([made[0].id]) == 0
        assert await letters.discard([]) == 0
        assert await letters.list() == [made[2]]
        assert await letters.list(user="alice") == [made[2]]
        assert await letters.list(user="bob") == []
        assert await letters.get(made[0].id) is None
