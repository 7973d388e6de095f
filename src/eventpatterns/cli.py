"""The ``eventpatterns`` command line.

Subcommands:

* ``test-pattern PATTERN EVENT``: like EventBridge's ``TestEventPattern``; prints
  ``true`` or ``false`` (and, with ``--explain``, why; ``--json`` prints both as
  JSON). PATTERN and EVENT are JSON text or ``@file`` (``@-`` reads standard
  input), files in UTF-8. Exit status: 0 when it ran, 2 with one line on standard
  error for an invalid pattern, event, file or usage.
* ``serve``: the real-time gateway (WebSocket at ``/ws``, SSE at ``/events``,
  ``POST /publish``) on uvicorn, over the memory bus or ``--bus redis://...``;
  prints the URLs; SIGTERM closes every connection with 1001 and exits with 0.
  Without an authentication option it is open (anyone may subscribe and publish)
  and says so; the open mode on a non-loopback address needs ``--allow-anonymous``.
  ``--jobs MODULE:FUNCTION`` also serves the jobs' HTTP routes at ``/jobs`` (and
  ``/blobs``), ``FUNCTION(tracker)`` registering the kinds (workers run in the process).
  ``--max-frame-bytes``, ``--max-subscriptions``, ``--max-connections-per-principal``,
  ``--rate``, ``--rate-burst`` and ``--auth-timeout`` set the gateway's ``Limits``.
* ``schema export --module M``: the JSON Schemas of the event types module ``M``
  declares (``--asyncapi``: an AsyncAPI 3.0 document), printed or written ``--out DIR``.
* ``push vapid-keys``: a new VAPID key pair for Web Push: the private key (PEM, or
  ``--format raw`` base64url; ``--json`` for both fields as JSON) and the public key
  as the ``applicationServerKey`` browsers subscribe with.
* ``publish`` / ``listen`` (``_cli_events``): one event in, or the matching events out,
  over a running serve (``--url``) or a bus (``--bus``).
* ``jobs submit|status|watch|result|cancel`` (``_cli_jobs``): a serve's ``/jobs`` routes;
  ``watch`` draws a progress bar and exits 0 on success, 1 on failure or cancel.
* ``dlq list|show|redrive|discard`` (``_cli_dlq``): a consumer group's dead letters.
* ``bench`` (``_cli_bench``): the checkout's ``benchmarks/NAME.py``.

``python -m eventpatterns`` runs :func:`main`. Every mistake in the input is one line
on standard error and exit status 2 (``_cli_common.UsageError``); docs/cli.md lists
every command with examples.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["main"]

from ._cli_common import EXIT_OK, EXIT_USAGE
from ._cli_common import UsageError as _UsageError
from ._cli_common import emit as _emit
from ._cli_common import first_error as _first_error
from ._cli_common import library_errors as _library_errors
from ._cli_common import read_arg as _read_arg


def _test_pattern(args: argparse.Namespace) -> int:
    from .errors import InvalidPattern
    from .filters import compile as compile_pattern
    from .filters import explain

    pattern_text = _read_arg(args.pattern, "pattern")
    event_text = _read_arg(args.event, "event")
    try:
        matcher = compile_pattern(pattern_text)
    except InvalidPattern as exc:
        raise _UsageError(str(exc)) from exc
    try:
        event: Any = json.loads(event_text)
    except (ValueError, RecursionError) as exc:
        raise _UsageError(f"invalid event: not valid JSON ({str(exc)[:200]})") from exc
    if not isinstance(event, dict):
        raise _UsageError("invalid event: an event must be a JSON object")
    if args.json:
        data = explain(matcher, event).to_dict()
        try:
            text = json.dumps(data, indent=2, ensure_ascii=False)
            text.encode(getattr(sys.stdout, "encoding", None) or "utf-8")
        except UnicodeEncodeError:  # lone surrogates: \u escapes are still JSON
            text = json.dumps(data, indent=2, ensure_ascii=True)
        _emit(text)
    elif args.explain:
        explanation = explain(matcher, event)
        _emit("true" if explanation.matched else "false")
        _emit(str(explanation))
    else:
        _emit("true" if matcher.matches(event) else "false")
    return EXIT_OK


def _authorizer(args: argparse.Namespace) -> Any:
    from .errors import ConfigurationError

    if args.api_key_file is not None:
        from .realtime import APIKeyAuthorizer, APIKeyRecord

        text = _read_arg("@" + args.api_key_file, "API key file")
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise _UsageError(f"the API key file is not JSON ({str(exc)[:200]})") from exc
        if isinstance(data, dict):
            data = data.get("keys")
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise _UsageError("the API key file must hold a JSON list of key records")
        try:
            return APIKeyAuthorizer([APIKeyRecord.from_dict(r) for r in data])
        except ConfigurationError as exc:
            raise _UsageError(str(exc)) from exc
    if args.jwt_secret is not None:
        from .realtime import JWTAuthorizer, JWTKey

        secret = _read_arg(args.jwt_secret, "JWT secret").strip()
        try:
            return JWTAuthorizer(
                JWTKey(secret, "HS256"), audience=args.audience, issuer=args.issuer
            )
        except ConfigurationError as exc:
            raise _UsageError(str(exc)) from exc
    if args.jwks_url is not None:
        from .realtime import OIDCAuthorizer

        if args.issuer is None:
            raise _UsageError("--jwks-url needs --issuer (the tokens' iss)")
        return OIDCAuthorizer(args.issuer, audience=args.audience, jwks_uri=args.jwks_url)
    return None


#: ``serve``'s limit options: (option, ``Limits`` field, integer?).
_LIMIT_OPTIONS = (
    ("--max-frame-bytes", "max_frame_bytes", True),
    ("--max-subscriptions", "max_subscriptions", True),
    ("--max-connections-per-principal", "max_connections_per_principal", True),
    ("--rate", "rate", False),
    ("--rate-burst", "rate_burst", True),
    ("--auth-timeout", "auth_timeout", False),
)


def _limits(args: argparse.Namespace) -> Any:
    """The gateway's ``Limits`` from ``serve``'s limit options (defaults for the rest)."""
    import math

    from .realtime import Limits

    given: dict[str, int | float] = {}
    for option, field, integer in _LIMIT_OPTIONS:
        raw: str | None = getattr(args, field)
        if raw is None:
            continue
        try:
            value: int | float = int(raw) if integer else float(raw)
        except ValueError:
            kind = "a whole number" if integer else "a number"
            raise _UsageError(f"{option} must be {kind}, not {raw[:50]!r}") from None
        if integer and value < 1:
            raise _UsageError(f"{option} must be at least 1, not {raw}")
        if not integer and not (math.isfinite(value) and value > 0):
            raise _UsageError(f"{option} must be a positive number of seconds, not {raw}")
        given[field] = value
    return Limits(**given)  # type: ignore[arg-type]


def _serve(args: argparse.Namespace) -> int:
    import anyio

    from .bff._serve import ServeOptions, is_loopback, run
    from .errors import ConfigurationError, MissingDependency

    if not 0 <= args.port <= 65535:
        raise _UsageError(f"--port must be 0-65535, not {args.port}")
    limits = _limits(args)
    authorizer = _authorizer(args)
    if authorizer is None:
        if not args.allow_anonymous and not is_loopback(args.host):
            raise _UsageError(
                f"no authentication configured and {args.host} is not a loopback address:"
                " pass --api-key-file, --jwt-secret or --jwks-url, or --allow-anonymous"
            )
    elif args.allow_anonymous:
        raise _UsageError("--allow-anonymous is for the open mode (no authentication option)")
    if args.demo and args.jobs is not None:
        raise _UsageError("--demo runs its own job kind: drop --jobs")
    options = ServeOptions(
        host=args.host,
        port=args.port,
        bus=args.bus,
        authorizer=authorizer,
        compression=args.compression,
        limits=limits,
        jobs=args.jobs,
        blobs_dir=args.blobs,
        demo=args.demo,
    )
    try:
        anyio.run(functools.partial(run, options, announce=_announce))
    except BaseException as exc:
        # What fails while the backend starts (an unreachable Redis, no AWS credentials,
        # aiobotocore missing) comes out of a task group: report its first error.
        error = _first_error(exc)
        if isinstance(error, KeyboardInterrupt):
            raise error from None
        if isinstance(error, (ConfigurationError, MissingDependency, *_library_errors())):
            raise _UsageError(str(error)) from exc
        if isinstance(error, OSError):  # the port is taken, the host unknown
            raise _UsageError(f"cannot listen on {args.host}:{args.port}: {error}") from exc
        raise
    return EXIT_OK


def _vapid_keys(args: argparse.Namespace) -> int:
    from .errors import MissingDependency

    try:
        from .push import VapidKeys
    except MissingDependency as exc:  # pragma: no cover - the push extra is installed
        raise _UsageError(str(exc)) from exc
    keys = VapidKeys.generate()
    private = keys.private_pem().strip() if args.format == "pem" else keys.private_raw()
    if args.json:
        data = {"private_key": private, "application_server_key": keys.application_server_key}
        print(json.dumps(data, indent=2))
    else:
        print("# VAPID private key: keep it secret (e.g. in your secret store)")
        print(private)
        print("# applicationServerKey: give it to browsers' pushManager.subscribe()")
        print(keys.application_server_key)
    return EXIT_OK


def _announce(line: str) -> None:
    print(line, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eventpatterns", description="Event-driven backend patterns: tools."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    test = commands.add_parser(
        "test-pattern",
        help="test an event pattern against an event (like EventBridge TestEventPattern)",
        description="Print true if EVENT matches PATTERN, false otherwise.",
    )
    test.add_argument("pattern", metavar="PATTERN", help="the pattern: JSON text or @file")
    test.add_argument("event", metavar="EVENT", help="the event: JSON text or @file")
    test.add_argument("--explain", action="store_true", help="say which condition failed and why")
    test.add_argument(
        "--json", action="store_true", help="print the verdict and explanation as JSON"
    )
    test.set_defaults(handler=_test_pattern)
    serve = commands.add_parser(
        "serve",
        help="run the composed app: WebSocket /ws, SSE /events, POST /publish, /dlq, /healthz",
        description="Serve the real-time gateway on one port until SIGTERM or SIGINT.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0: any)")
    serve.add_argument(
        "--backend",
        "--bus",
        dest="bus",
        metavar="URL",
        default="memory://",
        help="backend URL: memory:// (default), redis://host:6379/0 or aws://?region=...",
    )
    auth = serve.add_mutually_exclusive_group()
    auth.add_argument(
        "--api-key-file", metavar="FILE", help="JSON list of API key records (hashed keys)"
    )
    auth.add_argument(
        "--jwt-secret", metavar="SECRET", help="HS256 secret, or @file (safer than argv)"
    )
    auth.add_argument("--jwks-url", metavar="URL", help="OIDC: the provider's JWKS URL")
    serve.add_argument("--issuer", help="the tokens' required iss (needed with --jwks-url)")
    serve.add_argument("--audience", help="the tokens' required aud")
    serve.add_argument(
        "--allow-anonymous",
        action="store_true",
        help="allow the open mode (no authentication) on a non-loopback address",
    )
    serve.add_argument(
        "--compression", action="store_true", help="negotiate per-message deflate (off: faster)"
    )
    limits = serve.add_argument_group("limits (see eventpatterns.realtime.Limits)")
    limit_help = {
        "max_frame_bytes": ("N", "largest client frame in bytes (default 65536; over: close 1009)"),
        "max_subscriptions": ("N", "subscriptions per connection (default 100)"),
        "max_connections_per_principal": (
            "N",
            "open connections of one principal (default 100; over: refused, 429/4429)",
        ),
        "rate": ("PER_S", "client frames per second on average (default 100)"),
        "rate_burst": ("N", "client frames at once (default 200)"),
        "auth_timeout": ("SECONDS", "time allowed to authenticate (default 10; then 4408)"),
    }
    for option, field, _ in _LIMIT_OPTIONS:
        metavar, text = limit_help[field]
        limits.add_argument(option, dest=field, metavar=metavar, help=text)
    serve.add_argument(
        "--jobs",
        metavar="MODULE:FUNCTION",
        help="also serve jobs at /jobs: FUNCTION(tracker) registers the job kinds",
    )
    serve.add_argument(
        "--blobs", metavar="DIR", help="with --jobs: keep large results in files under DIR"
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="also serve the demo page at / (event feed, a job, presence; open it in a browser)",
    )
    serve.set_defaults(handler=_serve)
    push = commands.add_parser(
        "push", help="push notification tools", description="Push notification tools."
    )
    push_commands = push.add_subparsers(dest="push_command", metavar="COMMAND", required=True)
    vapid = push_commands.add_parser(
        "vapid-keys",
        help="print a new VAPID key pair for Web Push",
        description="Print a new VAPID (RFC 8292) P-256 key pair: the private key and the"
        " applicationServerKey browsers subscribe with.",
    )
    vapid.add_argument(
        "--format",
        choices=("pem", "raw"),
        default="pem",
        help="the private key as PKCS#8 PEM (default) or base64url of its 32 octets",
    )
    vapid.add_argument("--json", action="store_true", help="print both keys as a JSON object")
    vapid.set_defaults(handler=_vapid_keys)
    from ._cli_bench import add_parser as add_bench
    from ._cli_dlq import add_parser as add_dlq
    from ._cli_events import add_parsers as add_events
    from ._cli_jobs import add_parser as add_jobs
    from .contracts._cli import add_parser as add_schema

    add_schema(commands)
    add_events(commands)
    add_jobs(commands)
    add_dlq(commands)
    add_bench(commands)
    from ._cli_help import add_examples

    add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Args:
        argv: The arguments (without the program name); ``sys.argv[1:]`` by default.
    """
    from ._cli_bench import split_extra

    parser = _parser()
    argv, extra = split_extra(list(sys.argv[1:] if argv is None else argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse reports usage errors by exiting
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if extra:
        args.extra = extra
    handler: Callable[[argparse.Namespace], int] = args.handler
    from .contracts._cli import SchemaUsageError

    try:
        return handler(args)
    except KeyboardInterrupt:  # Ctrl-C: no traceback (listen treats it as the end)
        return 130
    except (_UsageError, SchemaUsageError) as exc:
        message = str(exc)
    except (ValueError, RecursionError, MemoryError, OverflowError) as exc:
        # Never a traceback: whatever the input, one line and status 2.
        message = f"cannot process the input ({type(exc).__name__}: {str(exc)[:200]})"
    line = f"eventpatterns {args.command}: error: {' '.join(message.split())}"
    try:
        print(line, file=sys.stderr)
    except UnicodeEncodeError:
        print(line.encode("ascii", "backslashreplace").decode("ascii"), file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover - run as a subprocess in the tests
    sys.exit(main())
