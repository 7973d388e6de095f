"""``eventpatterns publish`` and ``eventpatterns listen``: events in and out from a shell.

Both talk to a running ``eventpatterns serve`` over HTTP (``--url``: ``POST /publish``
and the SSE stream ``GET /events``) or to a bus directly (``--bus redis://...``).
``listen`` prints one event per line as JSON (``--format pretty`` for people) and
ends cleanly on Ctrl-C (status 0) or after ``--count`` events.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ._cli_common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_http_options,
    base_url,
    check,
    emit,
    http_client,
    json_arg,
    open_bus,
    read_arg,
    run_async,
)

if TYPE_CHECKING:
    from .core import Event

__all__ = ["add_parsers", "build_event", "sse_messages"]

_PUBLISH_EXAMPLES = """\
examples:
  eventpatterns publish --type order.placed --source /shop --data '{"total": 250}'
  eventpatterns publish --type order.placed --source /shop --data @order.json --ext tenant=acme
  echo '{"total": 5}' | eventpatterns publish --type order.placed --source /shop --data -
  eventpatterns publish --event @cloudevent.json --url http://127.0.0.1:8000 --token @token.txt
  eventpatterns publish --type t --source /s --bus 'redis://127.0.0.1:6379/0?prefix=myapp'

Prints {"id": ..., "position": ...}: the event's id and its position in the log.
"""

_LISTEN_EXAMPLES = """\
examples:
  eventpatterns listen
  eventpatterns listen --pattern '{"type": ["order.placed"]}' --count 1
  eventpatterns listen --pattern @pattern.json --format pretty --since 1-0
  eventpatterns listen --bus 'redis://127.0.0.1:6379/0?prefix=myapp' --since earliest

Prints one CloudEvent per line as JSON (--format pretty: indented, with the position);
Ctrl-C ends it with status 0. --since replays the events after a position first
("earliest": all the history kept), then goes on live with no gap.
"""


# -- publish ---------------------------------------------------------------------------


def _extensions(items: list[str]) -> dict[str, str]:
    extensions: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(f"--ext takes NAME=VALUE, not {item[:100]!r}")
        extensions[name] = value
    return extensions


def build_event(args: argparse.Namespace) -> Event:
    """The event ``publish`` was asked for: ``--event``, or built from the flags.

    Raises:
        UsageError: Missing or conflicting flags, bad JSON, or an invalid event.
    """
    from .core import Event
    from .errors import ArgumentTypeError, InvalidEvent

    built = (args.type, args.source, args.data, args.subject, args.id)
    if args.event is not None:
        if any(v is not None for v in built) or args.ext:
            raise UsageError("give --event alone, or --type and --source (not both)")
        raw = read_arg(args.event, "event", dash=True)
        try:
            return Event.from_json(raw)
        except InvalidEvent as exc:
            raise UsageError(f"invalid event: {exc}") from exc
    if args.type is None or args.source is None:
        raise UsageError("give --type and --source (or a whole CloudEvent with --event)")
    data = None if args.data is None else json_arg(args.data, "data", dash=True)
    try:
        return Event(
            type=args.type,
            source=args.source,
            data=data,
            id=args.id,
            subject=args.subject,
            extensions=_extensions(args.ext),
        )
    except (InvalidEvent, ArgumentTypeError) as exc:
        raise UsageError(f"invalid event: {exc}") from exc


def _publish(args: argparse.Namespace) -> int:
    event = build_event(args)
    if args.bus is not None:
        if args.url is not None:
            raise UsageError("give --url or --bus, not both")
        answer = {"id": event.id, "position": _publish_direct(args.bus, event)}
    else:
        url = base_url(args, "/publish") + "/publish"
        body = event.to_json()
        with http_client(args) as client:
            response = client.post(
                url, content=body, headers={"content-type": "application/cloudevents+json"}
            )
            answer = check(response, f"POST {url}")
        if not isinstance(answer, dict) or "position" not in answer:
            raise UsageError(f"POST {url}: the answer has no position")
    emit(json.dumps(answer, ensure_ascii=False))
    return EXIT_OK


def _publish_direct(bus_url: str, event: Event) -> str:
    position = ""
    bus = open_bus(bus_url)

    async def publish() -> int:
        nonlocal position
        async with bus:
            position = await bus.publish(event)
        return EXIT_OK

    run_async(publish)
    return position


# -- listen ----------------------------------------------------------------------------


class _Printer:
    """Print events as they arrive; count them against ``--count``."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.pretty = args.format == "pretty"
        self.count: int | None = args.count
        self.printed = 0

    def __call__(self, position: str | None, event_json: str) -> bool:
        """Print one event; return whether ``--count`` is reached."""
        if self.pretty:
            try:
                data = json.loads(event_json)
            except ValueError:
                data = event_json
            title = (
                f"{data.get('type')} from {data.get('source')}" if isinstance(data, dict) else ""
            )
            emit(f"# position {position}  {title}")
            emit(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            emit(event_json)
        self.printed += 1
        return self.count is not None and self.printed >= self.count


def _note(args: argparse.Namespace, text: str) -> None:
    if not args.quiet:
        print(f"eventpatterns listen: {text}", file=sys.stderr, flush=True)


def _listen(args: argparse.Namespace) -> int:
    from .errors import InvalidPattern
    from .filters import compile as compile_pattern

    if args.count is not None and args.count < 1:
        raise UsageError(f"--count must be at least 1, not {args.count}")
    pattern: Any = None
    if args.pattern is not None:
        pattern = json_arg(args.pattern, "pattern", dash=True)
        if not isinstance(pattern, dict):
            raise UsageError("the pattern must be a JSON object")
        try:
            compile_pattern(pattern)  # say what is wrong before connecting
        except InvalidPattern as exc:
            raise UsageError(str(exc)) from exc
    printer = _Printer(args)
    try:
        if args.bus is not None:
            if args.url is not None:
                raise UsageError("give --url or --bus, not both")
            return _listen_direct(args, pattern, printer)
        return _listen_sse(args, pattern, printer)
    except KeyboardInterrupt:  # Ctrl-C: the way to stop listening
        return EXIT_OK
    except BrokenPipeError:  # | head: the reader is done
        sys.stderr.close()  # nothing more to say, and no error at exit
        return EXIT_OK


def _listen_direct(args: argparse.Namespace, pattern: Any, printer: _Printer) -> int:
    bus = open_bus(args.bus)

    async def listen() -> int:
        async with (
            bus,
            bus.subscribe(pattern, since=args.since) as sub,
        ):
            at = "" if sub.position is None else f" at position {sub.position}"
            _note(args, f"subscribed{at}; Ctrl-C to stop")
            async for event in sub:
                if printer(sub.position, event.to_json().decode()):
                    break
        return EXIT_OK

    return run_async(listen)


def sse_messages(lines: Iterable[str]) -> Iterator[tuple[str, str, str | None]]:
    """Read an event stream's lines into messages: ``(event, data, last id)``.

    The dispatch rules of the WHATWG HTML standard, section 9.2.6: a blank line
    dispatches what was gathered (nothing without a ``data`` field), ``data`` lines
    join with LF, one space after the colon is dropped, comments and unknown fields
    are ignored, and the last ``id`` (without a NUL) is kept across messages.
    """
    kind, last_id = "", None
    data: list[str] = []
    for line in lines:
        if line == "":
            if data:
                yield kind or "message", "\n".join(data), last_id
            kind, data = "", []
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id" and "\0" not in value:
            last_id = value


def _listen_sse(args: argparse.Namespace, pattern: Any, printer: _Printer) -> int:
    url = base_url(args, "/events") + "/events"
    params: dict[str, str] = {}
    if pattern is not None:
        params["pattern"] = json.dumps(pattern, separators=(",", ":"))
    if args.since is not None:
        params["since"] = args.since
    with (
        http_client(args, stream=True) as client,
        client.stream("GET", url, params=params, headers={"accept": "text/event-stream"}) as reply,
    ):
        if not reply.is_success:
            reply.read()
            check(reply, f"GET {url}")
        for kind, data, last_id in sse_messages(reply.iter_lines()):
            status = _dispatch(args, printer, kind, data, last_id)
            if status is not None:
                return status
    _note(args, "the server ended the stream")
    return EXIT_FAILED


def _dispatch(
    args: argparse.Namespace, printer: _Printer, kind: str, data: str, position: str | None
) -> int | None:
    """Handle one SSE message; return the exit status to stop with, or ``None``."""
    if kind == "event":
        return EXIT_OK if printer(position, data) else None
    try:
        frame = json.loads(data)
    except ValueError:
        frame = None
    frame = frame if isinstance(frame, dict) else {}
    if kind == "subscribed":
        where = "" if frame.get("position") is None else f" at position {frame['position']}"
        _note(args, f"subscribed{where}; Ctrl-C to stop")  # None: the log is empty
    elif kind == "resync-required":
        reason, at = frame.get("reason"), frame.get("position")
        if reason != "overflow" and args.since is not None:  # the --since given
            raise UsageError(
                f"the server cannot resume from position {args.since!r} (resync-required,"
                f" reason {reason}); listen again without --since, or with --since earliest"
            )
        # Live, this listener fell behind (or the log moved on): say where to resume.
        resume = f"; resume with --since {at}" if at else ""
        print(
            f"eventpatterns listen: the server ended the subscription (resync-required,"
            f" reason {reason}){resume}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_FAILED
    elif kind == "error":
        _note(args, f"server error: {data[:300]}")
    return None


def add_parsers(commands: Any) -> None:
    """Add ``publish`` and ``listen`` to the command line's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    publish = commands.add_parser(
        "publish",
        help="publish one event (to a running serve, or a bus)",
        description="Publish one CloudEvent: built from --type/--source/--data, or --event.",
        epilog=_PUBLISH_EXAMPLES,
        formatter_class=raw,
    )
    publish.add_argument("--type", help="the event type (CloudEvents 'type')")
    publish.add_argument("--source", help="the event source, a URI reference such as /shop")
    publish.add_argument("--data", help="the data: JSON text, @file, or - (standard input)")
    publish.add_argument("--subject", help="the CloudEvents 'subject'")
    publish.add_argument("--id", help="the event id (default: a new one); a repeat is deduped")
    publish.add_argument(
        "--ext", action="append", default=[], metavar="NAME=VALUE",
        help="a CloudEvents extension attribute (repeat for several)",
    )  # fmt: skip
    publish.add_argument(
        "--event", metavar="JSON", help="a whole CloudEvent: JSON text, @file or - (stdin)"
    )
    add_http_options(publish, bus=True)
    publish.set_defaults(handler=_publish)
    listen = commands.add_parser(
        "listen",
        help="print the events that match a pattern as they arrive",
        description="Subscribe with an EventBridge pattern and print events as they arrive.",
        epilog=_LISTEN_EXAMPLES,
        formatter_class=raw,
    )
    listen.add_argument(
        "--pattern", metavar="JSON", help="an EventBridge event pattern: JSON or @file (all events)"
    )
    listen.add_argument(
        "--format", choices=("json", "pretty"), default="json",
        help="json: one event per line (default); pretty: indented, with positions",
    )  # fmt: skip
    listen.add_argument("--count", type=int, metavar="N", help="stop after N events")
    listen.add_argument(
        "--since", metavar="POSITION", help="replay after this position first ('earliest': all)"
    )
    listen.add_argument("--quiet", action="store_true", help="no notes on standard error")
    add_http_options(listen, bus=True)
    listen.set_defaults(handler=_listen)
