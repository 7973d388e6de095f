"""``listen``'s event-stream reader reads back what the gateway's SSE encoder writes."""

from __future__ import annotations

import argparse
import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eventpatterns._cli_common import UsageError
from eventpatterns._cli_events import _dispatch, _Printer, sse_messages
from eventpatterns.realtime._sse import comment, encode_text

NAMES = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), min_size=1, max_size=20)
IDS = st.text(st.characters(blacklist_categories=["Cs", "Cc"]), max_size=20)
DATA = st.text(st.characters(blacklist_categories=["Cs"]), max_size=80)
MESSAGES = st.lists(st.tuples(st.none() | NAMES, DATA, st.none() | IDS), max_size=8)


def _lines(text: str) -> list[str]:
    return re.split(r"\r\n|\r|\n", text)[:-1]  # what httpx's iter_lines() yields


@given(messages=MESSAGES, keepalives=st.booleans())
def test_reads_back_every_message(
    messages: list[tuple[str | None, str, str | None]], keepalives: bool
) -> None:
    stream = "retry: 3000\n\n"
    for event, data, id_ in messages:
        stream += encode_text(data, event=event, id=id_)
        if keepalives:
            stream += comment("keep-alive").decode()
    read = list(sse_messages(_lines(stream)))
    expected: list[tuple[str, str, str | None]] = []
    last: str | None = None
    for event, data, id_ in messages:
        last = last if id_ is None else id_
        expected.append((event or "message", "\n".join(re.split(r"\r\n|\r|\n", data)), last))
    assert read == expected


def test_a_message_without_data_is_not_dispatched() -> None:
    lines = ["event: x", "", "id: 7", "data: a", "data:", "", ": comment", "", "data:b", ""]
    assert list(sse_messages(lines)) == [("message", "a\n", "7"), ("message", "b", "7")]


def test_a_resync_while_live_ends_with_1_and_says_where_to_resume(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = argparse.Namespace(since=None, quiet=False, format="json", count=None)
    frame = '{"type":"resync-required","id":"sse","reason":"overflow","position":"e:41"}'
    assert _dispatch(args, _Printer(args), "resync-required", frame, None) == 1
    assert capsys.readouterr().err == (
        "eventpatterns listen: the server ended the subscription"
        " (resync-required, reason overflow); resume with --since e:41\n"
    )
    args.since = "e:1"
    expired = frame.replace("overflow", "expired")
    with pytest.raises(UsageError, match="cannot resume from position 'e:1'"):
        _dispatch(args, _Printer(args), "resync-required", expired, None)
    assert _dispatch(args, _Printer(args), "error", "{}", None) is None
    assert "server error" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("position", "note"),
    [("e:41", "subscribed at position e:41; Ctrl-C to stop"), (None, "subscribed; Ctrl-C to stop")],
)
def test_the_subscribed_note_names_the_position_only_when_there_is_one(
    position: str | None, note: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A gateway over an empty log confirms with no position ("position": null).
    args = argparse.Namespace(since=None, quiet=False, format="json", count=None)
    frame = json.dumps({"type": "subscribed", "id": "sse", "position": position})
    assert _dispatch(args, _Printer(args), "subscribed", frame, None) is None
    assert capsys.readouterr().err == f"eventpatterns listen: {note}\n"
