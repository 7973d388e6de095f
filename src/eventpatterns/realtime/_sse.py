"""Server-sent events framing: pure functions from values to bytes (no I/O).

The format is the WHATWG HTML Living Standard, section 9.2 "Server-sent events"
(https://html.spec.whatwg.org/multipage/server-sent-events.html). A message is a
block of ``field: value`` lines ended by a blank line; ``data`` may repeat, and a
client joins the repeated values with LF. Lines end with LF here (the standard
accepts CRLF, LF or CR; one of them is enough and LF is the shortest).

Two consequences of the format, both enforced here rather than left to surprise
a browser:

* ``data`` cannot carry a CR: a client treats CR, LF and CRLF alike as line ends
  (section 9.2.6), so a line break in ``data`` is sent as a ``data`` line each and
  arrives as LF. The gateway only sends JSON, which has no raw line breaks.
* ``event``, ``id`` and comments are one line each: a line break in them would
  start a new field (an injection), so it is refused with ``ValueError``; so is a
  NUL in ``id`` (a client ignores such an id, section 9.2.6 "id").

Text that cannot be encoded as UTF-8 (a lone surrogate) is refused with
``ValueError``: the stream is UTF-8 by definition (section 9.2.5).
"""

from __future__ import annotations

import re

__all__ = [
    "CONTENT_TYPE",
    "MAX_LAST_EVENT_ID",
    "comment",
    "encode",
    "encode_text",
    "parse_last_event_id",
]

CONTENT_TYPE = "text/event-stream; charset=utf-8"
"""The ``Content-Type`` of an event stream (the charset is always UTF-8)."""

MAX_LAST_EVENT_ID = 256
"""The longest ``Last-Event-ID`` accepted; longer is a bad request, not a position."""

# CRLF first so that it splits once, not into an empty line between CR and LF.
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ONE_LINE_FORBIDDEN = re.compile(r"[\r\n]")


def _one_line(value: str, what: str) -> str:
    if _ONE_LINE_FORBIDDEN.search(value):
        raise ValueError(f"an SSE {what} cannot contain a line break (CR or LF)")
    return value


def encode_text(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,  # noqa: A002 - the SSE field is named id
    retry: int | None = None,
) -> str:
    """Format one SSE message as text (:func:`encode` returns it as UTF-8 bytes).

    Args:
        data: The payload; each line becomes a ``data:`` line (line breaks arrive as LF).
        event: The ``event`` field (the client's event type); ``None`` for ``message``.
        id: The ``id`` field: the client sends it back as ``Last-Event-ID`` on reconnect.
        retry: The ``retry`` field: the client's reconnection delay in milliseconds.

    Returns:
        The message, ending with the blank line that dispatches it.

    Raises:
        ValueError: A line break in ``event`` or ``id``, a NUL in ``id``, or a
            negative ``retry``.
        TypeError: ``data`` is not a ``str`` or ``retry`` not an ``int``.
    """
    if not isinstance(data, str):
        raise TypeError(f"SSE data must be str, not {type(data).__name__}")
    parts: list[str] = []
    if event is not None:
        parts.append(f"event: {_one_line(event, 'event name')}\n")
    if id is not None:
        if "\0" in id:
            raise ValueError("an SSE id cannot contain NUL (a client would ignore it)")
        parts.append(f"id: {_one_line(id, 'id')}\n")
    if retry is not None:
        if isinstance(retry, bool) or not isinstance(retry, int):
            raise TypeError(f"SSE retry must be an int, not {type(retry).__name__}")
        if retry < 0:
            raise ValueError("SSE retry must be a non-negative number of milliseconds")
        parts.append(f"retry: {retry}\n")
    # "data: " with the space: a client strips exactly one leading space, so a line
    # that itself starts with a space arrives intact.
    parts.extend(f"data: {line}\n" for line in _LINE_BREAK.split(data))
    parts.append("\n")
    return "".join(parts)


def encode(
    data: str,
    *,
    event: str | None = None,
    id: str | None = None,  # noqa: A002 - the SSE field is named id
    retry: int | None = None,
) -> bytes:
    r"""Encode one SSE message as UTF-8 bytes.

    Example:
        ```python
        from eventpatterns.realtime._sse import encode

        assert encode('{"a":1}', event="event", id="42") == (
            b'event: event\nid: 42\ndata: {"a":1}\n\n'
        )
        ```

    Raises:
        ValueError: As :func:`encode_text`, and for text that is not valid UTF-8
            (a lone surrogate).
    """
    text = encode_text(data, event=event, id=id, retry=retry)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"SSE text must be valid Unicode (a lone surrogate at {exc.start})"
        ) from exc


def comment(text: str = "") -> bytes:
    """Encode an SSE comment line (``: text``), ignored by clients; used for keep-alives.

    Raises:
        ValueError: A line break in ``text`` or a lone surrogate.
    """
    try:
        return f": {_one_line(text, 'comment')}\n\n".encode()
    except UnicodeEncodeError as exc:
        raise ValueError("an SSE comment must be valid Unicode") from exc


def parse_last_event_id(value: str | None) -> str | None:
    """Read a ``Last-Event-ID`` header (or ``?since=``) value: the position to resume after.

    An absent or empty value means "no resume" (a browser sends the header only once
    it has seen an id; an empty ``id:`` line resets it to empty). The value is opaque
    here: the gateway checks that it is a position of its log.

    Args:
        value: The raw header value, as decoded by the server (latin-1 for ASGI).

    Returns:
        The position, without surrounding spaces and tabs, or ``None``.

    Raises:
        ValueError: Longer than :data:`MAX_LAST_EVENT_ID` or holding a control character.
    """
    if value is None:
        return None
    value = value.strip(" \t")
    if not value:
        return None
    if len(value) > MAX_LAST_EVENT_ID:
        raise ValueError(
            f"Last-Event-ID is {len(value)} characters long; at most {MAX_LAST_EVENT_ID}"
        )
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError("Last-Event-ID holds a control character")
    return value
