"""Fatigue controls: budget, quiet hours across time zones and DST, collapse, digests."""

from __future__ import annotations

from datetime import datetime, time, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ArgumentTypeError, ConfigurationError
from eventpatterns.push import Notification
from eventpatterns.push._fatigue import (
    Bucket,
    Budget,
    FatiguePolicy,
    QuietHours,
    UserFatigue,
    admit,
    release,
)

NIGHT = QuietHours(time(22), time(7))


def stamp(text: str, zone: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).timestamp()


def utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


@pytest.mark.parametrize(
    ("local", "zone", "ends"),
    [
        ("2026-06-01T23:30", "Europe/Paris", "2026-06-02T05:00:00+00:00"),  # CEST, UTC+2
        ("2026-12-01T23:30", "Europe/Paris", "2026-12-02T06:00:00+00:00"),  # CET, UTC+1
        ("2026-06-02T06:59", "Europe/Paris", "2026-06-02T05:00:00+00:00"),  # a minute left
        ("2026-06-01T23:30", "America/New_York", "2026-06-02T11:00:00+00:00"),
        ("2026-06-01T23:30", "Asia/Kolkata", "2026-06-02T01:30:00+00:00"),  # UTC+5:30
        # The night clocks go forward (Paris, 29 March 2026): 7:00 is CEST already.
        ("2026-03-28T23:00", "Europe/Paris", "2026-03-29T05:00:00+00:00"),
        # The night clocks go back (New York, 1 November 2026): 7:00 is EST again.
        ("2026-10-31T23:00", "America/New_York", "2026-11-01T12:00:00+00:00"),
        # Lord Howe Island moves its clocks by 30 minutes.
        ("2026-10-03T23:00", "Australia/Lord_Howe", "2026-10-03T20:00:00+00:00"),
    ],
)
def test_quiet_hours_end_at_the_local_end_whatever_the_offset(
    local: str, zone: str, ends: str
) -> None:
    until = NIGHT.until(stamp(local, zone), ZoneInfo(zone))
    assert until is not None
    assert utc(until) == ends


def test_outside_quiet_hours_there_is_nothing_to_wait_for() -> None:
    assert NIGHT.until(stamp("2026-06-01T12:00", "Europe/Paris"), ZoneInfo("Europe/Paris")) is None
    day = QuietHours(time(12), time(14))  # one that does not wrap past midnight
    assert day.until(stamp("2026-06-01T11:59", "UTC"), ZoneInfo("UTC")) is None
    assert day.until(stamp("2026-06-01T12:00", "UTC"), ZoneInfo("UTC")) == stamp(
        "2026-06-01T14:00", "UTC"
    )


def test_an_end_inside_the_spring_forward_gap_is_the_gaps_end() -> None:
    # Paris, 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    window = QuietHours(time(1), time(2, 30))
    until = window.until(stamp("2026-03-29T01:30", "Europe/Paris"), ZoneInfo("Europe/Paris"))
    assert until is not None
    assert utc(until) == "2026-03-29T01:00:00+00:00"  # 03:00 CEST, the first instant after


@settings(max_examples=200, deadline=None)
@given(
    start=st.times(), end=st.times(),
    when=st.floats(min_value=1.6e9, max_value=2.0e9),
    zone=st.sampled_from(
        ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu",
         "America/St_Johns"]
    ),
)  # fmt: skip
def test_quiet_hours_end_after_now_within_a_day_and_outside_the_window(
    start: time, end: time, when: float, zone: str
) -> None:
    if start.replace(microsecond=0) == end.replace(microsecond=0):
        return
    window = QuietHours(start.replace(microsecond=0), end.replace(microsecond=0))
    until = window.until(when, ZoneInfo(zone))
    if until is None:
        return
    assert when < until <= when + 26 * 3600
    assert window.until(until, ZoneInfo(zone)) is None  # it really ended


def test_bad_quiet_hours_and_budgets_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="same time"):
        QuietHours(time(7), time(7))
    with pytest.raises(ConfigurationError, match=r"datetime\.time"):
        QuietHours("22:00", time(7))  # type: ignore[arg-type]
    for count, per in ((0, 60), (True, 60), (1, 0), (1, float("inf"))):
        with pytest.raises(ConfigurationError):
            Budget(count, per)
    with pytest.raises(ConfigurationError, match="max_held"):
        FatiguePolicy(max_held=0)


def note(i: int, **kw: Any) -> Notification:
    return Notification(title=f"n{i}", **kw)


def test_within_budget_everything_goes_out_at_once() -> None:
    policy = FatiguePolicy(user_budget=Budget(3, 60))
    state, out = UserFatigue(), list[Notification]()
    for i in range(3):
        step = admit(policy, state, note(i), now=0.0)
        state, out = step.state, [*out, *step.deliver]
        assert step.wake_at is None
    assert [n.title for n in out] == ["n0", "n1", "n2"]


def test_over_budget_notifications_wait_then_come_as_one_digest() -> None:
    policy = FatiguePolicy(user_budget=Budget(2, 60))  # one token every 30 s
    state = UserFatigue()
    for i in range(2):
        state = admit(policy, state, note(i), now=0.0).state
    held = [admit(policy, state, note(2), now=1.0)]
    for i in range(3, 6):
        held.append(admit(policy, held[-1].state, note(i), now=2.0))
    assert all(step.deliver == () for step in held)
    assert held[-1].wake_at == pytest.approx(30.0)  # the next token
    assert [n.title for n in held[-1].state.held] == ["n2", "n3", "n4", "n5"]
    early = release(policy, held[-1].state, now=29.0)
    assert early.deliver == ()
    later = release(policy, early.state, now=30.0)
    (digest,) = later.deliver
    assert (digest.title, digest.body, digest.data) == (
        "4 new notifications",
        "n5",
        {"digest": "4"},
    )
    assert later.state.held == ()
    assert later.wake_at is None


def test_a_newer_notification_replaces_a_held_one_with_its_collapse_key() -> None:
    policy = FatiguePolicy(user_budget=Budget(1, 60))
    state = admit(policy, UserFatigue(), note(0), now=0.0).state  # spends the token
    for i in (1, 2, 3):
        state = admit(policy, state, note(i, collapse_key="score"), now=1.0).state
    state = admit(policy, state, note(4), now=1.0).state
    assert [n.title for n in state.held] == ["n3", "n4"]


def test_high_urgency_goes_past_the_budget_and_still_takes_a_token() -> None:
    policy = FatiguePolicy(user_budget=Budget(1, 60))
    first = admit(policy, UserFatigue(), note(0, urgency="high"), now=0.0)
    assert [n.title for n in first.deliver] == ["n0"]
    held = admit(policy, first.state, note(1), now=0.0)
    assert held.deliver == ()
    urgent = admit(policy, held.state, note(2, urgency="high"), now=0.0)
    assert [n.title for n in urgent.deliver] == ["n2"]
    assert [n.title for n in urgent.state.held] == ["n1"]
    assert urgent.wake_at is not None


def test_beyond_max_held_the_oldest_are_counted_into_the_digest() -> None:
    policy = FatiguePolicy(user_budget=Budget(1, 3600), max_held=3)
    state = admit(policy, UserFatigue(), note(0), now=0.0).state
    for i in range(1, 11):
        state = admit(policy, state, note(i), now=1.0).state
    assert ([n.title for n in state.held], state.folded) == (["n8", "n9", "n10"], 7)
    (digest,) = release(policy, state, now=3600.0).deliver
    assert digest.title == "10 new notifications"


def test_without_a_budget_nothing_waits() -> None:
    policy = FatiguePolicy(user_budget=None)
    step = admit(policy, UserFatigue(), note(0), now=0.0)
    assert [n.title for n in step.deliver] == ["n0"]
    assert release(policy, UserFatigue(folded=2), now=0.0).deliver[0].title == "2 new notifications"


def test_a_bucket_refills_continuously_up_to_its_count() -> None:
    budget = Budget(4, 40)
    bucket = Bucket(0.0, 100.0)
    assert bucket.refill(budget, 110.0).tokens == pytest.approx(1.0)
    assert bucket.refill(budget, 1000.0).tokens == 4.0
    assert bucket.refill(budget, 50.0) == Bucket(0.0, 100.0)  # time never runs backwards
    assert bucket.next_token(budget) == pytest.approx(110.0)


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(min_value=0, max_value=120),
            st.sampled_from(["low", "normal", "high"]),
            st.sampled_from([None, "a", "b"]),
        ),
        max_size=40,
    )
)
def test_nothing_is_lost_and_the_budget_holds(steps: list[tuple[float, str, str | None]]) -> None:
    budget = Budget(3, 60)
    policy = FatiguePolicy(user_budget=budget, max_held=5)
    state, now = UserFatigue(), 0.0
    admitted, collapsed, normal_out, accounted = 0, 0, 0, 0
    for i, (gap, urgency, key) in enumerate(steps):
        now += gap
        n = Notification(title=f"n{i}", urgency=urgency, collapse_key=key)  # type: ignore[arg-type]
        if urgency != "high" and key is not None:
            collapsed += sum(1 for h in state.held if h.collapse_key == key)
        step = admit(policy, state, n, now)
        admitted += 1
        for out in step.deliver:
            if out.urgency == "high" and out.title.startswith("n"):
                accounted += 1
                continue
            normal_out += 1
            accounted += int(out.data.get("digest", "1"))
        state = step.state
        if step.wake_at is not None:
            assert step.wake_at >= now
    # everything admitted is delivered, held, folded or replaced by a newer one
    assert accounted + len(state.held) + state.folded + collapsed == admitted
    # normal deliveries never exceed what the bucket can have given out
    assert normal_out <= budget.count + now * budget.count / budget.per + 1e-9


def test_bad_notifications_are_refused_naming_the_field() -> None:
    with pytest.raises(ConfigurationError, match="urgency"):
        Notification(urgency="now")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="data"):
        Notification(data={"n": 1})  # type: ignore[dict-item]
    with pytest.raises(ConfigurationError, match="ttl"):
        Notification(ttl=-1)
    with pytest.raises(ConfigurationError, match="entries"):
        Notification(data={str(i): "x" for i in range(101)})
    with pytest.raises(ConfigurationError, match="collapse_key"):
        Notification(collapse_key="")
    with pytest.raises(ArgumentTypeError, match="title"):
        Notification(title=None)  # type: ignore[arg-type]
