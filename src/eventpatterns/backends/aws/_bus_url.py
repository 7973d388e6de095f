"""``aws://`` URLs: every option checked here, before any AWS call is made.

``aws://?region=eu-west-1&bus=orders&prefix=myapp&endpoint_url=http://127.0.0.1:5000``
and the stores' own options (:data:`STORE_OPTIONS`: one table for every AWS store, so
one URL configures them all: each ``from_url`` reads its own and skips, still checking,
the others'). Anything else is refused, naming the option; keyword options win over
the URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ...errors import ConfigurationError

__all__ = ["BUS_OPTIONS", "STORE_OPTIONS", "check_option", "parse_bus_url", "parse_store_url"]

_NAME = re.compile(r"[A-Za-z0-9._-]{1,256}")
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_TABLE = re.compile(r"[A-Za-z0-9._-]{3,255}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError("1-256 characters of A-Z a-z 0-9 . _ -")
    return value


def _prefix(value: str) -> str:
    if not _PREFIX.fullmatch(value):
        raise ValueError("1-40 characters of A-Z a-z 0-9 _ - (it starts every queue and rule name)")
    return value


def _region(value: str) -> str:
    if not _REGION.fullmatch(value):
        raise ValueError("an AWS region such as eu-west-1")
    return value


def _endpoint(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("an http:// or https:// URL")
    return value


def _table(value: str) -> str:
    if not _TABLE.fullmatch(value):
        raise ValueError("a DynamoDB table name: 3-255 characters of A-Z a-z 0-9 . _ -")
    return value


def _bucket(value: str) -> str:
    if not _BUCKET.fullmatch(value) or ".." in value:
        raise ValueError("an S3 bucket name: 3-63 characters of a-z 0-9 . -")
    return value


def _bool(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("true or false")


def _number(low: float, high: float, *, integer: bool = False) -> Callable[[str], float]:
    def parse(value: str) -> float:
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            raise ValueError("an integer" if integer else "a number") from None
        if not math.isfinite(number) or not low <= number <= high:
            raise ValueError(f"a number in {low:g}..{high:g}")
        return number

    return parse


#: Option name -> parser of its URL text (raising ``ValueError`` with what it expects).
BUS_OPTIONS: dict[str, Callable[[str], Any]] = {
    "region": _region,
    "bus": _name,
    "prefix": _prefix,
    "endpoint_url": _endpoint,
    "dedupe_window": _number(1, 86400),
    "max_message_size": _number(1, 256 * 1024 - 1024, integer=True),
    "max_receives": _number(1, 1000, integer=True),
    "poll": _number(1, 20, integer=True),
    "window": _number(1, 1_000_000, integer=True),
}


_WHERE: dict[str, Callable[[str], Any]] = {
    "region": _region,
    "prefix": _prefix,
    "endpoint_url": _endpoint,
    "create": _bool,  # create the table or bucket on first use (development)
}

#: Every AWS store's own query options, by the class whose ``from_url`` reads them. A
#: store skips the options of the others (a bad value is still refused), so one URL
#: configures every store; a name in none of them is an error naming it.
STORE_OPTIONS: dict[str, dict[str, Callable[[str], Any]]] = {
    "AWSBusBackend": BUS_OPTIONS,
    "DynamoJobStore": {**_WHERE, "jobs_table": _table},
    "S3BlobStore": {**_WHERE, "bucket": _bucket},
    "DynamoDeviceRegistry": {
        **_WHERE,
        "devices_table": _table,
        "max_devices": _number(1, 10_000, integer=True),
    },
    "DynamoPresence": {
        **_WHERE,
        "presence_table": _table,
        "ttl": _number(0.001, 86400),
        "sweep_interval": _number(0.001, 3600),
    },
}
_KNOWN = sorted({name for table in STORE_OPTIONS.values() for name in table})


def check_option(key: str, value: object) -> Any:
    """Check one option given as a keyword (or URL text); return its parsed value.

    Raises:
        ConfigurationError: A bad value; the message names the option.
    """
    return _check(key, value, BUS_OPTIONS[key])


def _check(key: str, value: object, parser: Callable[[str], Any]) -> Any:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigurationError(f"aws:// option {key}={value!r}: expected text or a number")
    try:
        return parser(str(value))
    except ValueError as exc:
        raise ConfigurationError(f"aws:// option {key}={value!r}: expected {exc}") from None


def parse_bus_url(url: str) -> dict[str, Any]:
    """Return the bus's options of an ``aws://`` URL, each parsed and checked.

    Raises:
        ConfigurationError: Not an ``aws://`` URL, a host or path in it, an unknown
            option, a repeated one or a bad value; the message names it.
    """
    return parse_store_url(url, "AWSBusBackend")


def parse_store_url(url: str, store: str) -> dict[str, Any]:
    """Return ``store``'s options of an ``aws://`` URL, each parsed and checked.

    The other stores' options (:data:`STORE_OPTIONS`) are checked and skipped.

    Args:
        url: An ``aws://?...`` URL.
        store: A key of :data:`STORE_OPTIONS` (``"DynamoJobStore"``...).

    Raises:
        ConfigurationError: Not an ``aws://`` URL, a host or path in it, an unknown
            option, a repeated one or a bad value; the message names it.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"the bus URL must be a string, got {type(url).__name__}")
    parts = urlsplit(url)
    if parts.scheme != "aws":
        raise ConfigurationError(f"not an aws:// URL: {url!r}")
    if parts.netloc or parts.path not in ("", "/") or parts.fragment:
        raise ConfigurationError(
            f"an aws:// bus URL takes only options (aws://?region=...&bus=...), got {url!r}"
        )
    own = STORE_OPTIONS[store]
    options: dict[str, Any] = {}
    seen: set[str] = set()
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        owners = [table[key] for table in STORE_OPTIONS.values() if key in table]
        if not owners:
            raise ConfigurationError(
                f"unknown aws:// option {key!r}; expected one of {', '.join(_KNOWN)}"
            )
        if key in seen:
            raise ConfigurationError(f"aws:// option {key!r} is given twice")
        seen.add(key)
        if key in own:
            options[key] = _check(key, value, own[key])
        else:  # another store's option: skipped, but a bad value is still an error
            for parser in owners:
                _check(key, value, parser)
    return options


def store_keywords(url: str, store: str, options: dict[str, Any]) -> dict[str, Any]:
    """Return ``store``'s constructor keywords from ``url``; keyword ``options`` win.

    ``create`` becomes ``create_table`` (``create_bucket`` for S3), ``*_table`` becomes
    ``table``, and an S3 key prefix is the URL's ``prefix`` and a slash.

    Raises:
        ConfigurationError: A bad URL (see :func:`parse_store_url`).
    """
    parsed = parse_store_url(url, store)
    if "create" in parsed:
        parsed["create_bucket" if store == "S3BlobStore" else "create_table"] = parsed.pop("create")
    for name in ("jobs_table", "devices_table", "presence_table"):
        if name in parsed:
            parsed["table"] = parsed.pop(name)
    if store == "S3BlobStore" and "prefix" in parsed:
        parsed["prefix"] = f"{parsed['prefix']}/"
    return {**parsed, **options}


def table_of(keywords: dict[str, Any], suffix: str) -> str:
    """Pop the table name from ``keywords``; by default ``{prefix}-{suffix}``."""
    table = keywords.pop("table", None)
    return f"{keywords.get('prefix', 'eventpatterns')}-{suffix}" if table is None else table
