"""Every bound the gateway enforces, in one frozen value object."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ..errors import ConfigurationError
from ..filters import Limits as PatternLimits

__all__ = ["Limits", "SlowClientPolicy", "TokenExpiryPolicy"]

#: What the gateway does with a client whose send buffer is over ``max_buffered``.
SlowClientPolicy = Literal["resync", "close"]
#: What the gateway does when a live connection's credentials expire.
TokenExpiryPolicy = Literal["close", "refresh"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The bounds of one gateway; over one, the client gets a documented error or close.

    Attributes:
        max_frame_bytes: Largest client frame, in bytes of UTF-8; a larger one is
            refused unparsed with ``frame_too_large`` and the close 1009.
        max_json_depth: Deepest nesting of a client frame (objects and arrays).
        max_subscriptions: Most subscriptions (live or being set up) per connection
            (``too_many_subscriptions``).
        max_connections_per_principal: Most open connections of one principal in one
            gateway process; the next one is closed with 4429.
        rate: Client frames per second allowed on average (a token bucket)...
        rate_burst: ...and at once (the bucket's size). A frame over it gets
            ``rate_limited`` and is ignored.
        max_rate_violations: ...and after this many ``rate_limited`` frames without the
            bucket having refilled completely in between, the connection closes with 4429.
        auth_timeout: Seconds a connection may stay unauthenticated (close 4408).
        max_buffered: Bytes queued on a connection's transport beyond which an event
            is not queued but the ``slow_client`` policy applies.
        slow_client: ``"resync"``: the event is dropped and the subscription it was for
            ends with ``resync-required`` (reason ``overflow``, the last position
            delivered), ``"close"``: the connection closes with 4409.
        send_timeout: A resuming subscription's replay is paced by the client: when
            its buffer is full, the replay waits up to this many seconds for it to
            read before the ``slow_client`` policy applies.
        on_token_expiry: ``"close"``: at the principal's ``expires_at`` the connection
            closes with 4401; ``"refresh"``: ``refresh_window`` seconds before, the
            client gets ``token-expiring`` and may send a fresh ``authenticate``.
        refresh_window: See ``on_token_expiry``.
        keepalive: Seconds between SSE keep-alive comments (transports read it).
        presence_ttl: A presence membership's lifetime; the gateway heartbeats its
            connections' memberships every third of it.
        replay_page: Log entries read per page when a subscription resumes.
        replay_buffer: Live entries held per resuming subscription while it replays;
            when more arrive, the replay reads them from the log instead.
        patterns: Bounds on subscription patterns and filters (the filter engine's).
    """

    max_frame_bytes: int = 64 * 1024
    max_json_depth: int = 32
    max_subscriptions: int = 100
    max_connections_per_principal: int = 100
    rate: float = 100.0
    rate_burst: int = 200
    max_rate_violations: int = 50
    auth_timeout: float = 10.0
    max_buffered: int = 1024 * 1024
    slow_client: SlowClientPolicy = "resync"
    send_timeout: float = 30.0
    on_token_expiry: TokenExpiryPolicy = "close"  # noqa: S105 - a policy name
    refresh_window: float = 60.0
    keepalive: float = 15.0
    presence_ttl: float = 30.0
    replay_page: int = 500
    replay_buffer: int = 10_000
    patterns: PatternLimits = field(default_factory=PatternLimits)

    def __post_init__(self) -> None:
        for name in (
            "max_frame_bytes", "max_json_depth", "max_subscriptions",
            "max_connections_per_principal", "rate_burst", "max_rate_violations",
            "max_buffered", "replay_page", "replay_buffer",
        ):  # fmt: skip
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(
                    f"Limits.{name} must be an int of at least 1, got {value!r}"
                )
        for name in (
            "rate",
            "auth_timeout",
            "send_timeout",
            "refresh_window",
            "keepalive",
            "presence_ttl",
        ):
            value = getattr(self, name)
            if (
                not isinstance(value, (int, float))
                or isinstance(value, bool)
                or not math.isfinite(value)
                or value <= 0
            ):
                raise ConfigurationError(f"Limits.{name} must be a positive number, got {value!r}")
        if self.slow_client not in ("resync", "close"):
            raise ConfigurationError(
                f"Limits.slow_client must be 'resync' or 'close', got {self.slow_client!r}"
            )
        if self.on_token_expiry not in ("close", "refresh"):
            raise ConfigurationError(
                f"Limits.on_token_expiry must be 'close' or 'refresh', got {self.on_token_expiry!r}"
            )
        if not isinstance(self.patterns, PatternLimits):
            raise ConfigurationError("Limits.patterns must be an eventpatterns.filters.Limits")
