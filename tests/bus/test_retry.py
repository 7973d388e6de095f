"""The sans-I/O retry decision: backoff, ``decide`` and the delivery state machine."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventpatterns.bus import (
    Ack,
    Backoff,
    DeliveryAttempt,
    DeliveryState,
    GiveUp,
    Retry,
    RetryAfter,
    decide,
)
from eventpatterns.errors import ConfigurationError, InvalidState

backoffs = st.builds(
    Backoff,
    initial=st.floats(0, 100),
    multiplier=st.floats(1, 10),
    maximum=st.floats(0, 1000),
    jitter=st.floats(0, 1),
)
policies = st.builds(Retry, max_attempts=st.integers(1, 8), backoff=backoffs)


def test_backoff_grows_caps_and_jitters() -> None:
    plain = Backoff(initial=1, multiplier=3, maximum=20, jitter=0)
    assert [plain.delay(n) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 20.0]
    jittered = Backoff(initial=8, multiplier=2, jitter=0.25)
    rng = random.Random(7)
    delays = [jittered.delay(2, rng) for _ in range(200)]
    assert all(12.0 <= d <= 16.0 for d in delays)
    assert len(set(delays)) > 100  # really random, not a constant
    for bad in ({"multiplier": 0.5}, {"jitter": 1.5}, {"initial": -1}):
        with pytest.raises(ConfigurationError):
            Backoff(**bad)


@given(backoffs.map(lambda b: Backoff(b.initial, b.multiplier, b.maximum, 0)))
def test_delays_without_jitter_never_decrease_and_stay_under_the_maximum(
    backoff: Backoff,
) -> None:
    delays = [backoff.delay(n) for n in range(1, 40)]
    assert delays == sorted(delays)
    assert all(0 <= d <= backoff.maximum for d in delays)
    assert backoff.delay(10_000) == min(backoff.maximum, backoff.delay(10_000))


@given(backoffs, st.integers(1, 50), st.randoms(use_true_random=False))
def test_jitter_only_shortens_within_its_fraction(
    backoff: Backoff, attempt: int, rng: random.Random
) -> None:
    base = Backoff(backoff.initial, backoff.multiplier, backoff.maximum, 0).delay(attempt)
    delay = backoff.delay(attempt, rng)
    assert base * (1 - backoff.jitter) - 1e-9 <= delay <= base + 1e-9


@given(policies, st.integers(1, 10))
def test_decide(policy: Retry, attempt: int) -> None:
    assert decide(attempt, None, policy) == Ack()
    decision = decide(attempt, "E: x", policy, rng=random.Random(1))
    if attempt >= policy.max_attempts:
        assert decision == GiveUp("E: x")
    else:
        assert isinstance(decision, RetryAfter)
        assert decision.error == "E: x"
        assert decision.delay == policy.backoff.delay(attempt, random.Random(1))


@given(policies, st.lists(st.sampled_from(["fail", "crash", "succeed"]), max_size=30))
def test_a_delivery_is_never_run_more_than_max_attempts(policy: Retry, outcomes: list[str]) -> None:
    """Drive one event through its whole life: failures, crashes (no report), success."""
    machine = DeliveryAttempt(1, policy, rng=random.Random(0))
    runs = 0
    for outcome in outcomes:
        if machine.start() is not None:
            break  # exhausted: dead-lettered without running
        runs += 1
        if outcome == "succeed":
            assert machine.succeed() == Ack()
            break
        if outcome == "crash":
            machine.redeliver()  # the visibility timeout ran out
            continue
        decision = machine.fail("E: boom")
        if isinstance(decision, GiveUp):
            break
        machine.redeliver()
    assert runs <= policy.max_attempts
    assert machine.state in (
        DeliveryState.ACKED,
        DeliveryState.DEAD_LETTERED,
        DeliveryState.RECEIVED,  # outcomes ran out while it was still wanted
    )
    if machine.state is DeliveryState.DEAD_LETTERED:
        assert runs == policy.max_attempts or machine.exhausted


def test_an_exhausted_delivery_is_dead_lettered_with_the_reason() -> None:
    policy = Retry(max_attempts=2)
    machine = DeliveryAttempt(3, policy, last_error="KeyError: 'x'")
    assert machine.start() == GiveUp("KeyError: 'x'; exceeded max_attempts=2")
    assert machine.state is DeliveryState.DEAD_LETTERED
    silent = DeliveryAttempt(3, policy)
    give_up = silent.start()
    assert give_up is not None
    assert give_up.reason.startswith("consumer stopped acknowledging")


def test_the_guard_names_the_state() -> None:
    machine = DeliveryAttempt(1, Retry())
    with pytest.raises(InvalidState, match="cannot succeed: delivery is received") as info:
        machine.succeed()
    assert info.value.state == "received"
    machine.start()
    machine.succeed()
    for action in (machine.start, machine.filter_out, machine.succeed, machine.redeliver):
        with pytest.raises(InvalidState, match="delivery is acked"):
            action()
    with pytest.raises(InvalidState, match="cannot fail: delivery is acked"):
        machine.fail("x")
    with pytest.raises(ConfigurationError):
        DeliveryAttempt(0, Retry())


def state_of(machine: DeliveryAttempt) -> DeliveryState:
    """``machine.state`` read afresh: mypy keeps it narrowed across a transition."""
    return machine.state


class DeliveryMachine(RuleBasedStateMachine):
    """Random walks through the machine, checked against a model of its rules."""

    def __init__(self) -> None:
        super().__init__()
        self.policy = Retry(max_attempts=3, backoff=Backoff(initial=1, jitter=0))
        self.machine = DeliveryAttempt(1, self.policy)
        self.runs = 0
        self.delays: list[float] = []

    def _rejects(self, action: str) -> None:
        before = (self.machine.state, self.machine.attempt)
        call = (
            (lambda: self.machine.fail("E")) if action == "fail" else getattr(self.machine, action)
        )
        with pytest.raises(InvalidState, match=f"delivery is {before[0].name.lower()}"):
            call()
        assert (self.machine.state, self.machine.attempt) == before  # a refusal changes nothing

    @rule()
    def start(self) -> None:
        if self.machine.state is not DeliveryState.RECEIVED:
            self._rejects("start")
            return
        exhausted = self.machine.attempt > self.policy.max_attempts
        decision = self.machine.start()
        assert (decision is not None) == exhausted
        if decision is None:
            self.runs += 1
            assert state_of(self.machine) is DeliveryState.HANDLING

    @rule()
    def succeed(self) -> None:
        if self.machine.state is not DeliveryState.HANDLING:
            self._rejects("succeed")
            return
        assert self.machine.succeed() == Ack()

    @rule()
    def filter_out(self) -> None:
        if self.machine.state is not DeliveryState.RECEIVED:
            self._rejects("filter_out")
            return
        assert self.machine.filter_out() == Ack()
        assert state_of(self.machine) is DeliveryState.ACKED

    @rule()
    def fail(self) -> None:
        if self.machine.state is not DeliveryState.HANDLING:
            self._rejects("fail")
            return
        decision = self.machine.fail("E")
        if self.machine.attempt >= self.policy.max_attempts:
            assert decision == GiveUp("E")
            assert state_of(self.machine) is DeliveryState.DEAD_LETTERED
        else:
            assert isinstance(decision, RetryAfter)
            self.delays.append(decision.delay)
            assert state_of(self.machine) is DeliveryState.RETRYING

    @precondition(lambda self: self.machine.state is not DeliveryState.RECEIVED)
    @rule()
    def redeliver(self) -> None:
        state = self.machine.state
        if state not in (DeliveryState.RETRYING, DeliveryState.HANDLING):
            self._rejects("redeliver")
            return
        attempt = self.machine.attempt
        self.machine.redeliver()
        assert self.machine.attempt == attempt + 1
        assert self.machine.state is DeliveryState.RECEIVED

    @invariant()
    def never_more_runs_than_attempts_allowed(self) -> None:
        assert self.runs <= self.policy.max_attempts

    @invariant()
    def delays_never_decrease(self) -> None:
        assert self.delays == sorted(self.delays)


TestDeliveryMachine = DeliveryMachine.TestCase
