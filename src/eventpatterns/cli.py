"""The ``eventpatterns`` command line.

Subcommands:

* ``test-pattern PATTERN EVENT``: like EventBridge's ``TestEventPattern``; prints
  ``true`` or ``false`` (and, with ``--explain``, why; ``--json`` prints both as
  JSON). PATTERN and EVENT are JSON
  text or ``@file`` (``@-`` reads standard input). Exit status: 0 when it ran,
  2 for an invalid pattern, event or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

EXIT_OK = 0
EXIT_USAGE = 2


class _UsageError(Exception):
    """Bad input on the command line: reported with exit status 2."""


def _read_arg(value: str, what: str) -> str:
    if not value.startswith("@"):
        return value
    name = value[1:]
    try:
        if name == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except OSError as exc:
        raise _UsageError(f"cannot read the {what} from {name!r}: {exc.strerror or exc}") from exc


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
        raise _UsageError(f"invalid event: not valid JSON ({exc})") from exc
    if not isinstance(event, dict):
        raise _UsageError("invalid event: an event must be a JSON object")
    if args.json:
        print(json.dumps(explain(matcher, event).to_dict(), indent=2, ensure_ascii=False))
    elif args.explain:
        explanation = explain(matcher, event)
        print("true" if explanation.matched else "false")
        print(explanation)
    else:
        print("true" if matcher.matches(event) else "false")
    return EXIT_OK


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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status.

    Args:
        argv: The arguments (without the program name); ``sys.argv[1:]`` by default.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse reports usage errors by exiting
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except _UsageError as exc:
        print(f"eventpatterns {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover - run as a subprocess in the tests
    sys.exit(main())
