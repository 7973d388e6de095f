"""Fatigue controls as pure functions: a rate budget, quiet hours, collapse keys, digests.

Sans-I/O: the dispatcher passes ``now`` and the state it stored, and gets back the new
state, what to deliver now, and when to call again. Nothing is ever dropped: a
notification over budget is held, a newer one with the same ``collapse_key`` replaces the
held one, and when more are held than the budget lets through they are folded into one
digest ("5 new notifications") instead.

* **Budget** (:class:`Budget`, per user, and optionally per app): a token bucket of
  ``count`` notifications per ``per`` seconds, refilled continuously.
* **Quiet hours** (:class:`QuietHours`): a local wall-clock window, read in the
  *device's* time zone (DST included); delivery to that device waits until it ends,
  unless the notification is ``high`` urgency.
* ``high`` urgency also goes past the budget (it still takes a token when there is one):
  a sign-in code must not wait behind marketing.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from ..errors import ConfigurationError
from ._notification import Notification

__all__ = [
    "Budget",
    "Bucket",
    "FatiguePolicy",
    "QuietHours",
    "Release",
    "UserFatigue",
    "admit",
    "release",
]


@dataclass(frozen=True, slots=True)
class Budget:
    """At most ``count`` notifications per ``per`` seconds (a token bucket)."""

    count: int
    per: float

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 1:
            raise ConfigurationError(f"a budget's count must be an int >= 1, got {self.count!r}")
        if (
            isinstance(self.per, bool)
            or not isinstance(self.per, int | float)
            or not (math.isfinite(self.per) and self.per > 0)
        ):
            raise ConfigurationError(
                f"a budget's period must be positive seconds, got {self.per!r}"
            )


@dataclass(frozen=True, slots=True)
class Bucket:
    """A budget's state: the tokens left at ``updated`` (Unix seconds)."""

    tokens: float
    updated: float

    @classmethod
    def full(cls, budget: Budget, now: float) -> Bucket:
        """Return a full bucket."""
        return cls(float(budget.count), now)

    def refill(self, budget: Budget, now: float) -> Bucket:
        """Return the bucket at ``now`` (never more than ``budget.count`` tokens)."""
        gained = max(0.0, now - self.updated) * budget.count / budget.per
        return Bucket(min(float(budget.count), self.tokens + gained), max(now, self.updated))

    def next_token(self, budget: Budget) -> float:
        """Return when the bucket (as of ``updated``) holds one whole token."""
        missing = max(0.0, 1.0 - self.tokens)
        return self.updated + missing * budget.per / budget.count


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local window, ``start`` to ``end`` (it may wrap past midnight).

    Example:
        >>> from datetime import time
        >>> from zoneinfo import ZoneInfo
        >>> night = QuietHours(time(22), time(7))
        >>> night.until(1_700_000_000.0, ZoneInfo("Europe/Paris"))  # 23:13 in Paris
        1700028000.0
    """

    start: time
    end: time

    def __post_init__(self) -> None:
        if not isinstance(self.start, time) or not isinstance(self.end, time):
            raise ConfigurationError("quiet hours take datetime.time values")
        if self.start == self.end:
            raise ConfigurationError("quiet hours must not start and end at the same time")

    def _inside(self, local: time) -> bool:
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def until(self, now: float, zone: ZoneInfo) -> float | None:
        """Return when the quiet hours around ``now`` end, or ``None`` if not inside.

        Read on the wall clock of ``zone``: on a day the clocks change, the window still
        ends at ``end`` local time (an ``end`` that does not exist that day, in a
        spring-forward gap, is the first instant after the gap).
        """
        here = datetime.fromtimestamp(now, zone)
        if not self._inside(here.time().replace(tzinfo=None)):
            return None
        day = here.date()
        for offset in (0, 1):
            local = datetime.combine(day + timedelta(days=offset), self.end, tzinfo=zone)
            stamp = _wall_to_timestamp(local)
            if stamp > now:
                return stamp
        raise AssertionError("unreachable: a window ends within a day")  # pragma: no cover


def _wall_to_timestamp(local: datetime) -> float:
    """Return the instant a local wall-clock time names (the gap's end if it names none)."""
    stamp = local.timestamp()  # fold=0: a gap time maps to the instant after the change
    back = datetime.fromtimestamp(stamp, local.tzinfo)
    if back.replace(tzinfo=None) != local.replace(tzinfo=None):  # in a gap: the gap's end
        return float(_gap_end(local, stamp))
    return stamp


def _gap_end(local: datetime, stamp: float) -> float:
    # Find the first instant whose wall clock is at or after ``local`` (minute steps back).
    probe = stamp
    while datetime.fromtimestamp(probe - 60, local.tzinfo).replace(tzinfo=None) >= local.replace(
        tzinfo=None
    ):
        probe -= 60
    return probe


@dataclass(frozen=True, slots=True)
class FatiguePolicy:
    """How many notifications a user gets and when.

    Attributes:
        user_budget: Per user (``None``: unlimited).
        quiet_hours: Per device, in its time zone (``None``: none).
        max_held: Most notifications held per user; beyond it the oldest are folded
            into the digest's count (counted, never lost silently).
        digest_title: The digest's title; ``{count}`` is replaced by how many it folds.
    """

    user_budget: Budget | None = Budget(10, 3600.0)
    quiet_hours: QuietHours | None = None
    max_held: int = 50
    digest_title: str = "{count} new notifications"

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_held, bool)
            or not isinstance(self.max_held, int)
            or self.max_held < 1
        ):
            raise ConfigurationError(f"max_held must be an int >= 1, got {self.max_held!r}")

    def digest(self, held: tuple[Notification, ...], folded: int) -> Notification:
        """Return the one notification that stands for ``held`` (and ``folded`` more)."""
        count = len(held) + folded
        return Notification(
            title=self.digest_title.format(count=count),
            body=held[-1].title if held else "",
            data={"digest": str(count)},
            urgency="normal",
            collapse_key="eventpatterns-digest",
        )


@dataclass(frozen=True, slots=True)
class UserFatigue:
    """One user's fatigue state: their budget and what is held for them.

    Attributes:
        bucket: The user's budget state (``None`` until first used).
        held: Notifications waiting for budget, oldest first (collapse keys applied).
        folded: How many more were folded away once ``held`` was full.
    """

    bucket: Bucket | None = None
    held: tuple[Notification, ...] = ()
    folded: int = 0


@dataclass(frozen=True, slots=True)
class Release:
    """The outcome of :func:`admit` or :func:`release`.

    Attributes:
        state: The user's new state (store it).
        deliver: What to deliver now, in order (a digest stands for several).
        wake_at: When to call :func:`release` again (``None``: nothing held).
    """

    state: UserFatigue
    deliver: tuple[Notification, ...]
    wake_at: float | None


def admit(
    policy: FatiguePolicy, state: UserFatigue, notification: Notification, now: float
) -> Release:
    """Decide what happens to a new notification for a user (the budget part).

    ``high`` urgency is delivered at once (taking a token if one is left). Otherwise the
    notification replaces a held one with the same ``collapse_key`` or joins the held
    ones, and :func:`release` decides what goes now.
    """
    budget = policy.user_budget
    if notification.urgency == "high":
        bucket = state.bucket
        if budget is not None:
            bucket = (bucket or Bucket.full(budget, now)).refill(budget, now)
            bucket = dataclasses.replace(bucket, tokens=max(0.0, bucket.tokens - 1))
        return _wake(policy, dataclasses.replace(state, bucket=bucket), (notification,))
    held = state.held
    if notification.collapse_key is not None:
        held = tuple(n for n in held if n.collapse_key != notification.collapse_key)
    held = (*held, notification)
    folded = state.folded
    if len(held) > policy.max_held:
        folded += len(held) - policy.max_held
        held = held[-policy.max_held :]
    return release(policy, UserFatigue(state.bucket, held, folded), now)


def release(policy: FatiguePolicy, state: UserFatigue, now: float) -> Release:
    """Deliver what the budget allows now; fold the rest into a digest when it cannot wait.

    With tokens for every held notification, each goes out. With fewer tokens than
    held notifications but at least one, a single digest goes out for all of them (so a
    burst becomes one notification, not a trickle). With no token, they stay held.
    """
    budget = policy.user_budget
    held, folded = state.held, state.folded
    if budget is None:
        out = held if not folded else (policy.digest(held, folded),)
        return Release(UserFatigue(None, (), 0), out, None)
    bucket = (state.bucket or Bucket.full(budget, now)).refill(budget, now)
    if not held and not folded:
        return Release(UserFatigue(bucket, (), 0), (), None)
    whole = math.floor(bucket.tokens)
    if whole < 1:
        return Release(UserFatigue(bucket, held, folded), (), bucket.next_token(budget))
    if folded == 0 and len(held) <= whole:
        spent = dataclasses.replace(bucket, tokens=bucket.tokens - len(held))
        return Release(UserFatigue(spent, (), 0), held, None)
    spent = dataclasses.replace(bucket, tokens=bucket.tokens - 1)
    return Release(UserFatigue(spent, (), 0), (policy.digest(held, folded),), None)


def _wake(policy: FatiguePolicy, state: UserFatigue, out: tuple[Notification, ...]) -> Release:
    budget = policy.user_budget
    wake = None
    if state.held and budget is not None and state.bucket is not None:
        wake = state.bucket.next_token(budget)
    return Release(state, out, wake)
