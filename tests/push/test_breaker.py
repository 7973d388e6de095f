"""The per-provider circuit breaker: opens on consecutive failures, one trial when half-open."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ConfigurationError
from eventpatterns.push._breaker import Breaker, BreakerPolicy

POLICY = BreakerPolicy(threshold=3, cooldown=10, max_cooldown=40)


def test_it_opens_after_threshold_failures_in_a_row_and_a_success_resets_the_count() -> None:
    breaker = Breaker()
    for _ in range(2):
        breaker = breaker.record(POLICY, ok=False, now=0)
    breaker = breaker.record(POLICY, ok=True, now=0)
    assert breaker == Breaker()
    for _ in range(3):
        breaker, allowed = breaker.allow(POLICY, now=1)
        assert allowed
        breaker = breaker.record(POLICY, ok=False, now=1)
    assert (breaker.state, breaker.retry_at()) == ("open", 11)
    assert breaker.allow(POLICY, now=10.9) == (breaker, False)


def test_half_open_lets_one_trial_through_whose_answer_decides() -> None:
    opened = Breaker("open", 0, 11, 10)
    trial, allowed = opened.allow(POLICY, now=11)
    assert (trial.state, allowed) == ("half-open", True)
    assert trial.allow(POLICY, now=11)[1] is False  # one trial at a time
    failed = trial.record(POLICY, ok=False, now=12)
    assert (failed.state, failed.until, failed.cooldown) == ("open", 32, 20)  # twice as long
    again = failed.allow(POLICY, now=32)[0].record(POLICY, ok=False, now=32)
    again = again.allow(POLICY, now=again.until)[0].record(POLICY, ok=False, now=again.until)
    assert again.cooldown == 40  # capped at max_cooldown
    assert again.allow(POLICY, now=again.until)[0].record(POLICY, ok=True, now=0) == Breaker()
    assert Breaker("half-open").allow(POLICY, now=0) == (Breaker("half-open", trial=True), True)


@pytest.mark.parametrize(
    "kwargs",
    [{"threshold": 0}, {"threshold": True}, {"cooldown": 0}, {"max_cooldown": float("nan")},
     {"cooldown": 50, "max_cooldown": 40}],
)  # fmt: skip
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        BreakerPolicy(**kwargs)  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 30), st.booleans()), max_size=60))
def test_an_open_breaker_never_lets_a_send_through_before_its_time(
    steps: list[tuple[float, bool]],
) -> None:
    breaker, now, sent_while_open = Breaker(), 0.0, 0
    for gap, ok in steps:
        now += gap
        before = breaker
        breaker, allowed = breaker.allow(POLICY, now)
        if before.state == "open" and now < before.until:
            sent_while_open += allowed
        if allowed:
            breaker = breaker.record(POLICY, ok=ok, now=now)
        assert breaker.cooldown <= POLICY.max_cooldown
    assert sent_while_open == 0
