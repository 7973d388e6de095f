"""A circuit breaker per provider, as a pure state machine.

``closed`` lets every send through and counts consecutive transient failures; after
``threshold`` of them it opens for ``cooldown`` seconds (sends are held for later, not
tried: a push service that is down is not hammered); then ``half-open`` lets one trial
through — its success closes the breaker, its failure opens it again for twice as long
(up to ``max_cooldown``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

from ..errors import ConfigurationError

__all__ = ["Breaker", "BreakerPolicy"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When a provider's breaker opens and for how long.

    Attributes:
        threshold: Consecutive transient failures that open it.
        cooldown: Seconds it stays open the first time.
        max_cooldown: Longest it stays open after repeated failed trials.
    """

    threshold: int = 5
    cooldown: float = 10.0
    max_cooldown: float = 300.0

    def __post_init__(self) -> None:
        if (
            isinstance(self.threshold, bool)
            or not isinstance(self.threshold, int)
            or self.threshold < 1
        ):
            raise ConfigurationError(f"threshold must be an int >= 1, got {self.threshold!r}")
        for name in ("cooldown", "max_cooldown"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (math.isfinite(value) and value > 0)
            ):
                raise ConfigurationError(f"{name} must be positive seconds, got {value!r}")
        if self.max_cooldown < self.cooldown:
            raise ConfigurationError("max_cooldown must be at least cooldown")


@dataclass(frozen=True, slots=True)
class Breaker:
    """One provider's breaker state.

    Attributes:
        state: ``closed``, ``open`` or ``half-open``.
        failures: Consecutive transient failures while closed.
        until: While open, when a trial may go (Unix seconds).
        cooldown: How long the last opening lasted.
        trial: While half-open, whether the trial is out.
    """

    state: Literal["closed", "open", "half-open"] = "closed"
    failures: int = 0
    until: float = 0.0
    cooldown: float = 0.0
    trial: bool = False

    def allow(self, policy: BreakerPolicy, now: float) -> tuple[Breaker, bool]:
        """Return the breaker after asking to send at ``now``, and whether to send."""
        if self.state == "closed":
            return self, True
        if self.state == "open":
            if now < self.until:
                return self, False
            return dataclasses.replace(self, state="half-open", trial=True), True
        if self.trial:  # half-open, the trial is out: wait for its answer
            return self, False
        return dataclasses.replace(self, trial=True), True

    def record(self, policy: BreakerPolicy, *, ok: bool, now: float) -> Breaker:
        """Return the breaker after a send answered (``ok``: not a transient failure)."""
        if ok:
            return _CLOSED
        if self.state == "half-open":
            cooldown = min(policy.max_cooldown, max(policy.cooldown, self.cooldown * 2))
            return Breaker("open", 0, now + cooldown, cooldown)
        failures = self.failures + 1
        if failures >= policy.threshold:
            return Breaker("open", 0, now + policy.cooldown, policy.cooldown)
        return Breaker(self.state, failures, self.until, self.cooldown, self.trial)

    def retry_at(self) -> float | None:
        """While open, when to try again; else ``None``."""
        return self.until if self.state == "open" else None


#: The closed breaker with no failures (frozen, so one instance serves every caller).
_CLOSED = Breaker()
