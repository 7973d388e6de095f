"""``eventpatterns dlq``: list, show, redrive and discard a consumer group's dead letters.

Directly on a bus (``--bus redis://...?prefix=P``, through :class:`EventBus`'s
``dead_letters``, ``get_dead_letter``, ``redrive`` and ``discard_dead_letters``) or
over a running serve's admin routes (``--url``: ``GET /dlq/{group}``,
``GET /dlq/{group}/{id}``, ``POST /dlq/{group}/redrive`` and ``.../discard``, which
need a principal with the admin scope; in the open mode only a loopback client).
"""

from __future__ import annotations

import argparse
import datetime
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from ._cli_common import (
    EXIT_OK,
    UsageError,
    add_http_options,
    base_url,
    check,
    emit,
    http_client,
    open_bus,
    run_async,
)

if TYPE_CHECKING:
    from .bus import EventBus

__all__ = ["add_parser"]

_EXAMPLES = """\
examples:
  eventpatterns dlq list billing --bus 'redis://127.0.0.1:6379/0?prefix=myapp'
  eventpatterns dlq show billing 1733100000000-0 --bus 'redis://127.0.0.1:6379/0?prefix=myapp'
  eventpatterns dlq redrive billing 1733100000000-0 --bus 'redis://127.0.0.1:6379/0?prefix=myapp'
  eventpatterns dlq redrive billing --all --url http://127.0.0.1:8000 --token @admin-token
  eventpatterns dlq discard billing --all --bus 'redis://127.0.0.1:6379/0?prefix=myapp'

--bus reaches the bus directly; --url a running `eventpatterns serve` (its /dlq routes,
which need a principal with the admin scope). `discard` deletes for good.
"""


def _when(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            moment = datetime.datetime.fromtimestamp(value, datetime.timezone.utc)
        except (OverflowError, OSError, ValueError):
            return str(value)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value)


def _table(letters: Sequence[dict[str, Any]]) -> None:
    if not letters:
        emit("no dead letters")
        return
    rows = [
        (
            str(letter.get("id")),
            str(letter.get("attempts")),
            _when(letter.get("failed_at")),
            str((letter.get("event") or {}).get("type")),
            " ".join(str(letter.get("error", "")).split())[:60],
        )
        for letter in letters
    ]
    head = ("ID", "ATTEMPTS", "FAILED AT", "TYPE", "ERROR")
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head) - 1)]
    for row in (head, *rows):
        emit("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1])


def _letters(answer: Any) -> list[dict[str, Any]]:
    """The list in a ``GET /dlq/{group}`` answer (``{"group": ..., "dead_letters": [...]}``)."""
    if isinstance(answer, dict):
        answer = answer.get("dead_letters")
    if not isinstance(answer, list) or not all(isinstance(x, dict) for x in answer):
        raise UsageError("the server's /dlq answer is not a list of dead letters")
    return answer


def _count(answer: Any, key: str) -> int:
    value = answer.get(key) if isinstance(answer, dict) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise UsageError("the server's answer does not say how many")


def _direct(args: argparse.Namespace, work: Any) -> Any:
    """Run ``await work(bus)`` on the bus of ``--bus``; return its result."""
    found: list[Any] = []
    bus = open_bus(args.bus)

    async def run() -> int:
        async with bus:
            found.append(await work(bus))
        return EXIT_OK

    run_async(run)
    return found[0]


def _group_url(args: argparse.Namespace) -> str:
    return f"{base_url(args, '/dlq')}/dlq/{quote(args.group, safe='')}"


def _list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")
    if args.bus is not None:
        from .bff._dlq_routes import dead_letter_json

        async def work(bus: EventBus) -> list[dict[str, Any]]:
            return [
                dead_letter_json(x) for x in await bus.dead_letters(args.group, limit=args.limit)
            ]

        letters: list[dict[str, Any]] = _direct(args, work)
    else:
        url = _group_url(args)
        with http_client(args) as client:
            answer = check(client.get(url, params={"limit": str(args.limit)}), f"GET {url}")
        letters = _letters(answer)
    if args.json:
        emit(json.dumps(letters, indent=2, ensure_ascii=False))
    else:
        _table(letters)
    return EXIT_OK


def _show(args: argparse.Namespace) -> int:
    if args.bus is not None:
        from .bff._dlq_routes import dead_letter_json

        async def work(bus: EventBus) -> dict[str, Any]:
            return dead_letter_json(await bus.get_dead_letter(args.group, args.letter_id))

        letter: Any = _direct(args, work)
    else:
        url = f"{_group_url(args)}/{quote(args.letter_id, safe='')}"
        with http_client(args) as client:
            letter = check(client.get(url), f"GET {url}")
    emit(json.dumps(letter, indent=2, ensure_ascii=False))
    return EXIT_OK


def _ids(args: argparse.Namespace) -> list[str] | None:
    if args.all and args.ids:
        raise UsageError("give dead-letter ids or --all, not both")
    if not args.all and not args.ids:
        raise UsageError("name the dead letters (their ids), or pass --all")
    return None if args.all else list(args.ids)


def _apply(args: argparse.Namespace, action: str) -> int:
    """Redrive or discard (``action``) the dead letters named, or all; return how many."""
    ids = _ids(args)
    if args.bus is not None:

        async def work(bus: EventBus) -> int:
            if action == "redrive":
                return await bus.redrive(args.group, ids)
            return await bus.discard_dead_letters(args.group, ids)

        count: int = _direct(args, work)
        return count
    url = f"{_group_url(args)}/{action}"
    with http_client(args) as client:
        answer = check(client.post(url, json={} if ids is None else {"ids": ids}), f"POST {url}")
    return _count(answer, "count")


def _redrive(args: argparse.Namespace) -> int:
    count = _apply(args, "redrive")
    emit(f"redrove {count} dead letter{'' if count == 1 else 's'} of {args.group!r}")
    return EXIT_OK


def _discard(args: argparse.Namespace) -> int:
    count = _apply(args, "discard")
    emit(f"discarded {count} dead letter{'' if count == 1 else 's'} of {args.group!r}")
    return EXIT_OK


def add_parser(commands: Any) -> None:
    """Add ``dlq`` (list, show, redrive, discard) to the command line's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    dlq = commands.add_parser(
        "dlq",
        help="list, show, redrive or discard a consumer group's dead letters",
        description="A consumer group's dead letters, on a bus or a running serve.",
        epilog=_EXAMPLES,
        formatter_class=raw,
    )
    actions = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    bus = "--bus 'redis://127.0.0.1:6379/0?prefix=myapp'"
    specs = (
        ("list", "list the dead letters, oldest first", _list, f"billing {bus}"),
        ("show", "print one dead letter as JSON", _show, f"billing 1733100000000-0 {bus}"),
        ("redrive", "deliver dead letters to the group again", _redrive, f"billing --all {bus}"),
        ("discard", "delete dead letters for good", _discard, f"billing --all {bus}"),
    )
    for name, text, handler, example in specs:
        parser = actions.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + ".",
            epilog=f"example:\n  eventpatterns dlq {name} {example}", formatter_class=raw,
        )  # fmt: skip
        parser.add_argument("group", metavar="GROUP", help="the consumer group")
        if name == "list":
            parser.add_argument("--limit", type=int, default=100, help="at most N (default 100)")
            parser.add_argument("--json", action="store_true", help="print JSON, not a table")
        elif name == "show":
            parser.add_argument("letter_id", metavar="ID", help="the dead letter's id")
        else:
            parser.add_argument("ids", nargs="*", metavar="ID", help="the dead letters' ids")
            parser.add_argument("--all", action="store_true", help="all of the group's")
        add_http_options(parser, bus=True)
        parser.set_defaults(handler=handler)
