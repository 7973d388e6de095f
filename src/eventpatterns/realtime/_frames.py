"""The gateway's wire protocol: client frames parsed, server frames encoded.

Every frame is one JSON object with a ``"type"``; ``docs/realtime-protocol.md`` is the
reference. Parsing is hostile-input safe: the size is checked before the text is
decoded, nesting is bounded, ``NaN``/``Infinity`` and over-long integers are refused,
and every refusal is a :class:`~eventpatterns.errors.ProtocolViolation` whose ``code``
is an :class:`ErrorCode` and whose message names the offending key. Nothing here
raises anything else on client input.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from ..errors import ProtocolViolation

__all__ = [
    "Authenticate",
    "ClientFrame",
    "CloseCode",
    "Dialect",
    "ErrorCode",
    "Ping",
    "Subscribe",
    "Unsubscribe",
    "encode_event",
    "encode_frame",
    "parse_client_frame",
]

#: How the gateway encodes frames for a transport: WebSocket text, or SSE.
Dialect = Literal["ws", "sse"]


class ErrorCode(str, enum.Enum):
    """The stable ``code`` of an ``error`` frame (the message may change, these do not)."""

    INVALID_JSON = "invalid_json"  #: the frame is not JSON text
    INVALID_FRAME = "invalid_frame"  #: not an object, no/unknown-typed key, a bad value
    UNKNOWN_TYPE = "unknown_type"  #: a ``type`` the server does not know
    UNSUPPORTED_DATA = "unsupported_data"  #: a binary frame
    FRAME_TOO_LARGE = "frame_too_large"  #: over ``Limits.max_frame_bytes`` (then close 1009)
    NOT_AUTHENTICATED = "not_authenticated"  #: a frame other than authenticate/ping first
    AUTHENTICATION_FAILED = "authentication_failed"  #: bad credentials (then close 4401)
    INVALID_PATTERN = "invalid_pattern"  #: the pattern or filter does not compile
    FORBIDDEN = "forbidden"  #: the authorization hook refused the subscription
    DUPLICATE_ID = "duplicate_id"  #: a subscription id already in use on the connection
    UNKNOWN_SUBSCRIPTION = "unknown_subscription"  #: unsubscribe of an id not subscribed
    TOO_MANY_SUBSCRIPTIONS = "too_many_subscriptions"  #: over ``Limits.max_subscriptions``
    RATE_LIMITED = "rate_limited"  #: over ``Limits.rate``; the frame was ignored
    INVALID_POSITION = "invalid_position"  #: a ``since`` that is not a position string
    INTERNAL_ERROR = "internal_error"  #: the server failed (a bug, or the bus is down)

    def __str__(self) -> str:
        return self.value


class CloseCode(enum.IntEnum):
    """WebSocket close codes the gateway uses (RFC 6455 section 7.4; 4000-4999 private)."""

    NORMAL = 1000
    GOING_AWAY = 1001  #: the gateway is shutting down
    MESSAGE_TOO_BIG = 1009  #: a frame over ``Limits.max_frame_bytes``
    INTERNAL_ERROR = 1011
    AUTHENTICATION_FAILED = 4401  #: bad, expired or refused credentials
    REVOKED = 4403  #: the principal's access was revoked
    AUTHENTICATION_TIMEOUT = 4408  #: not authenticated within ``Limits.auth_timeout``
    SLOW_CONSUMER = 4409  #: send buffer over ``Limits.max_buffered``, policy ``"close"``
    TOO_MANY = 4429  #: connections per principal, or the message rate, exceeded


# -- client frames ---------------------------------------------------------------------

_ID: Final = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
_CHANNEL: Final = re.compile(r"[A-Za-z0-9_.:/@+=\-]{1,200}")  # the Presence contract's names
_MAX_POSITION: Final = 256
_MAX_TOKEN: Final = 16 * 1024
_NO_PAYLOAD: Final = object()


@dataclass(frozen=True, slots=True)
class Authenticate:
    """``{"type":"authenticate","token":"..."}``: first frame, or a token refresh."""

    token: str


@dataclass(frozen=True, slots=True)
class Subscribe:
    """A ``subscribe`` frame (``pattern`` or ``filter``, ``since``, ``presence``, ``watch``)."""

    id: str
    pattern: dict[str, Any] | None = None
    filter: dict[str, Any] | None = None
    since: str | None = None
    presence: str | None = None
    watch: bool = False


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    """``{"type":"unsubscribe","id":...}``."""

    id: str


@dataclass(frozen=True, slots=True)
class Ping:
    """``{"type":"ping","payload":...?}``; ``has_payload`` tells an absent payload from null."""

    payload: Any = None
    has_payload: bool = False


ClientFrame = Authenticate | Subscribe | Unsubscribe | Ping


def _violation(code: ErrorCode, message: str) -> ProtocolViolation:
    return ProtocolViolation(message, code=code.value)


def _brief(value: object, limit: int = 60) -> str:
    """An ASCII ``repr`` cut to ``limit`` characters, safe to quote in a message."""
    text = ascii(value)
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _too_deep(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _loads(text: str | bytes, max_bytes: int, max_depth: int) -> Any:
    size = len(text)
    # A str of n characters is at least n bytes of UTF-8 and at most 4n: checking the
    # length first refuses a huge frame without encoding it.
    if isinstance(text, str) and max_bytes < size * 4 and size <= max_bytes:
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise _violation(
            ErrorCode.FRAME_TOO_LARGE, f"the frame is over the limit of {max_bytes} bytes"
        )
    try:
        # The size bound keeps parsing cheap; a frame nested deeper than the decoder's
        # recursion limit raises RecursionError, caught with the rest.
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise _violation(
            ErrorCode.INVALID_JSON, f"the frame is not valid JSON ({_brief(str(exc), 100)})"
        ) from None
    if _too_deep(value, max_depth):
        raise _violation(ErrorCode.INVALID_FRAME, f"the frame nests deeper than {max_depth} levels")
    return value


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = obj.get(key)
    if value is not None and not isinstance(value, kind):
        raise _violation(ErrorCode.INVALID_FRAME, f"{key!r} must be {what}, got {_brief(value)}")
    return value


def _subscription_id(obj: dict[str, Any]) -> str:
    value = obj.get("id")
    if not isinstance(value, str) or _ID.fullmatch(value) is None:
        raise _violation(
            ErrorCode.INVALID_FRAME,
            f"'id' must be 1-128 characters of A-Z a-z 0-9 _ . : -, got {_brief(value)}",
        )
    return value


def parse_client_frame(
    text: str | bytes, *, max_bytes: int = 64 * 1024, max_depth: int = 32
) -> ClientFrame:
    """Parse and validate one client frame.

    Args:
        text: The frame as received (a text frame's ``str``, or its UTF-8 ``bytes``).
        max_bytes: Larger frames are refused before they are parsed.
        max_depth: Deepest nesting of objects and arrays allowed.

    Returns:
        One of :class:`Authenticate`, :class:`Subscribe`, :class:`Unsubscribe`,
        :class:`Ping`.

    Raises:
        ProtocolViolation: The frame is refused; ``code`` is an :class:`ErrorCode`
            value and the message names what was wrong. Nothing else is raised.

    Example:
        >>> parse_client_frame('{"type":"unsubscribe","id":"s1"}')
        Unsubscribe(id='s1')
    """
    obj = _loads(text, max_bytes, max_depth)
    if not isinstance(obj, dict):
        raise _violation(
            ErrorCode.INVALID_FRAME, f"a frame is a JSON object, got {type(obj).__name__}"
        )
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise _violation(ErrorCode.INVALID_FRAME, f"'type' must be a string, got {_brief(kind)}")
    if kind == "subscribe":
        sid = _subscription_id(obj)
        pattern = _get(obj, "pattern", dict, "an object (an EventBridge event pattern)")
        spec = _get(obj, "filter", dict, "an object (AppSync filter groups)")
        if pattern is not None and spec is not None:
            raise _violation(ErrorCode.INVALID_FRAME, "give 'pattern' or 'filter', not both")
        since = obj.get("since")
        if since is not None and (
            not isinstance(since, str) or not 0 < len(since) <= _MAX_POSITION
        ):
            raise _violation(
                ErrorCode.INVALID_POSITION,
                f"'since' must be a position string of 1-{_MAX_POSITION} characters,"
                f" got {_brief(since)}",
            )
        presence = obj.get("presence")
        if presence is not None and (
            not isinstance(presence, str) or _CHANNEL.fullmatch(presence) is None
        ):
            raise _violation(
                ErrorCode.INVALID_FRAME,
                "'presence' must be a channel name of 1-200 characters of"
                f" A-Z a-z 0-9 _ . : / @ + = -, got {_brief(presence)}",
            )
        watch = obj.get("watch", False)
        if not isinstance(watch, bool):
            raise _violation(
                ErrorCode.INVALID_FRAME, f"'watch' must be true or false, got {_brief(watch)}"
            )
        if watch and presence is None:
            raise _violation(
                ErrorCode.INVALID_FRAME, "'watch' needs 'presence': the channel to watch"
            )
        return Subscribe(sid, pattern, spec, since, presence, watch)
    if kind == "unsubscribe":
        return Unsubscribe(_subscription_id(obj))
    if kind == "ping":
        if "payload" in obj:
            return Ping(obj["payload"], True)
        return Ping()
    if kind == "authenticate":
        token = obj.get("token")
        if not isinstance(token, str) or not 0 < len(token) <= _MAX_TOKEN:
            raise _violation(
                ErrorCode.INVALID_FRAME,
                f"'token' must be a non-empty string of at most {_MAX_TOKEN} characters",
            )
        return Authenticate(token)
    raise _violation(
        ErrorCode.UNKNOWN_TYPE,
        f"unknown frame type {_brief(kind)}; expected authenticate, subscribe, unsubscribe or ping",
    )


# -- server frames ---------------------------------------------------------------------


def encode_frame(frame: Mapping[str, Any], dialect: Dialect = "ws") -> str:
    """Encode a server control frame for a transport.

    ``ws``: the compact JSON object (ASCII-only, so no client-sent text can make it
    invalid UTF-8). ``sse``: an SSE message whose ``event`` is the frame's type and
    whose ``data`` is that JSON (with ``id:`` set to the frame's ``position`` for
    ``subscribed``, so that ``Last-Event-ID`` resumes from there).
    """
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=True)
    if dialect == "ws":
        return text
    position = frame.get("position")
    head = f"id: {position}\n" if frame.get("type") == "subscribed" and position else ""
    return f"{head}event: {frame['type']}\ndata: {text}\n\n"


def encode_event(dialect: Dialect, subscription: str, position: str, event_json: str) -> str:
    """Encode an ``event`` frame around the CloudEvents JSON text of the event.

    The event's JSON (``Event.to_json()``) is spliced in as it is: encoded once per
    event, not once per recipient. ``subscription`` must be a valid id (the parser
    checked it: no character needs escaping); ``position`` is JSON-escaped.

    For ``sse`` the message is ``id: <position>``, ``event: event`` and the event
    JSON as ``data`` (compact JSON has no line breaks).
    """
    if dialect == "ws":
        return (
            f'{{"type":"event","id":"{subscription}","position":{json.dumps(position)},'
            f'"event":{event_json}}}'
        )
    return f"id: {position}\nevent: event\ndata: {event_json}\n\n"
