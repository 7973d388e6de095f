"""Whatever the argument values, a command ends with a status and at most one error line."""

from __future__ import annotations

import contextlib
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.cli import main

DEAD = "http://127.0.0.1:1"  # nothing listens there: a refused connection, at once

VALUES = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["{}", "[]", "null", "1", '{"a": [1]}', '{"type": ["t"]}', "@-", "-", "@"]),
    st.sampled_from(["earliest", "0-0", "x:1", "@/nonexistent", "a=b", "=", "Bad=1"]),
)
COMMANDS = st.sampled_from(
    [
        ["publish", "--type", "{0}", "--source", "{1}", "--data", "{2}", "--url", DEAD],
        [
            "publish",
            "--type",
            "t",
            "--source",
            "/s",
            "--ext",
            "{0}",
            "--subject",
            "{1}",
            "--url",
            DEAD,
        ],
        ["publish", "--event", "{0}", "--url", "{1}"],
        [
            "publish",
            "--type",
            "t",
            "--source",
            "/s",
            "--token",
            "{0}",
            "--id",
            "{1}",
            "--url",
            DEAD,
        ],
        ["listen", "--pattern", "{0}", "--since", "{1}", "--url", DEAD],
        ["listen", "--pattern", "{0}", "--bus", "nope://{1}"],
        ["jobs", "submit", "{0}", "--input", "{1}", "--idempotency-key", "{2}", "--url", DEAD],
        ["jobs", "status", "{0}", "--url", DEAD],
        ["jobs", "watch", "{0}", "--api-key", "{1}", "--url", DEAD],
        ["dlq", "show", "{0}", "{1}", "--url", DEAD],
        ["dlq", "redrive", "{0}", "{1}", "--bus", "redis://127.0.0.1:1/0"],
        ["dlq", "discard", "{0}", "--all", "--bus", "memory://{1}"],
        ["dlq", "list", "{0}", "--bus", "redis://127.0.0.1:1/{1}"],
        ["bench", "{0}", "--root", "/nonexistent/{1}"],
    ]
)


@settings(max_examples=150)
@given(command=COMMANDS, values=st.lists(VALUES, min_size=3, max_size=3))
def test_no_traceback_for_any_argument_value(command: list[str], values: list[str]) -> None:
    argv = [part.format(*values) for part in command]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    assert status in (0, 2), (argv, err.getvalue())
    if status == 2:
        lines = err.getvalue().splitlines()
        assert len(lines) == 1 or lines[0].startswith("usage:"), err.getvalue()
        assert "Traceback" not in err.getvalue()
