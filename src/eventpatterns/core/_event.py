"""The CloudEvents 1.0 envelope every eventpatterns message travels in.

Implements the CloudEvents 1.0.2 specification
(https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md) and its JSON
event format (``json-format.md``): structured mode, ``data`` vs ``data_base64``. The
attribute rules live in ``_rules.py``, the HTTP binding in ``_http.py`` and the SDK
bridge in ``_sdk.py``; the methods here delegate to them. :func:`trusted_event`, the
constructor for events a backend stored, lives here beside the validating one so
that both build an event the same way.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from ..errors import ArgumentTypeError, InvalidEvent
from ._ids import new_id
from ._json import dumps
from ._rules import (
    ATTRIBUTES,
    FIELDS,
    OPTIONAL_STRINGS,
    REQUIRED,
    RESERVED,
    check_extensions,
    format_time,
    loads,
    parse_time,
    shown,
    validated,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["Event", "events_to_json_batch", "trusted_event"]

ExtensionValue = str | int | bool

_new = object.__new__
_ALL_SET = set(FIELDS)


def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    # pydantic's BaseModel keeps an instance's state in four __slots__; setting them
    # through their descriptors skips the attribute lookup of object.__setattr__, which
    # is a tenth of the cost of decoding a small stored event.
    slot = vars(BaseModel).get(name)
    if slot is None:  # pragma: no cover - pydantic 2 declares them on BaseModel
        return lambda obj, value: object.__setattr__(obj, name, value)
    setter: Callable[[Any, Any], None] = slot.__set__
    return setter


_set_dict, _set_fields_set, _set_extra, _set_private = map(
    _slot_setter,
    ("__dict__", "__pydantic_fields_set__", "__pydantic_extra__", "__pydantic_private__"),
)


def _store(event: Event, values: dict[str, Any]) -> None:
    # Stored the way pydantic's own ``model_construct`` stores trusted values: running
    # pydantic's validator on top of ours would only repeat the type checks and double
    # the cost of an event (built on every publish, decoded on every receive).
    _set_dict(event, values)
    _set_fields_set(event, _ALL_SET.copy())
    _set_extra(event, None)
    _set_private(event, None)


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
        # ``model_validate`` also lands here: pydantic calls a custom ``__init__``.
        _store(self, validated(fields))

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
        return dumps(self.to_dict())  # the data was checked: no NaN, no surrogates

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
        for name in REQUIRED:
            value = attrs.get(name)
            if value is None:
                raise InvalidEvent("is required but missing", attribute=name)
            if not isinstance(value, str):
                raise InvalidEvent(f"must be a string, got {type(value).__name__}", attribute=name)
        if attrs["specversion"] != "1.0":
            raise InvalidEvent(
                "must be '1.0' (this is a CloudEvents 1.0 implementation),"
                f" got {shown(attrs['specversion'])}",
                attribute="specversion",
            )
        for name in OPTIONAL_STRINGS:
            value = attrs.get(name)
            if value is not None and not isinstance(value, str):
                raise InvalidEvent(f"must be a string, got {type(value).__name__}", attribute=name)
        time = attrs.get("time")
        if time is not None and not isinstance(time, datetime):
            time = parse_time(time)
        extensions = {k: v for k, v in attrs.items() if k not in RESERVED and v is not None}
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
        return cls.from_dict(loads(raw, attribute=None))

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
            ConfigurationError: ``mode`` is neither ``"binary"`` nor ``"structured"``
                (a ``ValueError``).
        """
        from ._http import to_http

        return to_http(self, mode)

    @classmethod
    def from_http(cls, headers: Mapping[str, str | int | bool], body: bytes) -> Event:
        """Decode an HTTP request or response, detecting binary or structured mode.

        The mode is known from ``Content-Type`` alone; ``ce-*`` headers are read only in
        binary mode (in structured mode the body carries the whole event).

        Args:
            headers: The HTTP headers; names are matched case-insensitively. Values
                are strings; ``int`` and ``bool`` values (as the ``cloudevents`` 1.x
                SDK's ``to_binary`` writes extensions) are kept as such.
            body: The raw body (``bytes``; a ``str`` is taken as its UTF-8 encoding).

        Raises:
            InvalidEvent: The message carries no valid event, or is a batch.
            ArgumentTypeError: ``headers`` is not a mapping or ``body`` not bytes or str
                (a ``TypeError``).
        """
        from ._http import from_http

        return from_http(cls, headers, body)

    @classmethod
    def batch_from_http(cls, headers: Mapping[str, str | int | bool], body: bytes) -> list[Event]:
        """Decode an ``application/cloudevents-batch+json`` HTTP message.

        Raises:
            InvalidEvent: The content type is not the batch type, the body is not a
                JSON array, or an event in it is invalid (the message gives its index).
            ArgumentTypeError: ``headers`` is not a mapping or ``body`` not bytes or str.
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
            ConfigurationError: Unknown ``api`` (a ``ValueError``).
        """
        from ._sdk import to_sdk

        return to_sdk(self, api=api)

    @classmethod
    def from_sdk(cls, obj: Any) -> Event:
        """Convert a ``cloudevents`` SDK event (core or legacy API) into an :class:`Event`.

        Raises:
            InvalidEvent: The SDK event breaks a CloudEvents 1.0 rule.
            ArgumentTypeError: ``obj`` is not an SDK event (a ``TypeError``).
        """
        from ._sdk import from_sdk

        return from_sdk(cls, obj)


def events_to_json_batch(events: Iterable[Event]) -> bytes:
    """Encode events as an ``application/cloudevents-batch+json`` array.

    Raises:
        ArgumentTypeError: An item of ``events`` is not an :class:`Event`.
    """
    items = []
    for event in events:
        if not isinstance(event, Event):
            raise ArgumentTypeError(
                "events_to_http_batch", "events", expected="an iterable of Event", got=event
            )
        items.append(event.to_dict())
    return json.dumps(items, separators=(",", ":"), ensure_ascii=False).encode()


# -- trusted construction, for backends ----------------------------------------------

_NONES = dict.fromkeys(FIELDS)  # in the model's field order, which __dict__ keeps
_PLAIN = frozenset((*ATTRIBUTES, "data"))  # the members of most events: no extensions
_OPTIONAL = frozenset({str, type(None)})
# RFC 3339 times as format_time() writes them; fromisoformat reads "Z" from 3.11 on.
_read_time: Callable[[str], datetime] = (
    datetime.fromisoformat if sys.version_info >= (3, 11) else parse_time
)


def _untrusted(reason: str, attribute: str | None = None) -> InvalidEvent:
    return InvalidEvent(f"not a stored event: {reason}", attribute=attribute)


def trusted_event(obj: dict[str, Any]) -> Event:
    """For backends: build an Event from already validated fields, skipping validation.

    ``obj`` is a structured-mode JSON object as :meth:`Event.to_dict` makes it, usually
    parsed back from the :meth:`Event.to_json` output a backend stored (a log entry,
    a queue message). That event was validated when it was made, so this skips the
    checks whose cost grows with the event: the walk over ``data``, the character
    rules of strings, the strict RFC 3339 reading of ``time`` (``datetime.fromisoformat``
    reads it). It keeps the cheap checks that make the result a well-formed
    :class:`Event`: ``obj`` is a ``dict``; ``specversion`` is ``"1.0"``; ``id``,
    ``source`` and ``type`` are non-empty strings; the other attributes are strings or
    absent; ``time`` reads as an aware datetime (or is one: a ``datetime`` object is
    taken as it is, not formatted and read back); ``data_base64`` is base64 (and not
    beside ``data``); extension names and value types follow the rules.

    For an object that :meth:`Event.to_dict` returned, the event equals the one
    :meth:`Event.from_dict` builds (same fields, ``repr`` and ``to_json()``), at a
    fraction of the cost. The caller is the trust boundary: for anything else, what
    is not checked is not checked. Parse input from outside with
    :meth:`Event.from_json` or :meth:`Event.from_dict`.

    Args:
        obj: The event's structured-mode JSON object. The event keeps ``obj``'s
            ``data`` (not a copy).

    Returns:
        The event (always an :class:`Event`, not a subclass).

    Raises:
        InvalidEvent: ``obj`` fails one of the cheap checks. The message is terse;
            call :meth:`Event.from_dict` (or :meth:`Event.from_json` on the stored
            text) for the error validation would give.

    Example:
        >>> e = Event(type="t", source="/s", data={"n": 1})
        >>> trusted_event(json.loads(e.to_json())) == e
        True
    """
    if type(obj) is not dict:
        raise _untrusted(f"expected a dict, got {type(obj).__name__}")
    if _PLAIN.issuperset(obj):
        values = {**_NONES, **obj}
        values["extensions"] = {}
    else:
        values = _NONES.copy()
        extensions: dict[str, Any] = {}
        for name, value in obj.items():
            if name in _PLAIN:
                values[name] = value
            elif name != "data_base64" and value is not None:
                extensions[name] = value
        encoded = obj.get("data_base64")
        if encoded is not None:
            values["data"] = _trusted_base64(encoded, values["data"])
        values["extensions"] = check_extensions(extensions)
    id_, source, type_ = values["id"], values["source"], values["type"]
    if not (
        values["specversion"] == "1.0"
        and type(id_) is str
        and type(source) is str
        and type(type_) is str
        and id_
        and source
        and type_
        and type(values["subject"]) in _OPTIONAL
        and type(values["datacontenttype"]) in _OPTIONAL
        and type(values["dataschema"]) in _OPTIONAL
    ):
        raise _untrusted(
            "specversion must be '1.0'; id, source and type non-empty strings;"
            " subject, datacontenttype and dataschema strings or absent"
        )
    time = values["time"]
    if time is not None:
        values["time"] = _trusted_time(time)
    event: Event = _new(Event)
    _store(event, values)
    return event


def _trusted_time(value: Any) -> datetime:
    if type(value) is datetime:  # built here, not parsed (a job's event): kept if aware
        if value.tzinfo is not None:
            return value
        raise _untrusted("time is a naive datetime", "time")
    if type(value) is str:
        try:
            time = _read_time(value)
        except ValueError:  # InvalidEvent is a ValueError too
            time = None
        if time is not None and time.tzinfo is not None:
            return time
    raise _untrusted("time is not an RFC 3339 string with an offset", "time")


def _trusted_base64(value: Any, data: Any) -> bytes:
    if data is not None:
        raise _untrusted("both data and data_base64", "data")
    if type(value) is str:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise _untrusted("data_base64 is not base64", "data_base64")
