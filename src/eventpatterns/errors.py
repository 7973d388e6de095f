"""Every error eventpatterns raises, in one tree.

Each error also inherits the builtin exception a caller would already catch, so
``except ValueError`` keeps working around code that validates input::

    EventPatternsError
    ├── InvalidEvent              (ValueError)     an event that breaks CloudEvents 1.0
    ├── InvalidEventData          (ValueError)     data that fails its event type's model
    ├── InvalidPattern            (ValueError)     a filter pattern that cannot be compiled
    ├── ConfigurationError        (ValueError)     a bad URL, option or missing extra
    │   └── MissingDependency     (ImportError)    ``pip install 'eventpatterns[<extra>]'``
    ├── ArgumentTypeError         (TypeError)      an argument of the wrong type
    ├── InvalidPosition           (ValueError)     not a position of this backend
    ├── ResyncRequired            (LookupError)    a position that cannot be resumed from
    │   ├── PositionExpired                        ``since=`` is older than retained history
    │   └── StalePosition                          from another incarnation (epoch) of the log
    ├── GroupNotFound             (LookupError)    a consumer group that was never created
    ├── DeadLetterNotFound        (LookupError)    an unknown dead-letter id
    ├── JobNotFound               (LookupError)    a job id the store does not hold
    ├── JobConflict               (RuntimeError)   a job write lost its compare-and-swap
    ├── UnknownJobKind            (LookupError)    a job kind the tracker does not know
    ├── InvalidJobInput           (ValueError)     a job input that fails its kind's model
    ├── JobTimeout                (TimeoutError)   waiting for a job ended before the job
    ├── BlobNotFound              (LookupError)    no blob under this key (or it expired)
    ├── EventTooLarge             (ValueError)     over the backend's ``max_message_size``
    ├── SubscriberOverflow                         a subscriber fell behind its buffer
    ├── EventsMissed                               a subscriber's events were dropped (a gap)
    ├── InvalidState              (RuntimeError)   a call its object's state does not allow
    │   └── InvalidJobTransition                   a job command its state does not allow
    ├── BusClosed                 (RuntimeError)   the bus or consumer was closed
    │   └── SubscriptionClosed                     a subscription's stream ended
    ├── BackendUnavailable        (ConnectionError) the backend cannot be reached
    ├── WebhookFailed             (ConnectionError) a webhook target did not accept a delivery
    ├── AuthenticationFailed      (PermissionError) bad, expired or missing credentials
    ├── Forbidden                 (PermissionError) an authenticated caller may not do this
    ├── ProtocolViolation         (ValueError)     a client frame the gateway refuses
    ├── InvalidDevice             (ValueError)     a push device registration that is malformed
    ├── InvalidNotification       (ValueError)     a push message its provider would refuse
    └── LimitExceeded             (ValueError)     over a configured limit (size, rate, count)
"""

from __future__ import annotations

__all__ = [
    "ArgumentTypeError",
    "AuthenticationFailed",
    "BackendUnavailable",
    "BlobNotFound",
    "BusClosed",
    "ConfigurationError",
    "DeadLetterNotFound",
    "EventPatternsError",
    "EventTooLarge",
    "EventsMissed",
    "Forbidden",
    "GroupNotFound",
    "InvalidEvent",
    "InvalidEventData",
    "InvalidJobInput",
    "InvalidDevice",
    "InvalidJobTransition",
    "InvalidNotification",
    "InvalidPattern",
    "InvalidPosition",
    "InvalidState",
    "JobConflict",
    "JobNotFound",
    "JobTimeout",
    "LimitExceeded",
    "MissingDependency",
    "PositionExpired",
    "ProtocolViolation",
    "ResyncRequired",
    "StalePosition",
    "SubscriberOverflow",
    "SubscriptionClosed",
    "UnknownJobKind",
    "WebhookFailed",
]


class EventPatternsError(Exception):
    """Root of every error raised by eventpatterns."""


class InvalidEvent(EventPatternsError, ValueError):
    """An event breaks the CloudEvents 1.0 rules.

    Attributes:
        attribute: The offending attribute (``"specversion"``, ``"data"``...), or
            ``None`` when the input as a whole is unreadable (malformed JSON).
        reason: The rule that was broken, in words.
    """

    def __init__(self, reason: str, *, attribute: str | None = None) -> None:
        self.attribute = attribute
        self.reason = reason
        prefix = (
            f"invalid CloudEvent attribute {attribute!r}: " if attribute else "invalid CloudEvent: "
        )
        super().__init__(prefix + reason)


class InvalidEventData(EventPatternsError, ValueError):
    """An event's data does not validate against its declared type's model.

    Attributes:
        type: The event's ``type``.
        event_id: The event's id, when known.
        errors: The validation errors (pydantic's shape: ``loc``, ``msg``, ``type``),
            at most 20; empty when the problem is the version or an upcaster.
    """

    def __init__(
        self,
        message: str,
        *,
        type: str,  # noqa: A002 - the CloudEvents attribute is called "type"
        event_id: str | None = None,
        errors: list[dict[str, object]] | None = None,
    ) -> None:
        self.type = type
        self.event_id = event_id
        self.errors = (errors or [])[:20]
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"  # type: ignore[attr-defined]
            for e in self.errors[:3]
        )
        super().__init__(f"{message}: {detail[:500]}" if detail else message)


class InvalidPattern(EventPatternsError, ValueError):
    """A filter pattern is malformed.

    Attributes:
        path: JSON path of the offending part, e.g. ``"$.detail.price[0].numeric"``.
        reason: What is wrong with it.
    """

    def __init__(self, reason: str, *, path: str = "$") -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"invalid pattern at {path}: {reason}")


class ArgumentTypeError(EventPatternsError, TypeError):
    """An argument has the wrong type (``publish()`` given something not an ``Event``).

    Attributes:
        argument: The parameter's name.
        expected: What it takes, in words.
        got: The type name that was passed.
    """

    def __init__(self, function: str, argument: str, *, expected: str, got: object) -> None:
        self.argument = argument
        self.expected = expected
        self.got = type(got).__name__
        super().__init__(f"{function}() argument {argument!r} takes {expected}, got {self.got}")


class ConfigurationError(EventPatternsError, ValueError):
    """A URL, option or setting is invalid."""


class MissingDependency(ConfigurationError, ImportError):
    """An optional dependency is not installed.

    Attributes:
        extra: The pip extra that installs it.
    """

    def __init__(self, package: str, *, extra: str) -> None:
        self.extra = extra
        super().__init__(
            f"{package!r} is not installed; install it with: pip install 'eventpatterns[{extra}]'"
        )


class InvalidPosition(EventPatternsError, ValueError):
    """A position string that this backend never produced."""

    def __init__(self, position: object, *, expected: str) -> None:
        self.position = position
        super().__init__(f"invalid position {position!r}: expected {expected}")


class GroupNotFound(EventPatternsError, LookupError):
    """A consumer group that was never created."""

    def __init__(self, group: str) -> None:
        self.group = group
        super().__init__(f"consumer group {group!r} does not exist")


class ResyncRequired(EventPatternsError, LookupError):
    """A position cannot be resumed from: the subscriber must resynchronise.

    Reload the state the events feed (or accept the gap), then subscribe from
    ``EARLIEST`` or from now; continuing would silently skip events. Catch this to
    handle both :class:`PositionExpired` and :class:`StalePosition`.

    Attributes:
        position: The position that was asked for.
    """

    def __init__(self, message: str, *, position: str) -> None:
        self.position = position
        super().__init__(message)


class PositionExpired(ResyncRequired):
    """A replay position is older than the history the backend still retains.

    Attributes:
        position: The position that was asked for.
        oldest: The oldest position still retained, or ``None`` if the log is empty.
    """

    def __init__(self, position: str, *, oldest: str | None) -> None:
        self.oldest = oldest
        super().__init__(
            f"resync required: position {position!r} is older than the retained history"
            f" (oldest retained: {oldest!r})",
            position=position,
        )


class StalePosition(ResyncRequired):
    """A position from another incarnation of the log (its epoch differs).

    Positions carry the epoch of the log that made them (Centrifugo's offset + epoch):
    a position remembered from before a memory bus restarted, or from before a Redis
    log was deleted, names events that this log never had.

    Attributes:
        position: The position that was asked for.
        epoch: The epoch of the log as it is now.
    """

    def __init__(self, position: str, *, epoch: str) -> None:
        self.epoch = epoch
        super().__init__(
            f"resync required: position {position!r} belongs to another incarnation of"
            f" the log (its epoch is now {epoch!r})",
            position=position,
        )


class DeadLetterNotFound(EventPatternsError, LookupError):
    """No dead letter with this id exists in the group."""

    def __init__(self, group: str, dead_letter_id: str) -> None:
        self.group = group
        self.dead_letter_id = dead_letter_id
        super().__init__(f"no dead letter {dead_letter_id!r} in group {group!r}")


class JobNotFound(EventPatternsError, LookupError):
    """The store holds no job with this id (never stored, or its record expired).

    Attributes:
        job_id: The id asked for.
    """

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        super().__init__(f"no job {job_id!r}: never submitted, or its record expired")


class UnknownJobKind(EventPatternsError, LookupError):
    """A job of a kind no worker or declaration of this tracker knows.

    Attributes:
        kind: The kind asked for.
        known: The kinds the tracker knows.
    """

    def __init__(self, kind: str, *, known: tuple[str, ...]) -> None:
        self.kind = kind
        self.known = known
        names = ", ".join(repr(k) for k in known[:20]) or "none"
        super().__init__(f"unknown job kind {kind[:200]!r}; known kinds: {names}")


class InvalidJobInput(EventPatternsError, ValueError):
    """A job's input does not validate against its kind's declared model.

    Attributes:
        kind: The job kind.
        errors: The validation errors (pydantic's ``errors()`` shape: ``loc``, ``msg``,
            ``type``), at most 20.
    """

    def __init__(self, kind: str, errors: list[dict[str, object]]) -> None:
        self.kind = kind
        self.errors = errors[:20]
        first = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"  # type: ignore[attr-defined]
            for e in self.errors[:3]
        )
        super().__init__(f"invalid input for job kind {kind[:200]!r}: {first[:500]}")


class JobTimeout(EventPatternsError, TimeoutError):
    """Waiting for a job ended before the job did.

    Attributes:
        job_id: The job.
        state: Its state when the wait ended.
    """

    def __init__(self, job_id: str, *, state: str, timeout: float) -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(f"job {job_id!r} still {state} after waiting {timeout:g} s")


class BlobNotFound(EventPatternsError, LookupError):
    """No blob is stored under this key, or it expired.

    Attributes:
        key: The key asked for.
    """

    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(f"no blob under key {key[:200]!r} (never put, deleted or expired)")


class JobConflict(EventPatternsError, RuntimeError):
    """A job write lost its compare-and-swap, or would create a job that exists.

    Read the job again and decide anew: another worker or request wrote first.

    Attributes:
        job_id: The job.
        expected: The version the write expected to find (``None`` for a create).
        actual: The version stored (``None`` when unknown).
    """

    def __init__(self, job_id: str, *, expected: int | None, actual: int | None) -> None:
        self.job_id = job_id
        self.expected = expected
        self.actual = actual
        if expected is None:
            message = f"job {job_id!r} exists already"
        else:
            message = (
                f"job {job_id!r} changed meanwhile: expected version {expected},"
                f" found {actual}; read it again"
            )
        super().__init__(message)


class EventTooLarge(EventPatternsError, ValueError):
    """An event is larger than the backend accepts.

    Attributes:
        size: The encoded size in bytes.
        limit: The backend's ``max_message_size``.
    """

    def __init__(self, event_id: str, *, size: int, limit: int) -> None:
        self.event_id = event_id
        self.size = size
        self.limit = limit
        super().__init__(f"event {event_id!r} is {size} bytes; the backend accepts at most {limit}")


class SubscriberOverflow(EventPatternsError):
    """A subscriber with ``overflow="disconnect"`` fell further behind than its buffer.

    Attributes:
        position: The last position the subscriber received; resubscribe with
            ``since=position`` to resume without a gap (while history lasts).
    """

    def __init__(self, *, buffer: int, position: str | None) -> None:
        self.buffer = buffer
        self.position = position
        super().__init__(
            f"subscriber fell more than {buffer} events behind and was disconnected;"
            f" resume with since={position!r}"
        )


class EventsMissed(EventPatternsError):
    """Events a subscriber should have received were dropped (a gap in its stream).

    Raised by :meth:`~eventpatterns.bus.Subscription.receive` (and so by ``async for``)
    when the subscriber fell behind its buffer under ``overflow="drop_oldest"``, or the
    bus's reader fell behind the backend's retention. The subscription stays usable:
    the next ``receive()`` returns the first event after the gap.

    Attributes:
        missed: How many matching events were dropped, or ``None`` when unknown.
        after: Position of the last event delivered before the gap; resubscribe with
            ``since=after`` to fetch what was missed, while history lasts.
    """

    def __init__(self, *, missed: int | None, after: str | None) -> None:
        self.missed = missed
        self.after = after
        count = "an unknown number of" if missed is None else str(missed)
        super().__init__(
            f"{count} event(s) were dropped after position {after!r};"
            f" resubscribe with since={after!r} to fetch them while history lasts"
        )


class InvalidState(EventPatternsError, RuntimeError):
    """A call that the object's current state does not allow.

    For example ``receive()`` on a subscription that was not entered yet, or entering
    an :class:`~eventpatterns.bus.EventBus` a second time (websockets' ``InvalidState``).

    Attributes:
        state: The state the object was in, in lower case (``"new"``, ``"live"``...).
    """

    def __init__(self, message: str, *, state: str) -> None:
        self.state = state
        super().__init__(message)


class InvalidJobTransition(InvalidState):
    """A job command that the job's state does not allow.

    Raised by :func:`eventpatterns.jobs.transition`: completing a job that already
    ended, a worker reporting on a job it no longer holds (its lease ran out), a retry
    started before it is due.

    Attributes:
        job_id: The job.
        state: The job's state (``"running"``, ``"succeeded"``...).
        command: The refused command's name (``"Succeed"``, ``"Start"``...).
    """

    def __init__(self, message: str, *, job_id: str, state: str, command: str) -> None:
        self.job_id = job_id
        self.command = command
        super().__init__(message, state=state)


class BusClosed(EventPatternsError, RuntimeError):
    """The bus, consumer or subscription is closed."""


class SubscriptionClosed(BusClosed):
    """A subscription's stream ended: it was closed, or its bus was.

    :meth:`~eventpatterns.bus.Subscription.receive` raises it once everything the
    subscription still held was delivered (at once after the subscription's own
    ``aclose()``); ``async for`` turns it into the end of the loop. It plays the part of
    anyio's ``EndOfStream`` and ``ClosedResourceError``, inside this library's tree.

    Attributes:
        position: The last position delivered; resubscribe with ``since=position`` on a
            new bus to continue (while history lasts).
    """

    def __init__(self, message: str, *, position: str | None) -> None:
        self.position = position
        super().__init__(message)


class BackendUnavailable(EventPatternsError, ConnectionError):
    """The backend cannot be reached; the call did not complete."""


class WebhookFailed(EventPatternsError, ConnectionError):
    """A webhook destination did not accept an event (after its last attempt, or for good).

    Attributes:
        url: The destination.
        status_code: Its last HTTP status (``None``: no answer).
        attempts: Calls made.
    """

    def __init__(self, message: str, *, url: str, status_code: int | None, attempts: int) -> None:
        self.url = url
        self.status_code = status_code
        self.attempts = attempts
        super().__init__(message)


class AuthenticationFailed(EventPatternsError, PermissionError):
    """Credentials are missing, malformed, expired or not accepted.

    Raised by the real-time gateway's authorizers; the gateway answers the connection
    with the ``authentication_failed`` error code (close code 4401).

    Attributes:
        reason: A short machine-readable reason (``"expired"``, ``"bad_signature"``,
            ``"missing"``, ``"unknown_key"``...).
    """

    def __init__(self, message: str, *, reason: str = "invalid") -> None:
        self.reason = reason
        super().__init__(message)


class Forbidden(EventPatternsError, PermissionError):
    """An authenticated principal may not do this (e.g. subscribe to another user's events).

    Attributes:
        principal: The id of the principal that was refused, when known.
    """

    def __init__(self, message: str, *, principal: str | None = None) -> None:
        self.principal = principal
        super().__init__(message)


class ProtocolViolation(EventPatternsError, ValueError):
    """A client frame the real-time gateway refuses (malformed, unknown, out of order).

    Attributes:
        code: The stable error code sent to the client (``"invalid_json"``,
            ``"unknown_type"``...; the protocol reference lists them).
    """

    def __init__(self, message: str, *, code: str) -> None:
        self.code = code
        super().__init__(message)


class InvalidDevice(EventPatternsError, ValueError):
    """A push device registration is malformed: a bad token, endpoint, key or setting.

    Attributes:
        field: The offending field (``"token"``, ``"p256dh"``, ``"time_zone"``...).
        reason: What is wrong with it, in words.
    """

    def __init__(self, reason: str, *, field: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid device {field}: {reason}")


class LimitExceeded(EventPatternsError, ValueError):
    """Over a configured limit: frame size, subscriptions, connections or message rate.

    Attributes:
        limit: The limit's name (``"max_frame_size"``, ``"max_subscriptions"``...).
        value: The configured bound.
    """

    def __init__(self, message: str, *, limit: str, value: float) -> None:
        self.limit = limit
        self.value = value
        super().__init__(message)


class InvalidNotification(EventPatternsError, ValueError):
    """A push message that its provider would refuse, caught before sending.

    Attributes:
        provider: ``"fcm"``, ``"apns"`` or ``"webpush"``.
        field: The offending field (``"data.price"``, ``"collapse_id"``...).
        reason: What is wrong with it, in words.
    """

    def __init__(self, reason: str, *, provider: str, field: str) -> None:
        self.provider = provider
        self.field = field
        self.reason = reason
        super().__init__(f"invalid {provider} message field {field!r}: {reason}")
