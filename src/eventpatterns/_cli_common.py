"""What every ``eventpatterns`` command shares: reading arguments, errors, HTTP, async.

A command reports a user mistake (bad JSON, an unreachable URL, an unknown job) by
raising :class:`UsageError`; ``cli.main`` prints it as one line on standard error and
exits with status 2. Nothing here imports a vendor library at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info < (3, 11):  # pragma: no cover - the builtin from 3.11
    from exceptiongroup import BaseExceptionGroup  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    import httpx

    from .bus import EventBus

__all__ = [
    "DEFAULT_URL",
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "UsageError",
    "add_http_options",
    "base_url",
    "check",
    "open_bus",
    "emit",
    "first_error",
    "http_client",
    "json_arg",
    "library_errors",
    "quote",
    "read_arg",
    "run_async",
]

EXIT_OK = 0
EXIT_FAILED = 1  # it ran, and what it watched failed (a job, a resync)
EXIT_USAGE = 2

#: Where ``eventpatterns serve`` listens by default (``$EVENTPATTERNS_URL`` overrides it).
DEFAULT_URL = "http://127.0.0.1:8000"


class UsageError(Exception):
    """Bad input on the command line: reported as one line with exit status 2."""


def quote(name: str) -> str:
    """Name a file in a message (``-`` is standard input)."""
    return "standard input" if name == "-" else repr(name[:200])


def read_arg(value: str, what: str, *, dash: bool = False) -> str:
    """Return ``value``, or the UTF-8 text of the file ``@name`` (``@-``: standard input).

    With ``dash``, a lone ``-`` reads standard input too.

    Raises:
        UsageError: The file cannot be read, or is not UTF-8 text.
    """
    if dash and value == "-":
        value = "@-"
    if not value.startswith("@"):
        return value
    name = value[1:]
    try:
        if name == "-":
            stream = getattr(sys.stdin, "buffer", None)
            data: str | bytes = stream.read() if stream is not None else sys.stdin.read()
        else:
            data = Path(name).read_bytes()
    except OSError as exc:
        raise UsageError(
            f"cannot read the {what} from {quote(name)}: {exc.strerror or exc}"
        ) from exc
    except UnicodeDecodeError as exc:  # a text stdin that is not in its encoding
        raise UsageError(f"the {what} from {quote(name)} is not UTF-8 text") from exc
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UsageError(
                f"the {what} from {quote(name)} is not UTF-8 text (byte {exc.start})"
            ) from exc
    return data


def json_arg(value: str, what: str, *, dash: bool = False) -> Any:
    """Parse JSON text or ``@file`` (see :func:`read_arg`).

    Raises:
        UsageError: Unreadable, or not JSON; the message names ``what``.
    """
    text = read_arg(value, what, dash=dash)
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise UsageError(f"the {what} is nested too deeply") from exc
    except ValueError as exc:
        raise UsageError(f"the {what} is not valid JSON ({str(exc)[:200]})") from exc


def emit(text: str, *, end: str = "\n") -> None:
    """Print text that may hold characters the terminal cannot encode (lone surrogates)."""
    try:
        print(text, end=end, flush=True)
    except UnicodeEncodeError:
        encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
        safe = text.encode(encoding, "backslashreplace").decode(encoding, "replace")
        print(safe, end=end, flush=True)


def add_http_options(parser: argparse.ArgumentParser, *, bus: bool) -> None:
    """Add ``--url``, ``--token``, ``--api-key`` (and ``--bus`` when ``bus``)."""
    target = parser.add_argument_group("where")
    target.add_argument(
        "--url",
        metavar="URL",
        help="a running `eventpatterns serve` (default $EVENTPATTERNS_URL or " + DEFAULT_URL + ")",
    )
    if bus:
        target.add_argument(
            "--bus",
            metavar="BUS_URL",
            help="talk to the bus directly: redis://host:6379/0?prefix=P",
        )
    target.add_argument(
        "--token",
        metavar="TOKEN",
        help="a bearer token (or @file; default $EVENTPATTERNS_TOKEN)",
    )
    target.add_argument("--api-key", metavar="KEY", help="an API key, sent as X-Api-Key (or @file)")
    target.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="HTTP timeout (default 10)"
    )


def open_bus(url: str) -> EventBus:
    """Return ``EventBus.from_url(url)`` for ``--bus`` (not entered yet).

    Raises:
        UsageError: ``memory://``: that bus lives inside one process, so a command
            line process would publish to (or listen on) a bus of its own.
    """
    from .bus import EventBus

    if url.strip().lower().startswith("memory:"):
        raise UsageError(
            "--bus memory:// is a bus inside one process, not shared with a serve:"
            " use --url of the serve that holds it, or a redis:// bus"
        )
    return EventBus.from_url(url)


def base_url(args: argparse.Namespace, *suffixes: str) -> str:
    """The server's root URL from ``--url`` (a trailing route such as ``/jobs`` removed)."""
    url: str = args.url or os.environ.get("EVENTPATTERNS_URL") or DEFAULT_URL
    url = url.strip().rstrip("/")
    if not url.lower().startswith(("http://", "https://")):
        raise UsageError(f"--url must be an http:// or https:// URL, not {url[:200]!r}")
    for suffix in suffixes:
        url = url.removesuffix(suffix)
    return url


def _headers(args: argparse.Namespace) -> dict[str, str]:
    headers = {"user-agent": "eventpatterns-cli"}
    token = args.token if args.token is not None else os.environ.get("EVENTPATTERNS_TOKEN")
    if token:
        headers["authorization"] = "Bearer " + _header_value(read_arg(token, "token"), "token")
    if args.api_key:
        headers["x-api-key"] = _header_value(read_arg(args.api_key, "API key"), "API key")
    return headers


def _header_value(value: str, what: str) -> str:
    value = value.strip()
    if not value or not value.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise UsageError(f"the {what} must be printable ASCII text on one line")
    return value


@contextmanager
def http_client(args: argparse.Namespace, *, stream: bool = False) -> Iterator[httpx.Client]:
    """An ``httpx.Client`` with the auth headers; transport errors become UsageError."""
    import httpx

    timeout = args.timeout
    if not (timeout > 0):  # NaN too
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout}")
    limits = httpx.Timeout(timeout, read=None if stream else timeout)
    with httpx.Client(headers=_headers(args), timeout=limits) as client:
        try:
            yield client
        except httpx.InvalidURL as exc:
            raise UsageError(f"invalid URL: {exc}") from exc
        except httpx.TimeoutException as exc:
            url = exc.request.url if _has_request(exc) else "the server"
            raise UsageError(f"no answer from {url} within {timeout} s") from exc
        except httpx.HTTPError as exc:
            url = exc.request.url if _has_request(exc) else "the server"
            raise UsageError(f"cannot reach {url}: {exc or type(exc).__name__}") from exc


def _has_request(exc: Exception) -> bool:
    try:
        exc.request  # type: ignore[attr-defined]  # noqa: B018 - a property that may raise
    except RuntimeError:
        return False
    return True


def check(response: httpx.Response, what: str) -> Any:
    """Return the JSON of a 2xx answer; raise UsageError naming the problem otherwise."""
    if response.is_success:
        try:
            return response.json()
        except ValueError as exc:
            raise UsageError(f"{what}: the server's answer is not JSON") from exc
    detail = response.reason_phrase or "error"
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("detail"), str):
        detail = body["detail"]
    elif response.text.strip() and response.headers.get("content-type", "").startswith("text/"):
        detail = response.text.strip()[:200]
    raise UsageError(f"{what}: {response.status_code} {detail}")


def library_errors() -> tuple[type[Exception], ...]:
    """The library's errors that mean bad input or an unreachable backend (not a bug)."""
    from . import errors

    return (
        errors.InvalidEvent,
        errors.InvalidPattern,
        errors.InvalidPosition,
        errors.ResyncRequired,
        errors.ConfigurationError,
        errors.GroupNotFound,
        errors.DeadLetterNotFound,
        errors.EventTooLarge,
        errors.BackendUnavailable,
        errors.AuthenticationFailed,
        errors.Forbidden,
        errors.LimitExceeded,
    )


def run_async(function: Callable[[], Awaitable[int]]) -> int:
    """Run ``function`` on anyio; the library's input errors become UsageError."""
    import anyio

    async def main() -> int:
        return await function()

    try:
        return anyio.run(main)
    except BaseException as exc:  # a task group's errors come as a group
        _reraise(first_error(exc))
        raise


def first_error(exc: BaseException) -> BaseException:
    """Return ``exc``, or the first error of a (nested) group a task group raised."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _reraise(exc: BaseException) -> None:
    """Raise UsageError for a library input error or a refused connection, else return."""
    if isinstance(exc, (UsageError, KeyboardInterrupt)):
        raise exc
    if isinstance(exc, library_errors()):
        raise UsageError(str(exc)) from exc
    if isinstance(exc, OSError):  # a backend that cannot be reached (a refused connection)
        raise UsageError(f"cannot connect: {exc.strerror or exc}") from exc
