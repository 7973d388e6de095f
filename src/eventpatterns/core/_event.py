"""The CloudEvents 1.0 envelope every eventpatterns message travels in.

Implements the attribute rules of the CloudEvents 1.0.2 specification
(https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md) and its JSON
event format (``json-format.md``): structured mode, ``data`` vs ``data_base64``.
The HTTP binding lives in ``_http.py`` and the SDK bridge in ``_sdk.py``; the
methods here delegate to them.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import InvalidEvent
from ._ids import new_id

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Event", "format_time", "is_json_content_type", "parse_time"]

#: Attribute names defined by the spec; extensions may not reuse them.
CORE_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
_RESERVED = CORE_ATTRIBUTES | {"data", "data_base64"}
_REQUIRED = ("specversion", "id", "source", "type")
_OPTIONAL_STRINGS = ("subject", "datacontenttype", "dataschema")
# Spec section "Attribute Naming Convention": lower-case a-z and 0-9, at most 20 characters.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
_INT32 = (-(2**31), 2**31 - 1)
# Spec section "Type System", String: control characters (U+0000-U+001F, U+007F-U+009F),
# surrogates and Unicode noncharacters MUST NOT be used.
_FORBIDDEN_CHARS = re.compile(
    "[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(p | 0xFFFE)}{chr(p | 0xFFFF)}" for p in range(0, 0x110000, 0x10000))
    + "]"
)
# RFC 3339 section 5.6 date-time; fractions beyond microseconds are truncated.
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)
_MAX_DEPTH = 500
_JSON_SCALARS = frozenset({int, bool, type(None)})
_SURROGATE = re.compile("[\ud800-\udfff]")

ExtensionValue = str | int | bool


def is_json_content_type(content_type: str | None) -> bool:
    """Tell whether a media type carries JSON (absent, ``application/json``, ``*/*+json``)."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def format_time(value: datetime) -> str:
    """Format a timestamp as RFC 3339, with ``Z`` for UTC."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def parse_time(value: str) -> datetime:
    """Parse an RFC 3339 timestamp (``2024-05-01T12:00:00.5+02:00``) into an aware datetime.

    Raises:
        InvalidEvent: ``value`` is not an RFC 3339 date-time with an offset; the
            error names the ``time`` attribute.
    """
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidEvent(
            f"{value!r} is not an RFC 3339 timestamp with a UTC offset", attribute="time"
        )
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    try:
        if zulu:
            tz = timezone.utc
        else:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((frac or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError as exc:
        raise InvalidEvent(
            f"{value!r} is not a valid timestamp ({exc})", attribute="time"
        ) from None


def _check_string(value: str, attribute: str) -> str:
    if not value:
        raise InvalidEvent("must be a non-empty string", attribute=attribute)
    if value.isascii() and value.isprintable():  # the common case, checked at C speed
        return value
    bad = _FORBIDDEN_CHARS.search(value)
    if bad is not None:
        raise InvalidEvent(
            f"contains the character U+{ord(bad.group()):04X}, which CloudEvents strings"
            " must not use (control characters, surrogates, noncharacters)",
            attribute=attribute,
        )
    return value


def _check_text(value: str) -> None:
    # RFC 8259 section 8.2: unpaired surrogates cannot be encoded as UTF-8 JSON text.
    if not value.isascii() and _SURROGATE.search(value):
        raise InvalidEvent(f"{value!r} contains an unpaired surrogate", attribute="data")


def _check_json(value: Any, depth: int = 0) -> None:
    """Reject anything ``json.dumps(allow_nan=False)`` would refuse, without encoding it.

    Walking the value is several times cheaper than serialising it. It also refuses
    tuples (they would come back as lists, so the event would not round-trip) and
    strings with unpaired surrogates (they cannot be written as UTF-8).
    """
    kind = type(value)
    if kind in _JSON_SCALARS:
        return
    if kind is str:
        _check_text(value)
        return
    if kind is dict or kind is list:
        if depth >= _MAX_DEPTH:
            raise InvalidEvent(f"is nested deeper than {_MAX_DEPTH} levels", attribute="data")
        if kind is dict:
            for key, item in value.items():
                if not isinstance(key, str):
                    kind_name = type(key).__name__
                    reason = f"object keys must be strings, got {kind_name} {key!r}"
                    raise InvalidEvent(reason, attribute="data")
                _check_text(key)
                if type(item) not in _JSON_SCALARS:
                    _check_json(item, depth + 1)
        else:
            for item in value:
                if type(item) not in _JSON_SCALARS:
                    _check_json(item, depth + 1)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidEvent(f"{value!r} is not a JSON number", attribute="data")
        return
    if isinstance(value, str):  # subclasses such as StrEnum encode as plain strings
        _check_text(value)
        return
    if isinstance(value, int):  # IntEnum and friends
        return
    if isinstance(value, (dict, list)):
        _check_json(dict(value) if isinstance(value, dict) else list(value), depth)
        return
    raise InvalidEvent(
        f"must be a JSON value (dict, list, str, int, float, bool, None) or bytes,"
        f" got {kind.__name__}",
        attribute="data",
    )


def _validated(fields: dict[str, Any]) -> dict[str, Any]:
    """Check every CloudEvents rule; return the field values in declaration order."""
    for name in ("id", "source", "type"):
        value = fields[name]
        if not isinstance(value, str):
            raise InvalidEvent(f"must be a string, got {type(value).__name__}", attribute=name)
        _check_string(value, name)
    for name in ("subject", "datacontenttype", "dataschema"):
        value = fields[name]
        if value is not None:
            if not isinstance(value, str):
                kind = type(value).__name__
                raise InvalidEvent(f"must be a string, got {kind}", attribute=name)
            _check_string(value, name)
    specversion = fields["specversion"]
    if specversion != "1.0":
        raise InvalidEvent(
            f"must be '1.0' (this is a CloudEvents 1.0 implementation), got {specversion!r}",
            attribute="specversion",
        )
    time = fields["time"]
    if time is not None:
        if not isinstance(time, datetime):
            kind = type(time).__name__
            raise InvalidEvent(
                f"must be a datetime or RFC 3339 string, got {kind}", attribute="time"
            )
        offset = time.utcoffset()
        if offset is None:
            reason = "must be timezone-aware (RFC 3339 requires an offset)"
            raise InvalidEvent(reason, attribute="time")
        if offset.seconds % 60 or offset.microseconds:
            # RFC 3339 offsets have minute precision; keep the instant, state it in UTC.
            time = time.astimezone(timezone.utc)
    data = fields["data"]
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(data, bytes):
        content_type = fields["datacontenttype"]
        if content_type is not None and is_json_content_type(content_type):
            _check_json_bytes(data, content_type)
    else:
        _check_json(data)
    return {
        "id": fields["id"],
        "source": fields["source"],
        "specversion": specversion,
        "type": fields["type"],
        "datacontenttype": fields["datacontenttype"],
        "dataschema": fields["dataschema"],
        "subject": fields["subject"],
        "time": time,
        "data": data,
        "extensions": _check_extensions(fields["extensions"]),
    }


class Event(BaseModel):
    """One CloudEvents 1.0 event: immutable, validated, JSON-serialisable.

    Every constructor and parser raises :class:`~eventpatterns.errors.InvalidEvent`
    (a ``ValueError``) naming the attribute and the rule it breaks.

    Args:
        type: What happened, e.g. ``"com.example.order.created"`` (required).
        source: Who it happened to, a URI-reference such as ``"/shop/orders"`` (required).
        data: The payload: any JSON value, or ``bytes``. Bytes with a JSON
            ``datacontenttype`` must hold a UTF-8 JSON document.
        id: Unique within ``source``; a new time-sortable UUIDv7 by default.
        subject: The subject within the source (e.g. an order id).
        time: When it happened (timezone-aware ``datetime`` or RFC 3339 string);
            now by default.
        datacontenttype: Media type of ``data`` (``application/json`` when absent).
        dataschema: URI of the schema ``data`` adheres to.
        extensions: Extension attributes; names are ``[a-z0-9]{1,20}``, values
            ``str``, ``int`` (32-bit) or ``bool``.
        specversion: Always ``"1.0"``.

    Raises:
        InvalidEvent: An attribute breaks a CloudEvents rule.

    Example:
        >>> e = Event(type="order.created", source="/shop", data={"id": 7})
        >>> Event.from_json(e.to_json()) == e
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    id: str
    source: str
    specversion: str
    type: str
    datacontenttype: str | None = None
    dataschema: str | None = None
    subject: str | None = None
    time: datetime | None = None
    data: Any = None
    extensions: dict[str, ExtensionValue] = {}

    def __init__(
        self,
        *,
        type: str,  # noqa: A002 - the CloudEvents attribute is called "type"
        source: str,
        data: Any = None,
        id: str | None = None,  # noqa: A002 - the CloudEvents attribute is called "id"
        subject: str | None = None,
        time: datetime | str | None = None,
        datacontenttype: str | None = None,
        dataschema: str | None = None,
        extensions: Mapping[str, ExtensionValue] | None = None,
        specversion: str = "1.0",
    ) -> None:
        if time is None:
            time = datetime.now(timezone.utc)
        elif isinstance(time, str):
            time = parse_time(time)
        self._validate_into(
            id=new_id() if id is None else id,
            source=source,
            specversion=specversion,
            type=type,
            datacontenttype=datacontenttype,
            dataschema=dataschema,
            subject=subject,
            time=time,
            data=data,
            extensions={} if extensions is None else extensions,
        )

    def _validate_into(self, **fields: Any) -> None:
        # Validated here in plain Python, then stored the way pydantic's own
        # ``model_construct`` stores trusted values: running pydantic's validator on
        # top would only repeat the type checks and double the cost of an event
        # (built on every publish). ``model_validate`` also lands here: pydantic calls
        # a custom ``__init__``.
        values = _validated(fields)
        object.__setattr__(self, "__dict__", values)
        object.__setattr__(self, "__pydantic_fields_set__", set(values))
        object.__setattr__(self, "__pydantic_extra__", None)
        object.__setattr__(self, "__pydantic_private__", None)

    @classmethod
    def _from_fields(cls, **fields: Any) -> Event:
        """Build an event from already-parsed attributes, without defaults (for parsers)."""
        event = cls.__new__(cls)
        event._validate_into(**fields)
        return event

    # -- structured JSON form -----------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the structured-mode JSON object (a fresh dict; ``data`` is shared).

        ``bytes`` data appear base64-encoded as ``data_base64``, as the JSON event
        format requires.
        """
        out: dict[str, Any] = {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
        }
        if self.subject is not None:
            out["subject"] = self.subject
        if self.time is not None:
            out["time"] = format_time(self.time)
        if self.datacontenttype is not None:
            out["datacontenttype"] = self.datacontenttype
        if self.dataschema is not None:
            out["dataschema"] = self.dataschema
        if self.extensions:
            out.update(self.extensions)
        if isinstance(self.data, bytes):
            out["data_base64"] = base64.b64encode(self.data).decode("ascii")
        elif self.data is not None:
            out["data"] = self.data
        return out

    def to_json(self) -> bytes:
        """Encode as a structured-mode ``application/cloudevents+json`` document."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_dict(cls, obj: Any) -> Event:
        """Build an event from its structured-mode JSON object.

        A ``null`` attribute counts as absent (JSON event format, section 2.4).

        Raises:
            InvalidEvent: ``obj`` is not an object, misses a required attribute, or
                breaks a rule; the error names the attribute.
        """
        if not isinstance(obj, dict):
            raise InvalidEvent(
                f"a structured event must be a JSON object, got {type(obj).__name__}"
            )
        if obj.get("data") is not None and obj.get("data_base64") is not None:
            raise InvalidEvent("'data' and 'data_base64' are mutually exclusive", attribute="data")
        data = obj.get("data")
        raw = obj.get("data_base64")
        if raw is not None:
            if not isinstance(raw, str):
                raise InvalidEvent("must be a base64 string", attribute="data_base64")
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidEvent("is not valid base64", attribute="data_base64") from None
        return cls._from_attributes(obj, data)

    @classmethod
    def _from_attributes(cls, attrs: Mapping[str, Any], data: Any) -> Event:
        """Validate a flat attribute mapping (structured JSON, HTTP headers, SDK events)."""
        for name in _REQUIRED:
            value = attrs.get(name)
            if value is None:
                raise InvalidEvent("is required but missing", attribute=name)
            if not isinstance(value, str):
                raise InvalidEvent(f"must be a string, got {type(value).__name__}", attribute=name)
        if attrs["specversion"] != "1.0":
            raise InvalidEvent(
                f"must be '1.0' (this is a CloudEvents 1.0 implementation),"
                f" got {attrs['specversion']!r}",
                attribute="specversion",
            )
        for name in _OPTIONAL_STRINGS:
            value = attrs.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidEvent(f"must be a string, got {type(value).__name__}", attribute=name)
        time = attrs.get("time")
        if time is not None and not isinstance(time, datetime):
            time = parse_time(time)
        extensions = {k: v for k, v in attrs.items() if k not in _RESERVED and v is not None}
        return cls._from_fields(
            id=attrs["id"],
            source=attrs["source"],
            specversion=attrs["specversion"],
            type=attrs["type"],
            subject=attrs.get("subject"),
            time=time,
            datacontenttype=attrs.get("datacontenttype"),
            dataschema=attrs.get("dataschema"),
            data=data,
            extensions=extensions,
        )

    @classmethod
    def from_json(cls, raw: str | bytes | bytearray) -> Event:
        """Parse a structured-mode JSON document.

        Raises:
            InvalidEvent: The text is not JSON, or the object is not a valid event.
        """
        return cls.from_dict(_loads(raw, attribute=None))

    # -- HTTP protocol binding (see _http.py) --------------------------------------

    def to_http(
        self, mode: Literal["binary", "structured"] = "binary"
    ) -> tuple[dict[str, str], bytes]:
        """Encode for HTTP (CloudEvents HTTP protocol binding 1.0.2).

        Args:
            mode: ``"binary"`` puts attributes in ``ce-*`` headers and ``data`` in the
                body; ``"structured"`` sends the whole event as
                ``application/cloudevents+json``.

        Returns:
            The headers (lower-case names) and the body.

        Raises:
            ValueError: ``mode`` is neither ``"binary"`` nor ``"structured"``.
        """
        from ._http import to_http

        return to_http(self, mode)

    @classmethod
    def from_http(cls, headers: Mapping[str, str], body: bytes) -> Event:
        """Decode an HTTP request or response, detecting binary or structured mode.

        Args:
            headers: The HTTP headers; names are matched case-insensitively.
            body: The raw body.

        Raises:
            InvalidEvent: The message carries no valid event, or is a batch.
        """
        from ._http import from_http

        return from_http(cls, headers, body)

    @classmethod
    def batch_from_http(cls, headers: Mapping[str, str], body: bytes) -> list[Event]:
        """Decode an ``application/cloudevents-batch+json`` HTTP message.

        Raises:
            InvalidEvent: The content type is not the batch type, the body is not a
                JSON array, or an event in it is invalid (the message gives its index).
        """
        from ._http import batch_from_http

        return batch_from_http(cls, headers, body)

    # -- cloudevents SDK bridge (see _sdk.py) ---------------------------------------

    def to_sdk(self, *, api: Literal["auto", "core", "legacy"] = "auto") -> Any:
        """Convert to an event object of the ``cloudevents`` SDK.

        Args:
            api: ``"core"`` returns ``cloudevents.core.v1.event.CloudEvent`` (SDK 2.x);
                ``"legacy"`` returns the 1.x-style ``cloudevents.http.CloudEvent``
                (``cloudevents.v1.http`` in SDK 2.x); ``"auto"`` picks core when the
                installed SDK has it.

        Raises:
            MissingDependency: The ``cloudevents`` package (or the asked-for API) is
                not installed.
        """
        from ._sdk import to_sdk

        return to_sdk(self, api=api)

    @classmethod
    def from_sdk(cls, obj: Any) -> Event:
        """Convert a ``cloudevents`` SDK event (core or legacy API) into an :class:`Event`.

        Raises:
            InvalidEvent: The SDK event breaks a CloudEvents 1.0 rule.
            TypeError: ``obj`` is not an SDK event.
        """
        from ._sdk import from_sdk

        return from_sdk(cls, obj)


def events_to_json_batch(events: Iterable[Event]) -> bytes:
    """Encode events as an ``application/cloudevents-batch+json`` array."""
    return json.dumps(
        [event.to_dict() for event in events], separators=(",", ":"), ensure_ascii=False
    ).encode()


def _loads(raw: str | bytes | bytearray, *, attribute: str | None) -> Any:
    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(raw, parse_constant=reject_constant)
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise InvalidEvent(f"malformed JSON: {exc}", attribute=attribute) from None


def _check_json_bytes(value: bytes, content_type: str) -> None:
    try:
        _loads(value, attribute="data")
    except InvalidEvent as exc:
        raise InvalidEvent(
            f"bytes must hold a UTF-8 JSON document when datacontenttype is"
            f" {content_type!r} ({exc.reason})",
            attribute="data",
        ) from None


def _check_extensions(value: Any) -> dict[str, ExtensionValue]:
    if not isinstance(value, Mapping):
        raise InvalidEvent(
            f"must be a mapping of extension attributes, got {type(value).__name__}",
            attribute="extensions",
        )
    for name, item in value.items():
        if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
            raise InvalidEvent(
                "extension attribute names must be 1-20 characters of lower-case a-z or 0-9",
                attribute=str(name),
            )
        if name in _RESERVED:
            raise InvalidEvent(
                "is a CloudEvents context attribute, not an extension", attribute=name
            )
        if isinstance(item, str):
            _check_string(item, name)
        elif isinstance(item, int):  # bool is an int, and always in range
            if not _INT32[0] <= item <= _INT32[1]:
                raise InvalidEvent("integer is outside the signed 32-bit range", attribute=name)
        else:
            raise InvalidEvent(
                f"extension values must be a string, integer or boolean, got {type(item).__name__}",
                attribute=name,
            )
    return dict(value)
