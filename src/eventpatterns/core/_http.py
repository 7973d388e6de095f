"""The CloudEvents HTTP protocol binding 1.0.2: binary, structured and batch modes.

https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/http-protocol-binding.md
Sans-I/O: functions turn an :class:`~eventpatterns.core.Event` into ``(headers, body)``
and back, for any HTTP client or server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote, unquote

from ..errors import ArgumentTypeError, ConfigurationError, InvalidEvent
from ._event import Event, events_to_json_batch
from ._rules import RESERVED, format_time, is_json_content_type, loads, shown

__all__ = [
    "BATCH_CONTENT_TYPE",
    "STRUCTURED_CONTENT_TYPE",
    "batch_from_http",
    "events_to_http_batch",
    "from_http",
    "to_http",
]

E = TypeVar("E", bound=Event)

#: Media type of a structured-mode JSON event (JSON event format, section 3).
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"
#: Media type of a JSON batch of events (JSON event format, section 4).
BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"
_CE = "ce-"
# Section 3.1.3.2: space, double-quote, percent and everything outside printable
# ASCII (U+0021-U+007E) must be percent-encoded (as UTF-8); the rest may stay as is.
_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"%')


def _header_value(value: str | int | bool) -> str:
    # Section 3.1.3.2 and the spec's "Type System": canonical string forms.
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe=_SAFE)


def _media_type(content_type: str | None) -> str:
    return "" if content_type is None else content_type.split(";", 1)[0].strip().lower()


def to_http(
    event: Event, mode: Literal["binary", "structured"] = "binary"
) -> tuple[dict[str, str], bytes]:
    """Encode an event as an HTTP message in binary or structured content mode.

    Binary mode (section 3.1) sends every attribute as a ``ce-<name>`` header,
    percent-encoded, ``datacontenttype`` as ``content-type``, and ``data`` as the body:
    JSON-encoded when the content type is JSON (or absent), raw otherwise (``str`` data
    as UTF-8). ``bytes`` data without a content type are sent as
    ``application/octet-stream`` so the receiver does not mistake them for JSON.
    Structured mode (section 3.2) sends :meth:`Event.to_json` as
    ``application/cloudevents+json``.

    Args:
        event: The event to encode.
        mode: ``"binary"`` or ``"structured"``.

    Returns:
        ``(headers, body)``, header names in lower case.

    Raises:
        ConfigurationError: Unknown ``mode`` (a ``ValueError``).

    Example:
        >>> headers, body = to_http(Event(type="t", source="/s", id="1", data=[1]))
        >>> headers["ce-id"], body
        ('1', b'[1]')
    """
    if mode == "structured":
        return {"content-type": STRUCTURED_CONTENT_TYPE}, event.to_json()
    if mode != "binary":
        raise ConfigurationError(f"mode must be 'binary' or 'structured', got {shown(mode)}")
    headers = {
        "ce-specversion": event.specversion,
        "ce-id": _header_value(event.id),
        "ce-source": _header_value(event.source),
        "ce-type": _header_value(event.type),
    }
    if event.subject is not None:
        headers["ce-subject"] = _header_value(event.subject)
    if event.time is not None:
        headers["ce-time"] = _header_value(format_time(event.time))
    if event.dataschema is not None:
        headers["ce-dataschema"] = _header_value(event.dataschema)
    for name, value in event.extensions.items():
        headers[_CE + name] = _header_value(value)
    content_type = event.datacontenttype
    data = event.data
    if isinstance(data, bytes):
        body = data
        if content_type is None:
            content_type = "application/octet-stream"
    elif data is None:
        body = b""
    elif isinstance(data, str) and not is_json_content_type(content_type):
        body = data.encode()
    else:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    if content_type is not None:
        headers["content-type"] = content_type
    return headers, body


def _checked_body(function: str, body: Any) -> bytes:
    if isinstance(body, bytes):
        return body
    if isinstance(body, (bytearray, memoryview)):
        return bytes(body)
    if isinstance(body, str):
        return body.encode("utf-8", "surrogatepass")  # surrogates then fail as JSON
    raise ArgumentTypeError(function, "body", expected="bytes", got=body)


def _content_type(function: str, headers: Any) -> str | None:
    """Return the ``Content-Type`` of ``headers``, looked up case-insensitively."""
    if not isinstance(headers, Mapping):
        raise ArgumentTypeError(function, "headers", expected="a mapping", got=headers)
    found: str | None = None
    for raw_name, value in headers.items():
        if isinstance(raw_name, str) and raw_name.lower() == "content-type":
            if not isinstance(value, str):
                kind = type(value).__name__
                reason = f"the Content-Type header must be a string, got {kind}"
                raise InvalidEvent(reason, attribute="datacontenttype")
            if found is not None and value != found:
                raise InvalidEvent("two Content-Type headers disagree", attribute="datacontenttype")
            found = value
    return found


def _binary_attributes(headers: Mapping[Any, Any]) -> dict[str, Any]:
    """Read the ``ce-*`` headers of a binary-mode message (section 3.1.3)."""
    attrs: dict[str, Any] = {}
    for raw_name, value in headers.items():
        if not isinstance(raw_name, str):
            kind = type(raw_name).__name__
            raise InvalidEvent(f"header names must be strings, got {kind} {shown(raw_name)}")
        name = raw_name.lower()
        if not name.startswith(_CE):
            continue
        attribute = name[len(_CE) :]
        if not attribute:
            raise InvalidEvent(
                f"the header {shown(raw_name)} names no attribute (an empty extension name)",
                attribute=attribute,
            )
        if attribute in attrs:
            raise InvalidEvent("appears in two headers", attribute=attribute)
        if isinstance(value, str):
            try:
                attrs[attribute] = unquote(value, errors="strict")
            except UnicodeDecodeError:
                raise InvalidEvent(
                    "header value is not percent-encoded UTF-8", attribute=attribute
                ) from None
        elif isinstance(value, int) and attribute not in RESERVED:
            # cloudevents 1.x to_binary() writes integer and boolean extensions as such.
            attrs[attribute] = value
        else:
            kind = type(value).__name__
            raise InvalidEvent(f"header value must be a string, got {kind}", attribute=attribute)
    return attrs


def from_http(cls: type[E], headers: Mapping[str, Any], body: bytes) -> E:
    """Decode an HTTP message holding one event, in binary or structured mode.

    The mode is told by ``Content-Type`` alone: ``application/cloudevents+json`` is
    structured, and the body carries the whole event (section 3.2), so ``ce-*``
    headers are not read; anything else is binary, with attributes in ``ce-*``
    headers (names matched case-insensitively, values percent-decoded; ``int`` and
    ``bool`` extension values kept as they are). In binary mode a body with a JSON
    content type (or none) is parsed as JSON; any other content type gives ``bytes``
    data; an empty body gives no data.

    Args:
        cls: The event class to build (:class:`Event` or a subclass).
        headers: The HTTP headers.
        body: The raw body (a ``str`` is taken as its UTF-8 encoding).

    Raises:
        InvalidEvent: The message is a batch or another event format, a required
            ``ce-*`` header is missing, a header is repeated, empty-named or not
            UTF-8, or the body is not JSON although the content type says it is
            (``attribute="data"``).
        ArgumentTypeError: ``headers`` is not a mapping or ``body`` not bytes.
    """
    content_type = _content_type("Event.from_http", headers)
    body = _checked_body("Event.from_http", body)
    media = _media_type(content_type)
    if media == STRUCTURED_CONTENT_TYPE:
        return cls.from_json(body)  # type: ignore[return-value]
    if media == BATCH_CONTENT_TYPE:
        raise InvalidEvent("the message is a batch; decode it with Event.batch_from_http")
    if media.startswith("application/cloudevents"):
        raise InvalidEvent(f"unsupported structured event format {shown(media)}")
    attrs = _binary_attributes(headers)
    if "specversion" not in attrs:
        raise InvalidEvent(
            "is required but missing: no ce-specversion header, and the content type is"
            f" not {STRUCTURED_CONTENT_TYPE}",
            attribute="specversion",
        )
    for name in ("data", "data_base64", "datacontenttype"):
        if name in attrs:
            raise InvalidEvent(f"ce-{name} is not a valid header in binary mode", attribute=name)
    attrs["datacontenttype"] = content_type
    return cls._from_attributes(attrs, _binary_data(body, content_type))  # type: ignore[return-value]


def _binary_data(body: bytes, content_type: str | None) -> Any:
    if not body:
        return None
    if content_type is None:
        # No Content-Type: JSON is the format's default, but a body that is not JSON
        # is kept as opaque bytes (RFC 9110 section 8.3: assume octet-stream).
        try:
            return loads(body, attribute="data")
        except InvalidEvent:
            return body
    if is_json_content_type(content_type):
        try:
            return loads(body, attribute="data")
        except InvalidEvent as exc:
            raise InvalidEvent(
                f"body is not valid JSON although the content type is {shown(content_type)}"
                f" ({exc.reason})",
                attribute="data",
            ) from None
    return body


def events_to_http_batch(events: Iterable[Event]) -> tuple[dict[str, str], bytes]:
    """Encode events in batched content mode (section 3.3), ``application/cloudevents-batch+json``.

    Raises:
        ArgumentTypeError: An item of ``events`` is not an :class:`Event`.

    Example:
        >>> headers, body = events_to_http_batch([])
        >>> headers["content-type"], body
        ('application/cloudevents-batch+json', b'[]')
    """
    return {"content-type": BATCH_CONTENT_TYPE}, events_to_json_batch(events)


def batch_from_http(cls: type[E], headers: Mapping[str, Any], body: bytes) -> list[E]:
    """Decode an HTTP message in batched content mode into a list of events.

    Raises:
        InvalidEvent: The content type is not ``application/cloudevents-batch+json``,
            the body is not a JSON array, or one of its events is invalid (the message
            starts with the index of that event).
        ArgumentTypeError: ``headers`` is not a mapping or ``body`` not bytes.
    """
    content_type = _content_type("Event.batch_from_http", headers)
    body = _checked_body("Event.batch_from_http", body)
    if _media_type(content_type) != BATCH_CONTENT_TYPE:
        raise InvalidEvent(
            f"a batch must have content type {BATCH_CONTENT_TYPE}, got {shown(content_type)}"
        )
    items = loads(body, attribute=None)
    if not isinstance(items, list):
        raise InvalidEvent(f"a batch must be a JSON array, got {type(items).__name__}")
    events: list[E] = []
    for index, item in enumerate(items):
        try:
            events.append(cls.from_dict(item))  # type: ignore[arg-type]
        except InvalidEvent as exc:
            raise InvalidEvent(f"event [{index}]: {exc.reason}", attribute=exc.attribute) from None
    return events
