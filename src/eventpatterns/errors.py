"""Every error eventpatterns raises, in one tree.

Each error also inherits the builtin exception a caller would already catch, so
``except ValueError`` keeps working around code that validates input::

    EventPatternsError
    ├── InvalidEvent              (ValueError)     an event that breaks CloudEvents 1.0
    ├── InvalidPattern            (ValueError)     a filter pattern that cannot be compiled
    ├── ConfigurationError        (ValueError)     a bad URL, option or missing extra
    │   └── MissingDependency     (ImportError)    ``pip install 'eventpatterns[<extra>]'``
    ├── InvalidPosition           (ValueError)     not a position of this backend
    ├── PositionExpired           (LookupError)    ``since=`` is older than retained history
    ├── GroupNotFound             (LookupError)    a consumer group that was never created
    ├── DeadLetterNotFound        (LookupError)    an unknown dead-letter id
    ├── EventTooLarge             (ValueError)     over the backend's ``max_message_size``
    ├── SubscriberOverflow                         a subscriber fell behind its buffer
    ├── BusClosed                 (RuntimeError)   the bus or subscription was closed
    └── BackendUnavailable        (ConnectionError) the backend cannot be reached
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "BusClosed",
    "ConfigurationError",
    "DeadLetterNotFound",
    "EventPatternsError",
    "EventTooLarge",
    "GroupNotFound",
    "InvalidEvent",
    "InvalidPattern",
    "InvalidPosition",
    "MissingDependency",
    "PositionExpired",
    "SubscriberOverflow",
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


class PositionExpired(EventPatternsError, LookupError):
    """A replay position is older than the history the backend still retains.

    The subscriber must resynchronise (reload its state, then subscribe from
    ``oldest`` or from now); continuing would silently skip events.

    Attributes:
        position: The position that was asked for.
        oldest: The oldest position still retained, or ``None`` if the log is empty.
    """

    def __init__(self, position: str, *, oldest: str | None) -> None:
        self.position = position
        self.oldest = oldest
        super().__init__(
            f"resync required: position {position!r} is older than the retained history"
            f" (oldest retained: {oldest!r})"
        )


class DeadLetterNotFound(EventPatternsError, LookupError):
    """No dead letter with this id exists in the group."""

    def __init__(self, group: str, dead_letter_id: str) -> None:
        self.group = group
        self.dead_letter_id = dead_letter_id
        super().__init__(f"no dead letter {dead_letter_id!r} in group {group!r}")


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


class BusClosed(EventPatternsError, RuntimeError):
    """The bus, consumer or subscription is closed."""


class BackendUnavailable(EventPatternsError, ConnectionError):
    """The backend cannot be reached; the call did not complete."""
