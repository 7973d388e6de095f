"""The CloudEvents 1.0 attribute rules, checked in plain Python.

Implements the attribute rules of the CloudEvents 1.0.2 specification
(https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md): the attribute
list, the *String* and *Timestamp* types, extension naming, and what the JSON event
format (``json-format.md``) can carry as ``data``. Every check raises
:class:`~eventpatterns.errors.InvalidEvent` naming the attribute; none lets a builtin
error (``RecursionError``, ``OverflowError``, ``ValueError``) reach the caller.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from ..errors import InvalidEvent

__all__ = ["ATTRIBUTES", "format_time", "is_json_content_type", "parse_time"]

#: The context attributes of CloudEvents 1.0, in the order :class:`Event` declares them.
#: This is the one list; everything below and every parser derives from it.
ATTRIBUTES: tuple[str, ...] = (
    *("id", "source", "specversion", "type"),
    *("datacontenttype", "dataschema", "subject", "time"),
)
#: Required attributes, in the order their absence is reported.
REQUIRED = ("specversion", "id", "source", "type")
#: Optional attributes of the *String* (or URI-reference) type.
OPTIONAL_STRINGS = ("subject", "datacontenttype", "dataschema")
#: The fields of the :class:`Event` model, in declaration order.
FIELDS = (*ATTRIBUTES, "data", "extensions")
#: Member names of a structured event that are not extensions.
RESERVED = frozenset((*ATTRIBUTES, "data", "data_base64"))

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
# RFC 3339 section 5.6 date-time. DIGIT is ASCII 0-9 (RFC 5234 appendix B.1), not any
# Unicode digit as \d would be; fractions beyond microseconds are truncated.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)
MAX_DEPTH = 500
_JSON_SCALARS = frozenset({bool, type(None)})
# Integers this small always have fewer digits than the lowest limit Python can be set to
# (sys.int_info.str_digits_check_threshold, 640): json.dumps can write them.
_SMALL_INT = 10**600
_SURROGATE = re.compile("[\ud800-\udfff]")
_SHOWN = 40


def shown(value: object) -> str:
    """Return ``repr(value)`` for an error message, cut to a readable length."""
    if isinstance(value, str) and len(value) > _SHOWN:
        return f"{value[:_SHOWN]!r}... ({len(value)} characters)"
    try:
        text = repr(value)
    except Exception:  # an integer beyond sys.get_int_max_str_digits(), a broken __repr__
        return f"<unprintable {type(value).__name__}>"
    return text if len(text) <= 2 * _SHOWN else text[: 2 * _SHOWN] + "..."


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

    Digits must be ASCII and the offset within ``-23:59`` to ``+23:59`` (RFC 3339
    section 5.6). A leap second (``:60``) cannot be represented and is refused.

    Raises:
        InvalidEvent: ``value`` is not an RFC 3339 date-time with an offset; the
            error names the ``time`` attribute.
    """
    match = _RFC3339.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise InvalidEvent(
            f"{shown(value)} is not an RFC 3339 timestamp with a UTC offset", attribute="time"
        )
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    if zulu:
        tz = timezone.utc
    elif int(off_h) > 23 or int(off_m) > 59:
        raise InvalidEvent(
            f"{shown(value)} has the UTC offset {sign}{off_h}:{off_m}, outside -23:59..+23:59",
            attribute="time",
        )
    else:
        offset = timedelta(hours=int(off_h), minutes=int(off_m))
        tz = timezone(-offset if sign == "-" else offset)
    try:
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
            f"{shown(value)} is not a valid timestamp ({exc})", attribute="time"
        ) from None


def check_time(time: Any) -> datetime:
    """Return ``time`` as a valid event time: aware, its offset in whole minutes."""
    if not isinstance(time, datetime):
        kind = type(time).__name__
        raise InvalidEvent(f"must be a datetime or RFC 3339 string, got {kind}", attribute="time")
    try:
        offset = time.utcoffset()
    except (TypeError, ValueError) as exc:  # a tzinfo whose utcoffset() breaks its contract
        raise InvalidEvent(f"has an unusable time zone ({exc})", attribute="time") from None
    if offset is None:
        raise InvalidEvent("must be timezone-aware (RFC 3339 requires an offset)", attribute="time")
    if offset.seconds % 60 or offset.microseconds:
        # RFC 3339 offsets have minute precision; keep the instant, state it in UTC.
        try:
            return time.astimezone(timezone.utc)
        except OverflowError:
            raise InvalidEvent(
                f"{shown(time)} has a UTC offset of seconds, which RFC 3339 cannot write,"
                " and it lies outside the datetime range once restated in UTC",
                attribute="time",
            ) from None
    return time


def check_string(value: str, attribute: str) -> str:
    """Check a value of the spec's *String* type (``value`` is known to be a ``str``)."""
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
        raise InvalidEvent(f"{shown(value)} contains an unpaired surrogate", attribute="data")


def _check_int(value: int) -> None:
    try:
        int.__repr__(value)  # what json.dumps writes; beyond the digit limit it refuses
    except ValueError:
        raise InvalidEvent(
            f"an integer of {value.bit_length()} bits has more digits than Python will"
            " write as JSON (sys.get_int_max_str_digits())",
            attribute="data",
        ) from None


def check_data(value: Any) -> None:
    """Reject ``data`` that ``json.dumps(allow_nan=False)`` would refuse, without encoding it.

    Walking the value is several times cheaper than serialising it. It also refuses
    tuples (they would come back as lists, so the event would not round-trip),
    strings with unpaired surrogates (they cannot be written as UTF-8), integers
    with more digits than Python writes, and nesting deeper than ``MAX_DEPTH``.
    """
    try:
        _check_json(value, 0)
    except RecursionError:  # the caller's own stack was already deep
        raise InvalidEvent("is nested too deeply to check", attribute="data") from None


def _check_json(value: Any, depth: int) -> None:
    kind = type(value)
    if kind in _JSON_SCALARS:
        return
    if kind is str:
        _check_text(value)
        return
    if kind is int:
        if not -_SMALL_INT < value < _SMALL_INT:
            _check_int(value)
        return
    if kind is dict or kind is list:
        if depth >= MAX_DEPTH:
            raise InvalidEvent(f"is nested deeper than {MAX_DEPTH} levels", attribute="data")
        if kind is dict:
            for key, item in value.items():
                if not isinstance(key, str):
                    kind_name = type(key).__name__
                    reason = f"object keys must be strings, got {kind_name} {shown(key)}"
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
        _check_json(int(value), depth)
        return
    if isinstance(value, (dict, list)):
        _check_json(dict(value) if isinstance(value, dict) else list(value), depth)
        return
    raise InvalidEvent(
        f"must be a JSON value (dict, list, str, int, float, bool, None) or bytes,"
        f" got {kind.__name__}",
        attribute="data",
    )


def loads(raw: str | bytes | bytearray, *, attribute: str | None) -> Any:
    """Parse JSON text, refusing ``NaN``/``Infinity``; every failure is ``InvalidEvent``."""

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        return json.loads(raw, parse_constant=reject_constant)
    except RecursionError:  # json's C scanner recurses once per nested array or object
        raise InvalidEvent("malformed JSON: nested too deeply", attribute=attribute) from None
    except (ValueError, UnicodeDecodeError, TypeError) as exc:
        raise InvalidEvent(f"malformed JSON: {exc}", attribute=attribute) from None


def check_json_bytes(value: bytes, content_type: str) -> None:
    """Check that ``bytes`` data declared as JSON hold a UTF-8 JSON document."""
    try:
        loads(value, attribute="data")
    except InvalidEvent as exc:
        raise InvalidEvent(
            f"bytes must hold a UTF-8 JSON document when datacontenttype is"
            f" {shown(content_type)} ({exc.reason})",
            attribute="data",
        ) from None


#: Extension names found good (bounded): the regular expression runs once per name.
_GOOD_NAMES: set[str] = set()


def extension_name_error(name: object) -> InvalidEvent | None:
    """Return the error for a name that cannot be an extension attribute, else ``None``."""
    if type(name) is str and name in _GOOD_NAMES:  # checked before: every event repeats them
        return None
    if not isinstance(name, str):
        return InvalidEvent(
            f"extension attribute names must be strings, got {type(name).__name__} {shown(name)}",
            attribute=shown(name),
        )
    if not _EXTENSION_NAME.fullmatch(name):
        # Spelled out in the reason too: an empty name makes an empty ``attribute``.
        return InvalidEvent(
            f"extension attribute name {shown(name)} is not 1-20 characters of lower-case"
            " a-z or 0-9",
            attribute=name,
        )
    if name in RESERVED:
        return InvalidEvent("is a CloudEvents context attribute, not an extension", attribute=name)
    if len(_GOOD_NAMES) < 1024 and type(name) is str:
        _GOOD_NAMES.add(name)
    return None


def check_extensions(value: Any) -> dict[str, str | int | bool]:
    """Check extension attributes; return them as a new dict."""
    if not isinstance(value, Mapping):
        raise InvalidEvent(
            f"must be a mapping of extension attributes, got {type(value).__name__}",
            attribute="extensions",
        )
    for name, item in value.items():
        error = extension_name_error(name)
        if error is not None:
            raise error
        if isinstance(item, str):
            check_string(item, name)
        elif isinstance(item, int):  # bool is an int, and always in range
            if not _INT32[0] <= item <= _INT32[1]:
                raise InvalidEvent("integer is outside the signed 32-bit range", attribute=name)
        else:
            raise InvalidEvent(
                f"extension values must be a string, integer or boolean, got {type(item).__name__}",
                attribute=name,
            )
    return dict(value)


def validated(fields: dict[str, Any]) -> dict[str, Any]:
    """Check every CloudEvents rule; return the field values in ``FIELDS`` order."""
    for name in ("id", "source", "type"):
        value = fields[name]
        if not isinstance(value, str):
            raise InvalidEvent(f"must be a string, got {type(value).__name__}", attribute=name)
        check_string(value, name)
    for name in OPTIONAL_STRINGS:
        value = fields[name]
        if value is not None:
            if not isinstance(value, str):
                kind = type(value).__name__
                raise InvalidEvent(f"must be a string, got {kind}", attribute=name)
            check_string(value, name)
    specversion = fields["specversion"]
    if specversion != "1.0":
        raise InvalidEvent(
            f"must be '1.0' (this is a CloudEvents 1.0 implementation), got {shown(specversion)}",
            attribute="specversion",
        )
    time = fields["time"]
    if time is not None:
        time = check_time(time)
    data = fields["data"]
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    if isinstance(data, bytes):
        content_type = fields["datacontenttype"]
        if content_type is not None and is_json_content_type(content_type):
            check_json_bytes(data, content_type)
    else:
        check_data(data)
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
        "extensions": check_extensions(fields["extensions"]),
    }
