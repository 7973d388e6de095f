"""Hypothesis strategies for valid CloudEvents, shared by the core property tests."""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from eventpatterns.core import Event

RESERVED = {
    "id", "source", "specversion", "type", "datacontenttype", "dataschema", "subject", "time",
    "data", "data_base64",
}  # fmt: skip

#: Strings CloudEvents allows: no control characters, surrogates or noncharacters.
attribute_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cn")), min_size=1, max_size=30
)
extension_names = st.from_regex(r"[a-z0-9]{1,20}", fullmatch=True).filter(
    lambda name: name not in RESERVED
)
extension_values = st.one_of(attribute_text, st.integers(-(2**31), 2**31 - 1), st.booleans())
extensions = st.dictionaries(extension_names, extension_values, max_size=4)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
times = st.datetimes(timezones=offsets)

JSON_TYPES = ("application/json", "application/vnd.example+json; charset=utf-8", "text/json")
OTHER_TYPES = ("text/plain", "application/octet-stream", "image/png")


@st.composite
def payloads(draw: st.DrawFn) -> tuple[str | None, Any]:
    """Draw a ``(datacontenttype, data)`` pair that an Event accepts."""
    content_type = draw(st.sampled_from((None, *JSON_TYPES, *OTHER_TYPES)))
    if content_type in JSON_TYPES:
        if draw(st.booleans()):
            raw = json.dumps(draw(json_values), ensure_ascii=draw(st.booleans()))
            return content_type, raw.encode()
        return content_type, draw(json_values)
    return content_type, draw(json_values | st.binary(max_size=32))


@st.composite
def events(draw: st.DrawFn, *, data: st.SearchStrategy[Any] | None = None) -> Event:
    """Draw a valid event: any attributes, extensions, offsets and payloads."""
    if data is None:
        content_type, payload = draw(payloads())
    else:
        content_type, payload = None, draw(data)
    return Event(
        type=draw(attribute_text),
        source=draw(attribute_text),
        id=draw(attribute_text),
        subject=draw(st.none() | attribute_text),
        time=draw(times),
        datacontenttype=content_type,
        dataschema=draw(st.none() | st.just("https://example.com/schema.json")),
        extensions=draw(extensions),
        data=payload,
    )
