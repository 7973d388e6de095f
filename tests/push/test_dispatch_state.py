"""The memory dispatch stores run the public suites; the codec refuses malformed JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import BackendUnavailable
from eventpatterns.push import (
    DispatchState,
    MemoryDispatchState,
    MemoryPushDeadLetters,
    Notification,
    PushDeadLetter,
    PushDeadLetters,
    UserFatigue,
)
from eventpatterns.push._dispatch_codec import (
    decode_fatigue,
    decode_letter,
    encode_fatigue,
    encode_letter,
)
from eventpatterns.testing import DispatchStateSuite, PushDeadLetterSuite


class TestMemoryDispatchState(DispatchStateSuite):
    async def make_state(self, *, key_ttl: float = 3600.0) -> DispatchState:
        return MemoryDispatchState(key_ttl=key_ttl)


class TestMemoryPushDeadLetters(PushDeadLetterSuite):
    async def make_dead_letters(self) -> PushDeadLetters:
        return MemoryPushDeadLetters()


GOOD_FATIGUE = encode_fatigue(UserFatigue(None, (Notification(title="t"),), 1))
GOOD_LETTER = encode_letter(
    PushDeadLetter("pdl-1", "alice", None, None, Notification(), "n", "why", 1, 2.0)
)


@pytest.mark.parametrize(
    "text",
    [
        "", "[]", "{}", '{"b":null,"h":[],"f":-1}', '{"b":null,"h":[],"f":true}',
        '{"b":[1],"h":[],"f":0}', '{"b":null,"h":[["t"]],"f":0}',
        GOOD_FATIGUE.replace('"normal"', '"loud"'),
    ],
)  # fmt: skip
def test_a_malformed_fatigue_state_is_refused_by_name(text: str) -> None:
    with pytest.raises(BackendUnavailable, match="fatigue state is malformed"):
        decode_fatigue(text)


@pytest.mark.parametrize(
    "text",
    [
        "", "[]", "{}", GOOD_LETTER.replace('"u":"alice"', '"u":5'),
        GOOD_LETTER.replace('"a":1', '"a":true'),
        GOOD_LETTER.replace('"res":null', '"res":{"k":"x"}'),
        GOOD_LETTER.replace('"res":null', '"res":{"k":"dead","nope":1}'),
        GOOD_LETTER.replace('"res":null', '"res":[]'),
    ],
)  # fmt: skip
def test_a_malformed_dead_letter_is_refused_by_name(text: str) -> None:
    with pytest.raises(BackendUnavailable, match="push dead letter is malformed"):
        decode_letter(text)


def test_the_codec_round_trips() -> None:
    assert encode_fatigue(decode_fatigue(GOOD_FATIGUE)) == GOOD_FATIGUE
    assert encode_letter(decode_letter(GOOD_LETTER)) == GOOD_LETTER


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(JSON, st.sampled_from(["b", "h", "f", "u", "n", "res", "a", "t"]))
def test_fuzzed_stored_values_decode_or_are_refused(value: object, field: str) -> None:
    for good, decode in ((GOOD_FATIGUE, decode_fatigue), (GOOD_LETTER, decode_letter)):
        raw = json.loads(good)
        if field in raw:
            raw[field] = value
        for text in (json.dumps(raw), json.dumps(value)):
            try:
                decode(text)
            except BackendUnavailable as exc:
                refused = str(exc)
                assert "malformed" in refused
