"""What a provider answers for one send: a normalised result, never an exception.

Each provider maps its own error list onto these four outcomes in one table, so that
the dispatcher decides retries, pruning and dead letters the same way for Web Push, FCM
and APNs.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..observability._metrics import metrics

__all__ = ["DeadToken", "Delivered", "PermanentFailure", "RetryLater", "SendResult", "count_result"]


@dataclass(frozen=True, slots=True)
class Delivered:
    """The push service accepted the message.

    Attributes:
        provider: ``"webpush"``, ``"fcm"`` or ``"apns"``.
        message_id: The service's id for it (FCM ``name``, APNs ``apns-id``,
            Web Push ``Location``), when it gives one.
    """

    provider: str
    message_id: str | None = None


@dataclass(frozen=True, slots=True)
class RetryLater:
    """A transient failure: try again later.

    Attributes:
        provider: The provider.
        reason: The service's error (``"429"``, ``"UNAVAILABLE"``, ``"ServiceUnavailable"``).
        at: When to retry (Unix seconds, from ``Retry-After``), or ``None``: use backoff.
        status: The HTTP status, if a response came (``None``: timeout, connection).
    """

    provider: str
    reason: str
    at: float | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class DeadToken:
    """The device token or subscription is gone: remove the device.

    Attributes:
        provider: The provider.
        reason: The service's error (``"410"``, ``"UNREGISTERED"``, ``"Unregistered"``).
        timestamp: For APNs, when Apple says the token stopped being valid (Unix
            seconds): prune only if the device was not registered again after it.
        status: The HTTP status.
    """

    provider: str
    reason: str
    timestamp: float | None = None
    status: int | None = None


@dataclass(frozen=True, slots=True)
class PermanentFailure:
    """The message can never be delivered as it is (too large, invalid, forbidden).

    Attributes:
        provider: The provider.
        reason: The service's error, e.g. ``"payload too large"`` or ``"BadTopic"``.
        status: The HTTP status, if a response came.
    """

    provider: str
    reason: str
    status: int | None = None


#: Every outcome a provider's ``send`` returns.
SendResult = Delivered | RetryLater | DeadToken | PermanentFailure


_OUTCOMES: dict[type, str] = {
    Delivered: "delivered",
    RetryLater: "retry_later",
    DeadToken: "dead_token",
    PermanentFailure: "permanent_failure",
}


def count_result(result: SendResult) -> None:
    """Count a provider's answer in ``eventpatterns_push_results_total{provider, outcome}``."""
    outcome = _OUTCOMES.get(type(result))
    if outcome is not None:
        metrics.inc("eventpatterns_push_results_total", provider=result.provider, outcome=outcome)
