"""Log entries decode without re-validation, to exactly the event that was published.

(``backends/redis/_codec.py`` is moving onto a core seam; its behaviour stays this.)
"""

from __future__ import annotations

from datetime import timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns import Event
from eventpatterns.backends.redis._codec import decode_event
from eventpatterns.errors import InvalidEvent

_RESERVED = {"id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject"}
_RESERVED |= {"time", "data", "data_base64"}
_texts = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=12)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
_payloads = st.tuples(st.sampled_from([None, "application/json"]), _json) | st.tuples(
    st.just("application/octet-stream"), _json | st.binary(max_size=8)
)


@st.composite
def _events(draw: st.DrawFn) -> Event:
    content_type, data = draw(_payloads)
    return Event(
        type=draw(_texts),
        source=draw(_texts),
        id=draw(_texts),
        subject=draw(st.none() | _texts),
        time=draw(
            st.datetimes(timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=-3))]))
        ),
        datacontenttype=content_type,
        dataschema=draw(st.none() | st.just("https://example.com/s.json")),
        extensions=draw(
            st.dictionaries(
                st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
                    lambda k: k not in _RESERVED
                ),
                _texts | st.integers(-(2**31), 2**31 - 1) | st.booleans(),
                max_size=3,
            )
        ),
        data=data,
    )


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_events())
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


_HEAD = b'{"specversion":"1.0","id":"1","source":"/s","type":"t"'


@pytest.mark.parametrize(
    "raw",
    [b"", b"[1]", b'{"specversion":"1.0"}', _HEAD.replace(b"1.0", b"0.3") + b"}",
     _HEAD + b"} x", b"\xff", _HEAD + b',"a":NaN}', _HEAD + b',"UPPER":1}'],
)  # fmt: skip
def test_untrusted_entries_are_validated(raw: bytes) -> None:
    with pytest.raises(InvalidEvent):
        decode_event(raw)
