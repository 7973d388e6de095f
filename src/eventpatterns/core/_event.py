"""The CloudEvents 1.0 envelope every eventpatterns message travels in.

Implements the attribute rules of the CloudEvents 1.0.2 specification
(https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md) and its JSON
event format (``json-format.md``): structured mode, ``data`` vs ``data_base64``.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from ..errors import InvalidEvent
from ._ids import new_id

__all__ = ["Event", "is_json_content_type"]

#: Attribute names defined by the spec; extensions may not reuse them.
CORE_ATTRIBUTES = frozenset(
    {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time"}
)
_RESERVED = CORE_ATTRIBUTES | {"data", "data_base64"}
# Spec section "Attribute Naming Convention": lower-case a-z and 0-9, at most 20 characters.
_EXTENSION_NAME = re.compile(r"[a-z0-9]{1,20}")
_INT32 = (-(2**31), 2**31 - 1)

ExtensionValue = str | int | bool


def is_json_content_type(content_type: str | None) -> bool:
    """Tell whether a media type carries JSON (absent, ``application/json``, ``*/*+json``)."""
    if content_type is None:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


def _first_error(exc: ValidationError) -> InvalidEvent:
    err = exc.errors(include_url=False)[0]
    loc = err.get("loc") or ()
    attribute = str(loc[0]) if loc else None
    msg = str(err.get("msg", "is invalid")).removeprefix("Value error, ")
    return InvalidEvent(msg, attribute=attribute)


class Event(BaseModel):
    """One CloudEvents 1.0 event: immutable, validated, JSON-serialisable.

    Every constructor and parser raises :class:`~eventpatterns.errors.InvalidEvent`
    (a ``ValueError``) naming the attribute and the rule it breaks.

    Args:
        type: What happened, e.g. ``"com.example.order.created"`` (required).
        source: Who it happened to, a URI-reference such as ``"/shop/orders"`` (required).
        data: The payload: any JSON value, or ``bytes``.
        id: Unique within ``source``; a new time-sortable UUIDv7 by default.
        subject: The subject within the source (e.g. an order id).
        time: When it happened (timezone-aware); now by default.
        datacontenttype: Media type of ``data`` (``application/json`` when absent).
        dataschema: URI of the schema ``data`` adheres to.
        extensions: Extension attributes; names are ``[a-z0-9]{1,20}``, values
            ``str``, ``int`` (32-bit) or ``bool``.
        specversion: Always ``"1.0"``.

    Example:
        >>> e = Event(type="order.created", source="/shop", data={"id": 7})
        >>> Event.from_json(e.to_json()) == e
        True
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=False)

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
        extensions: dict[str, ExtensionValue] | None = None,
        specversion: str = "1.0",
    ) -> None:
        try:
            super().__init__(
                id=new_id() if id is None else id,
                source=source,
                specversion=specversion,
                type=type,
                datacontenttype=datacontenttype,
                dataschema=dataschema,
                subject=subject,
                time=datetime.now(timezone.utc) if time is None else time,
                data=data,
                extensions={} if extensions is None else extensions,
            )
        except ValidationError as exc:
            raise _first_error(exc) from None

    # -- validation ---------------------------------------------------------------

    @field_validator("id", "source", "type")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value:
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("subject", "datacontenttype", "dataschema")
    @classmethod
    def _non_empty_optional(cls, value: str | None) -> str | None:
        if value is not None and not value:
            raise ValueError("must be a non-empty string when present")
        return value

    @field_validator("specversion")
    @classmethod
    def _spec(cls, value: str) -> str:
        if value != "1.0":
            raise ValueError(f"must be '1.0' (this is a CloudEvents 1.0 implementation), got {value!r}")
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must be timezone-aware (RFC 3339 requires an offset)")
        return value

    @field_validator("data")
    @classmethod
    def _data(cls, value: Any) -> Any:
        if value is None or isinstance(value, (bytes, str, int, float, bool)):
            return value
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"must be a JSON value or bytes ({exc})") from None
        return value

    @field_validator("extensions", mode="before")
    @classmethod
    def _extensions(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError("must be a dict of extension attributes")
        for name, item in value.items():
            if not isinstance(name, str) or not _EXTENSION_NAME.fullmatch(name):
                raise ValueError(
                    f"extension name {name!r} must be 1-20 characters of lower-case a-z or 0-9"
                )
            if name in _RESERVED:
                raise ValueError(f"extension name {name!r} is a reserved CloudEvents attribute")
            if isinstance(item, bool) or isinstance(item, str):
                continue
            if isinstance(item, int):
                if not _INT32[0] <= item <= _INT32[1]:
                    raise ValueError(f"extension {name!r} is an integer outside the 32-bit range")
                continue
            raise ValueError(
                f"extension {name!r} must be a string, integer or boolean, got {type(item).__name__}"
            )
        return value

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

        Raises:
            InvalidEvent: ``obj`` is not an object, misses a required attribute, or
                breaks a rule; the error names the attribute.
        """
        if not isinstance(obj, dict):
            raise InvalidEvent(f"a structured event must be a JSON object, got {type(obj).__name__}")
        for name in ("specversion", "id", "source", "type"):
            if name not in obj:
                raise InvalidEvent("is required but missing", attribute=name)
            if not isinstance(obj[name], str):
                raise InvalidEvent(f"must be a string, got {type(obj[name]).__name__}", attribute=name)
        for name in ("subject", "datacontenttype", "dataschema", "time"):
            if name in obj and obj[name] is not None and not isinstance(obj[name], str):
                raise InvalidEvent(f"must be a string, got {type(obj[name]).__name__}", attribute=name)
        if "data" in obj and "data_base64" in obj:
            raise InvalidEvent("'data' and 'data_base64' are mutually exclusive", attribute="data")
        data = obj.get("data")
        if "data_base64" in obj:
            raw = obj["data_base64"]
            if not isinstance(raw, str):
                raise InvalidEvent("must be a base64 string", attribute="data_base64")
            try:
                data = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidEvent("is not valid base64", attribute="data_base64") from None
        extensions = {k: v for k, v in obj.items() if k not in _RESERVED}
        return cls(
            id=obj["id"],
            source=obj["source"],
            specversion=obj["specversion"],
            type=obj["type"],
            subject=obj.get("subject"),
            time=_parse_time(obj.get("time")),
            datacontenttype=obj.get("datacontenttype"),
            dataschema=obj.get("dataschema"),
            data=data,
            extensions=extensions,
        )

    @classmethod
    def from_json(cls, raw: str | bytes | bytearray) -> Event:
        """Parse a structured-mode JSON document.

        Raises:
            InvalidEvent: The text is not JSON, or the object is not a valid event.
        """
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidEvent(f"malformed JSON: {exc}") from None
        return cls.from_dict(obj)


def format_time(value: datetime) -> str:
    """Format a timestamp as RFC 3339, with ``Z`` for UTC."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _parse_time(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (AttributeError, ValueError):
        raise InvalidEvent(f"{value!r} is not an RFC 3339 timestamp", attribute="time") from None
    if parsed.tzinfo is None:
        raise InvalidEvent(f"{value!r} has no UTC offset (RFC 3339 requires one)", attribute="time")
    return parsed
