"""Log entries decode without re-validation, to exactly the event that was published.

(``backends/redis/_codec.py`` is moving onto a core seam; its behaviour stays this.)
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import Event
from eventpatterns.backends.redis._codec import Decoded, decode_event
from eventpatterns.core._json import may_hold_big_int
from eventpatterns.errors import InvalidEvent
from strategies import events


@given(events())
def test_trusted_decoding_builds_the_validated_event(event: Event) -> None:
    raw = event.to_json()
    decoded, validated = decode_event(raw), Event.from_json(raw)
    assert decoded == validated == event
    assert decoded.to_json() == raw
    assert repr(decoded) == repr(validated)
    assert decoded.model_fields_set == validated.model_fields_set


@pytest.mark.parametrize(
    "data",
    [2**63, -(2**63) - 1, 2**64 + 7, [1, {"deep": [10**30]}], 9.3e18, {"x": 1.5}],
)
def test_decoding_keeps_integers_beyond_64_bits_exact(data: object) -> None:
    # orjson reads such integers as floats; the decoder must notice and keep them exact.
    event = Event(type="t", source="/s", data=data)
    decoded = decode_event(event.to_json())
    assert decoded == event
    assert decoded.to_json() == event.to_json()
    assert decode_event(event.to_json().decode()) == event  # as text


_HEAD = b'{"specversion":"1.0","id":"1","source":"/s","type":"t"'


@pytest.mark.parametrize(
    "raw",
    [b"", b"[1]", b'{"specversion":"1.0"}', _HEAD.replace(b"1.0", b"0.3") + b"}",
     _HEAD + b"} x", b"\xff", _HEAD + b',"a":NaN}', _HEAD + b',"UPPER":1}'],
)  # fmt: skip
def test_untrusted_entries_are_validated(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        decode_event(raw)


def test_an_entry_read_twice_is_decoded_once_and_the_cache_stays_bounded() -> None:
    decoded = Decoded(size=2)
    raw = Event(type="t", source="/s", data={"n": 1}).to_json()
    first = decoded.event("e1:1-0", raw)
    assert decoded.event("e1:1-0", raw) is first  # the consumer's read of the reader's entry
    assert decoded.event("e2:1-0", raw) is not first  # another position (epoch): decoded
    decoded.event("e1:2-0", raw)  # full: it starts over
    assert decoded.event("e1:1-0", raw) is not first
    assert decoded.event("e1:1-0", raw) == first


@given(st.one_of(st.text(), st.text(alphabet="0123456789a٣.", max_size=60)))
@settings(max_examples=300)
def test_the_long_digit_run_check_finds_exactly_runs_of_19_ascii_digits(text: str) -> None:
    expected = re.search("[0-9]{19}", text) is not None
    assert may_hold_big_int(text) is expected
    assert may_hold_big_int(text.encode()) is expected
    padded = "x" + "7" * 19 + text
    assert may_hold_big_int(padded)
    assert may_hold_big_int(padded.encode())


def test_a_raw_entry_decodes_once_and_then_keeps_only_the_event() -> None:
    from eventpatterns.backends.redis._codec import RawEntry

    event = Event(type="t", source="/s", data={"n": 1})
    entry = RawEntry("e1:1-0", event.to_json(), Decoded())

    def raw() -> bytes | None:  # read afresh each time (mypy would narrow entry.raw)
        return entry.raw

    assert raw() == event.to_json()
    assert entry.event == event
    assert raw() is None  # decoded: the bytes are let go
    assert entry.event is entry.event
    assert entry.position == "e1:1-0"
    bad = RawEntry("e1:2-0", b'{"type": 1}', Decoded())
    with pytest.raises(InvalidEvent):
        _ = bad.event  # as an eager read would have raised
