"""Ack, retry or dead-letter: the decision after a delivery, as a sans-I/O state machine.

Nothing here does I/O, reads a clock or awaits. The consumer drives it: it reports
what happened to a delivery (its handler succeeded, raised, or was never run because
the delivery was filtered out or came back after its last allowed attempt) and carries
out the :data:`Decision` it gets back (ack, release with a delay, dead-letter). The job
tracker's retries are meant to drive the same machine, one attempt after another.

States of one delivery (websockets' ``State`` enum plus one guard)::

    RECEIVED --start()---------------------> HANDLING
    RECEIVED --start(), attempts exhausted--> DEAD_LETTERED   (not run again)
    RECEIVED --filter_out()-----------------> ACKED
    HANDLING --succeed()--------------------> ACKED
    HANDLING --fail(), attempts left--------> RETRYING         (RetryAfter(delay))
    HANDLING --fail(), last attempt---------> DEAD_LETTERED    (GiveUp(reason))
    RETRYING --redeliver()------------------> RECEIVED         (attempt + 1)
    HANDLING --redeliver()------------------> RECEIVED         (its consumer crashed)

A transition called in the wrong state raises
:class:`~eventpatterns.errors.InvalidState` naming the state.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass, field

from ..errors import ConfigurationError, InvalidState

__all__ = [
    "Ack",
    "Backoff",
    "Decision",
    "DeliveryAttempt",
    "DeliveryState",
    "GiveUp",
    "Retry",
    "RetryAfter",
    "decide",
]


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter between delivery attempts.

    The delay after failed attempt ``n`` is ``min(maximum, initial * multiplier**(n-1))``,
    scaled by a random factor in ``[1 - jitter, 1]`` so that failing consumers do not
    retry in lock-step. Without jitter the delays never decrease and never exceed
    ``maximum``.

    Example:
        >>> Backoff(initial=1, multiplier=2, jitter=0).delay(3)
        4.0
    """

    initial: float = 1.0
    multiplier: float = 2.0
    maximum: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.initial < 0 or self.maximum < 0:
            raise ConfigurationError("backoff delays must be >= 0")
        if self.multiplier < 1:
            raise ConfigurationError(f"backoff multiplier must be >= 1, got {self.multiplier}")
        if not 0 <= self.jitter <= 1:
            raise ConfigurationError(f"backoff jitter must be within [0, 1], got {self.jitter}")

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the delay after failed attempt number ``attempt`` (1-based)."""
        exponent = max(attempt - 1, 0)
        try:
            grown = self.initial * self.multiplier**exponent
        except OverflowError:  # a float power this large is past any maximum
            grown = self.maximum
        base = min(self.maximum, grown)
        if not self.jitter:
            return float(base)
        factor = 1.0 - self.jitter * (rng or random).random()
        return float(base * factor)


@dataclass(frozen=True, slots=True)
class Retry:
    """How often, and how far apart, a failing delivery is tried.

    A value object like httpx's ``Timeout``: pass one to
    :meth:`~eventpatterns.bus.EventBus.consume` as ``retry=Retry(...)``.

    Attributes:
        max_attempts: Handler runs before an event is dead-lettered (>= 1). A delivery
            that comes back after its last attempt (its consumer crashed or hung) is
            dead-lettered without running the handler again.
        backoff: Delay between attempts.

    Example:
        >>> Retry(max_attempts=3, backoff=Backoff(initial=0.5, jitter=0)).backoff.delay(2)
        1.0
    """

    max_attempts: int = 5
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigurationError(f"max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if not isinstance(self.backoff, Backoff):
            raise ConfigurationError(f"backoff must be a Backoff, got {self.backoff!r}")


@dataclass(frozen=True, slots=True)
class Ack:
    """Decision: the delivery is done for its group; acknowledge it."""


@dataclass(frozen=True, slots=True)
class RetryAfter:
    """Decision: give the delivery back, to be delivered again after ``delay`` seconds.

    Attributes:
        delay: Seconds (on the backend's clock) before the next attempt.
        error: The failure, recorded with the delivery for the next attempt.
    """

    delay: float
    error: str


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Decision: move the delivery to the group's dead letters with ``reason``."""

    reason: str


#: What the driver of a :class:`DeliveryAttempt` must do next.
Decision = Ack | RetryAfter | GiveUp

_ACK = Ack()


def decide(
    attempt: int, error: str | None, policy: Retry, *, rng: random.Random | None = None
) -> Decision:
    """Return what to do after attempt number ``attempt`` ended with ``error`` (``None``: success).

    Example:
        >>> decide(5, "ValueError: boom", Retry(max_attempts=5))
        GiveUp(reason='ValueError: boom')
    """
    if error is None:
        return _ACK
    return _after_failure(attempt, error, policy, rng)


def _after_failure(
    attempt: int, error: str, policy: Retry, rng: random.Random | None
) -> RetryAfter | GiveUp:
    if attempt >= policy.max_attempts:
        return GiveUp(error)
    return RetryAfter(policy.backoff.delay(attempt, rng), error)


class DeliveryState(enum.IntEnum):
    """Where one delivery of an event stands (see the module's diagram)."""

    RECEIVED = 1
    HANDLING = 2
    ACKED = 3
    RETRYING = 4
    DEAD_LETTERED = 5


RECEIVED, HANDLING, ACKED, RETRYING, DEAD_LETTERED = DeliveryState


class DeliveryAttempt:
    """The state machine of one delivery: received, handled, then acked, retried or dead.

    Args:
        attempt: 1 on the first delivery, +1 on each redelivery (as the backend counts).
        policy: The retry policy.
        last_error: The error the previous attempt recorded, if any.
        rng: Random source for backoff jitter (inject one for reproducible tests).

    Example:
        >>> machine = DeliveryAttempt(1, Retry(max_attempts=2, backoff=Backoff(jitter=0)))
        >>> machine.start() is None          # run the handler now
        True
        >>> machine.fail("ValueError: boom")
        RetryAfter(delay=1.0, error='ValueError: boom')
        >>> machine.state.name
        'RETRYING'
    """

    __slots__ = ("attempt", "last_error", "policy", "rng", "state")

    def __init__(
        self,
        attempt: int,
        policy: Retry,
        *,
        last_error: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if attempt < 1:
            raise ConfigurationError(f"attempt must be at least 1, got {attempt}")
        self.attempt = attempt
        self.policy = policy
        self.last_error = last_error
        self.rng = rng
        self.state = RECEIVED

    def _expect(self, state: DeliveryState, action: str) -> None:
        if self.state is not state:
            raise InvalidState(
                f"cannot {action}: delivery is {self.state.name.lower()}",
                state=self.state.name.lower(),
            )

    @property
    def exhausted(self) -> bool:
        """Whether this attempt is past ``max_attempts`` (the handler must not run)."""
        return self.attempt > self.policy.max_attempts

    def start(self) -> GiveUp | None:
        """Begin handling: ``None`` means run the handler now (state ``HANDLING``).

        A delivery past its last allowed attempt came back because the consumer that
        held it crashed or hung: it is not run again, and :class:`GiveUp` is returned
        (state ``DEAD_LETTERED``).
        """
        self._expect(RECEIVED, "start")
        if self.exhausted:
            self.state = DEAD_LETTERED
            reason = self.last_error or "consumer stopped acknowledging (visibility timeout)"
            return GiveUp(f"{reason}; exceeded max_attempts={self.policy.max_attempts}")
        self.state = HANDLING
        return None

    def filter_out(self) -> Ack:
        """Acknowledge a delivery the consumer does not want, without handling it."""
        self._expect(RECEIVED, "filter out")
        self.state = ACKED
        return _ACK

    def succeed(self) -> Ack:
        """The handler returned: acknowledge."""
        self._expect(HANDLING, "succeed")
        self.state = ACKED
        return _ACK

    def fail(self, error: str) -> RetryAfter | GiveUp:
        """The handler raised (or timed out) with ``error``: retry later or give up."""
        self._expect(HANDLING, "fail")
        self.last_error = error
        decision = _after_failure(self.attempt, error, self.policy, self.rng)
        self.state = DEAD_LETTERED if isinstance(decision, GiveUp) else RETRYING
        return decision

    def redeliver(self) -> None:
        """The retry delay passed (or a visibility timeout ran out): the next attempt."""
        if self.state is not RETRYING and self.state is not HANDLING:
            # HANDLING too: a consumer that crashed mid-handler never reported back.
            raise InvalidState(
                f"cannot redeliver: delivery is {self.state.name.lower()}",
                state=self.state.name.lower(),
            )
        self.attempt += 1
        self.state = RECEIVED
