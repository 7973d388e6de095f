r"""``eventpatterns jobs``: submit, inspect, watch and cancel jobs over a serve's HTTP routes.

The routes are the async request-reply pattern of ``eventpatterns.jobs.asgi``:
``POST /jobs/{kind}`` (202 + ``Location``), ``GET /jobs/{id}`` with a long poll
(``?wait=`` and ``If-None-Match``), ``GET /jobs/{id}/result`` and ``DELETE /jobs/{id}``.
``watch`` draws a progress bar on a terminal (``\\r``, plain text) and prints one line
per change otherwise; it exits 0 when the job succeeds and 1 when it fails or is
cancelled.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import quote

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
)

if TYPE_CHECKING:
    import httpx

__all__ = ["ProgressView", "add_parser"]

_EXAMPLES = """\
examples:
  eventpatterns jobs submit report --input '{"month": "2026-11"}'
  eventpatterns jobs submit report --input @input.json --idempotency-key nov-report --watch
  eventpatterns jobs status 01JD2X7K3M
  eventpatterns jobs watch 01JD2X7K3M
  eventpatterns jobs result 01JD2X7K3M > report.json
  eventpatterns jobs cancel 01JD2X7K3M

--url is the running `eventpatterns serve --jobs MODULE:FUNCTION` (default
$EVENTPATTERNS_URL or http://127.0.0.1:8000). `watch` exits 0 when the job
succeeded (printing its result link) and 1 when it failed or was cancelled.
"""

#: How long one long poll asks the server to wait (it caps it, 30 s by default).
LONG_POLL = 25.0
_FINAL = ("succeeded", "failed", "cancelled", "unknown")
_BAR = 30


class ProgressView:
    r"""Show a job's progress: a bar redrawn with ``\\r`` on a terminal, else lines.

    Args:
        stream: Where to write.
        tty: Redraw one line (a terminal) instead of printing a line per change.
    """

    def __init__(self, stream: TextIO, *, tty: bool) -> None:
        self.stream = stream
        self.tty = tty
        self._last: tuple[Any, ...] | None = None
        self._width = 0

    def show(self, job: dict[str, Any]) -> None:
        """Show the job as it now is (nothing when nothing visible changed)."""
        progress = job.get("progress") or {}
        fraction = progress.get("fraction")
        message = progress.get("message") or ""
        state = str(job.get("state"))
        seen = (state, fraction, message)
        if seen == self._last:
            return
        self._last = seen
        share = float(fraction) if isinstance(fraction, int | float) else -1.0
        known = 0 <= share <= 1
        share = share if known else 0.0
        percent = f"{round(100 * share):3d}%" if known else "   ?"
        if self.tty:
            filled = round(_BAR * share)
            bar = "#" * filled + "-" * (_BAR - filled)
            line = f"[{bar}] {percent} {state}  {message}".rstrip()
            pad = max(0, self._width - len(line))
            self._width = len(line)
            self.stream.write("\r" + line + " " * pad)
        else:
            self.stream.write(f"{state} {percent.strip()} {message}".rstrip() + "\n")
        self.stream.flush()

    def end(self, text: str) -> None:
        """Finish the bar's line and print ``text`` on a line of its own."""
        if self.tty and self._width:
            self.stream.write("\n")
        self.stream.write(text + "\n")
        self.stream.flush()


def _job_url(base: str, job_id: str) -> str:
    if not job_id or len(job_id) > 500:
        raise UsageError("a job id is 1 to 500 characters")
    return f"{base}/jobs/{quote(job_id, safe='')}"


def _print_job(job: Any) -> None:
    emit(json.dumps(job, indent=2, ensure_ascii=False))


def _submit(args: argparse.Namespace) -> int:
    base = base_url(args, "/jobs")
    if not args.kind or "/" in args.kind:
        raise UsageError(f"a job kind is a name without '/', not {args.kind[:100]!r}")
    payload = None if args.input is None else json_arg(args.input, "input", dash=True)
    headers = {} if args.idempotency_key is None else {"idempotency-key": args.idempotency_key}
    url = f"{base}/jobs/{quote(args.kind, safe='')}"
    with http_client(args) as client:
        if payload is None:
            response = client.post(url, headers=headers)
        else:
            response = client.post(url, json=payload, headers=headers)
        job = check(response, f"submit {args.kind!r}")
        if not args.watch:
            _print_job(job)
            return EXIT_OK
        print(f"job {job.get('id')}", file=sys.stderr, flush=True)
        return _watch_with(client, base, str(job.get("id")), job, response.headers.get("etag"))


def _status(args: argparse.Namespace) -> int:
    base = base_url(args, "/jobs")
    with http_client(args) as client:
        job = check(client.get(_job_url(base, args.job_id)), f"job {args.job_id!r}")
    _print_job(job)
    return EXIT_OK


def _cancel(args: argparse.Namespace) -> int:
    base = base_url(args, "/jobs")
    with http_client(args) as client:
        job = check(client.delete(_job_url(base, args.job_id)), f"cancel {args.job_id!r}")
    _print_job(job)
    return EXIT_OK


def _result(args: argparse.Namespace) -> int:
    base = base_url(args, "/jobs")
    url = _job_url(base, args.job_id) + "/result"
    with http_client(args) as client:
        response = client.get(url, follow_redirects=True)  # 303 to a signed blob URL
        if not response.is_success:
            check(response, f"result of {args.job_id!r}")
        buffer = getattr(sys.stdout, "buffer", None)
        if buffer is None:
            emit(response.text, end="")
        else:
            sys.stdout.flush()
            buffer.write(response.content)
            buffer.flush()
    return EXIT_OK


def _watch(args: argparse.Namespace) -> int:
    base = base_url(args, "/jobs")
    with http_client(args) as client:
        return _watch_with(client, base, args.job_id, None, None)


def _watch_with(client: httpx.Client, base: str, job_id: str, job: Any, etag: str | None) -> int:
    """Show ``job`` (fetched first when ``None``), then each change, until it ends.

    Each long poll sends the last ``ETag`` seen, so the server answers as soon as the
    job changes (and ``304`` when the wait ends without a change).
    """
    url = _job_url(base, job_id)
    tty = sys.stdout.isatty()
    view = ProgressView(sys.stdout, tty=tty)
    if job is None:
        response = client.get(url)
        job = check(response, f"job {job_id!r}")
        etag = response.headers.get("etag")
    try:
        while True:
            if not isinstance(job, dict):
                raise UsageError(f"job {job_id!r}: the answer is not a job")
            view.show(job)
            if job.get("state") in _FINAL:
                break
            headers = {} if etag is None else {"if-none-match": etag}
            wait = client.timeout.connect or 10.0
            response = client.get(
                url,
                params={"wait": str(LONG_POLL)},
                headers=headers,
                timeout=LONG_POLL + wait,
            )
            if response.status_code == 304:
                continue
            job = check(response, f"job {job_id!r}")
            etag = response.headers.get("etag")
    except KeyboardInterrupt:
        view.end(f"stopped watching; the job goes on: eventpatterns jobs status {job_id}")
        return EXIT_FAILED
    return _final(view, base, job)


def _final(view: ProgressView, base: str, job: dict[str, Any]) -> int:
    state = job.get("state")
    if state == "succeeded":
        link = (job.get("links") or {}).get("result")
        where = f"{base}{link}" if isinstance(link, str) and link.startswith("/") else link
        view.end(f"succeeded: {where}" if where else "succeeded")
        return EXIT_OK
    error = job.get("error")
    view.end(f"{state}: {error}" if error else str(state))
    return EXIT_FAILED


def add_parser(commands: Any) -> None:
    """Add ``jobs`` (submit, status, watch, result, cancel) to the subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    jobs = commands.add_parser(
        "jobs",
        help="submit, watch and cancel long-running jobs of a running serve",
        description="Long-running jobs over a serve's /jobs routes.",
        epilog=_EXAMPLES,
        formatter_class=raw,
    )
    actions = jobs.add_subparsers(dest="jobs_command", metavar="ACTION", required=True)

    def action(name: str, text: str, example: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name, help=text, description=text[0].upper() + text[1:] + ".",
            epilog=f"example:\n  {example}", formatter_class=raw,
        )  # fmt: skip
        return parser

    submit = action(
        "submit", "submit a job (prints it; --watch follows it)",
        "eventpatterns jobs submit report --input '{\"month\": \"2026-11\"}' --watch",
    )  # fmt: skip
    submit.add_argument("kind", metavar="KIND", help="the job kind")
    submit.add_argument("--input", metavar="JSON", help="the input: JSON text, @file or -")
    submit.add_argument(
        "--idempotency-key", metavar="KEY", help="submitting again with this key gives the same job"
    )
    submit.add_argument("--watch", action="store_true", help="then watch it, as `jobs watch`")
    add_http_options(submit, bus=False)
    submit.set_defaults(handler=_submit)
    for name, text, handler in (
        ("status", "print a job's status as JSON", _status),
        ("watch", "follow a job's progress until it ends", _watch),
        ("result", "print a succeeded job's result", _result),
        ("cancel", "ask a job to stop", _cancel),
    ):
        parser = action(name, text, f"eventpatterns jobs {name} 01JD2X7K3M")
        parser.add_argument("job_id", metavar="ID", help="the job's id")
        add_http_options(parser, bus=False)
        parser.set_defaults(handler=handler)
