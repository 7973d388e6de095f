"""Redis URLs and options: every part is checked here, before any connection is made.

``redis://[[user]:password@]host[:port][/db][?option=value&...]``, ``rediss://...``
(TLS) and ``unix:///path/to/socket[?db=N&...]``. The query holds the stores' own
options (:data:`STORE_OPTIONS`: one table for every Redis store, so that one URL
configures them all: each ``from_url`` reads its own and skips, still checking, the
others') and a fixed set of redis-py connection options (:data:`REDIS_OPTIONS`);
anything else is refused, naming the option, rather than failing later inside
redis-py. Keyword options win over the URL.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Collection, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ...errors import ConfigurationError

__all__ = [
    "BUS_OPTIONS",
    "REDIS_OPTIONS",
    "STORE_OPTIONS",
    "server_of",
    "connection_options",
    "split_store_url",
    "split_url",
]

_SCHEMES = ("redis", "rediss", "unix")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
_DB_PATH = re.compile(r"/(0|[1-9][0-9]{0,9})/?")


def _bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError("true or false")


def _int(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not re.fullmatch(r"-?[0-9]+", value.strip()):
            raise ValueError("an integer")
        number = int(value)
        if number < low or (high is not None and number > high):
            raise ValueError(f"an integer in {low}..{high}" if high else f"an integer >= {low}")
        return number

    return parse


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("a number of seconds") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError("a number of seconds >= 0")
    return number


def _text(value: str) -> str:
    if not value:
        raise ValueError("a non-empty value")
    return value


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value.lower() not in choices:
            raise ValueError(" or ".join(repr(c) for c in choices))
        return value.lower()

    return parse


def _protocol(value: str) -> int:
    if value not in ("2", "3"):
        raise ValueError("2 or 3 (RESP2 or RESP3)")
    return int(value)


def _no_decoding(value: str) -> bool:
    raise ValueError("nothing: the Redis bus backend reads raw bytes, drop decode_responses")


#: The bus's own query options (``RedisBusBackend`` keyword arguments).
BUS_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "prefix": _text,
    "max_entries": _int(1),
    "dedupe_window": _seconds,
    "max_message_size": _int(1),
    "reclaim_after": _seconds,
    "cluster": _bool,
}

#: Every Redis store's own query options, by the class whose ``from_url`` reads them.
#: A store skips the options of the others (a bad value is still refused), so one URL
#: configures every store; a name in none of them, nor in :data:`REDIS_OPTIONS`, is an
#: error naming it.
STORE_OPTIONS: Mapping[str, Mapping[str, Callable[[str], Any]]] = {
    "RedisBusBackend": BUS_OPTIONS,
    "RedisJobStore": {
        "prefix": _text,
        "default_ttl": _seconds,
        "grace": _seconds,
        "outbox": _bool,
    },
    "RedisPresence": {
        "prefix": _text,
        "ttl": _seconds,
        "sweep_interval": _seconds,
        "max_info_size": _int(2),
    },
    "RedisDeviceRegistry": {"prefix": _text, "max_devices": _int(1, 10_000)},
    "RedisDispatchState": {"prefix": _text, "key_ttl": _seconds},
    "RedisPushDeadLetters": {"prefix": _text},
}

#: The redis-py connection options a URL may carry (others go as keyword arguments).
REDIS_OPTIONS: Mapping[str, Callable[[str], Any]] = {
    "db": _int(0, 2**31 - 1),
    "username": _text,
    "password": _text,
    "client_name": _text,
    "socket_timeout": _seconds,
    "socket_connect_timeout": _seconds,
    "socket_keepalive": _bool,
    "socket_read_size": _int(1),
    "retry_on_timeout": _bool,
    "max_connections": _int(1),
    "health_check_interval": _int(0),
    "protocol": _protocol,
    "ssl_cert_reqs": _one_of("none", "optional", "required"),
    "ssl_check_hostname": _bool,
    "ssl_ca_certs": _text,
    "ssl_certfile": _text,
    "ssl_keyfile": _text,
    "decode_responses": _no_decoding,
}


def _check_scheme(url: str) -> Any:
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise ConfigurationError(f"not a redis://, rediss:// or unix:// URL: {url!r}")
    return parts


def _query(parts: Any) -> list[tuple[str, str]]:
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ConfigurationError(f"redis:// option {key} is given twice")
        seen.add(key)
    return pairs


def _parse(name: str, value: str, parser: Callable[[str], Any]) -> Any:
    try:
        return parser(value)
    except ValueError as exc:
        raise ConfigurationError(f"redis:// option {name} must be {exc}, got {value!r}") from None


def _owners(key: str) -> list[str]:
    return [store for store, table in STORE_OPTIONS.items() if key in table]


def split_store_url(url: str, options: dict[str, Any], store: str) -> str:
    """Move ``store``'s options from ``url``'s query into ``options``; return the rest.

    The options of the other stores (:data:`STORE_OPTIONS`) are checked and dropped;
    the redis-py connection options stay in the returned URL. Keyword ``options`` win
    over the query string.

    Args:
        url: A Redis URL.
        options: The keyword options, updated in place.
        store: A key of :data:`STORE_OPTIONS` (``"RedisJobStore"``...).

    Raises:
        ConfigurationError: Not a Redis URL, or a bad store option (the message names it).
    """
    own = STORE_OPTIONS[store]
    parts = _check_scheme(url)
    rest: list[tuple[str, str]] = []
    for key, value in _query(parts):
        parser = own.get(key)
        if parser is not None:
            options.setdefault(key, _parse(key, value, parser))
            continue
        owners = _owners(key)
        if not owners:
            rest.append((key, value))  # a redis-py option, or unknown: connection_options
            continue
        # Another store's option: skipped, but a bad value is still an error.
        parsed = [_parse(key, value, STORE_OPTIONS[owner][key]) for owner in owners]
        if key == "cluster" and parsed[0]:
            raise ConfigurationError(
                f"redis:// option cluster=true is for RedisBusBackend; {store} runs on one"
                f" server (or one cluster slot): give it a URL without cluster"
            )
    rest_url: str = urlunsplit(parts._replace(query=urlencode(rest)))
    return rest_url


def split_url(url: str, options: dict[str, Any]) -> str:
    """Move the bus's options from ``url``'s query into ``options``; return the rest.

    Keyword ``options`` win over the query string; the other stores' options are
    skipped (:func:`split_store_url`).

    Raises:
        ConfigurationError: Not a Redis URL, or a bad bus option.
    """
    return split_store_url(url, options, "RedisBusBackend")


def connection_options(
    url: str, keywords: Mapping[str, Any], *, cluster: bool, allowed: Collection[str]
) -> dict[str, Any]:
    """Return the redis-py client's keyword arguments for ``url`` and ``keywords``.

    Args:
        url: A Redis URL whose query holds redis-py options only (see :func:`split_url`).
        keywords: Keyword options for redis-py; they win over the URL.
        cluster: For a Redis Cluster client (database 0 only, no unix sockets).
        allowed: The keyword arguments the redis-py client takes.

    Raises:
        ConfigurationError: A part of the URL or an option is malformed or unknown.
    """
    parts = _check_scheme(url)
    out: dict[str, Any] = {}
    if parts.scheme == "unix":
        if cluster:
            raise ConfigurationError("cluster=true needs a redis:// or rediss:// URL")
        if not parts.path:
            raise ConfigurationError(f"a unix:// URL needs a socket path: {url!r}")
        out["unix_socket_path"] = unquote(parts.path)
    else:
        try:
            port = parts.port
        except ValueError:
            raise ConfigurationError(
                f"redis:// URL port must be a number in 1..65535: {url!r}"
            ) from None
        out["host"] = unquote(parts.hostname) if parts.hostname else "localhost"
        out["port"] = port or 6379
        if parts.path not in ("", "/"):
            match = _DB_PATH.fullmatch(parts.path)
            if match is None:
                raise ConfigurationError(
                    f"redis:// option db (the URL path) must be a database number,"
                    f" got {parts.path[1:]!r}"
                )
            out["db"] = int(match[1])
        if parts.scheme == "rediss":
            out["ssl"] = True
    if parts.username:
        out["username"] = unquote(parts.username)
    if parts.password:
        out["password"] = unquote(parts.password)
    for key, value in _query(parts):
        owners = _owners(key)
        if owners:
            raise ConfigurationError(
                f"redis:// option {key} is read by {owners[0]}.from_url();"
                f" pass it to {owners[0]}() as a keyword argument"
            )
        parser = REDIS_OPTIONS.get(key)
        if parser is None:
            store_options = {name for table in STORE_OPTIONS.values() for name in table}
            known = ", ".join(sorted(REDIS_OPTIONS.keys() | store_options))
            raise ConfigurationError(f"unknown redis:// option {key!r}; known options: {known}")
        if key == "db" and "db" in out:
            raise ConfigurationError("redis:// option db is given twice (URL path and query)")
        out[key] = _parse(key, value, parser)
    for key, value in keywords.items():
        if key == "decode_responses" and value:
            raise ConfigurationError("the Redis bus backend reads raw bytes: drop decode_responses")
        if key not in allowed:
            raise ConfigurationError(f"unknown Redis option {key!r} (not a redis-py option)")
        out[key] = value
    db = out.get("db", 0)
    if not isinstance(db, int) or isinstance(db, bool) or not 0 <= db < 2**31:
        raise ConfigurationError(f"redis option db must be a database number, got {db!r}")
    if cluster:
        if db != 0:
            raise ConfigurationError(f"redis option db must be 0 on Redis Cluster, got {db}")
        out.pop("db", None)
    return out


def server_of(options: Mapping[str, Any]) -> tuple[Any, ...]:
    """Return what names the database ``options`` (:func:`connection_options`') reach.

    Two clients whose answers are equal talk to the same database of the same server
    (as spelled: ``localhost`` and ``127.0.0.1`` differ, so a match is never a guess).
    """
    where = options.get("unix_socket_path") or (options.get("host"), options.get("port"))
    return (where, options.get("db", 0), options.get("username"))
