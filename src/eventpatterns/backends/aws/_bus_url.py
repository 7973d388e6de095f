"""``aws://`` bus URLs: every option checked here, before any AWS call is made.

``aws://?region=eu-west-1&bus=orders&prefix=myapp&endpoint_url=http://127.0.0.1:5000``
and the bus's own options (:data:`BUS_OPTIONS`). Anything else is refused, naming the
option; keyword options win over the URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ...errors import ConfigurationError

__all__ = ["BUS_OPTIONS", "check_option", "parse_bus_url"]

_NAME = re.compile(r"[A-Za-z0-9._-]{1,256}")
_PREFIX = re.compile(r"[A-Za-z0-9_-]{1,40}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")


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


def check_option(key: str, value: object) -> Any:
    """Check one option given as a keyword (or URL text); return its parsed value.

    Raises:
        ConfigurationError: A bad value; the message names the option.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ConfigurationError(f"aws:// option {key}={value!r}: expected text or a number")
    try:
        return BUS_OPTIONS[key](str(value))
    except ValueError as exc:
        raise ConfigurationError(f"aws:// option {key}={value!r}: expected {exc}") from None


def parse_bus_url(url: str) -> dict[str, Any]:
    """Return the options of an ``aws://`` URL, each parsed and checked.

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
    options: dict[str, Any] = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in BUS_OPTIONS:
            known = ", ".join(sorted(BUS_OPTIONS))
            raise ConfigurationError(f"unknown aws:// option {key!r}; expected one of {known}")
        if key in options:
            raise ConfigurationError(f"aws:// option {key!r} is given twice")
        options[key] = check_option(key, value)
    return options
