"""Hypothesis strategies for valid CloudEvents, shared by the whole suite.

One place defines what a valid event can look like, so every property test draws from
the same space: ``from strategies import events`` (``tests/`` is on ``sys.path``
through its ``conftest.py``). Narrow it per test with keyword strategies, e.g.
``events(type=st.sampled_from(["a", "b.c"]), source=st.just("/s"))``.

The bus tests' small events, for instance, are
``events(type=st.sampled_from(["a", "b.c"]), source=st.just("/s"), id=st.none(),
time=st.none(), subject=st.none() | st.just("subj"), data=..., extensions=...)``.
"""

from __future__ import annotations

import json
from datetime import timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from eventpatterns.core import ATTRIBUTES, Event

#: Member names of a structured event that are not extensions.
RESERVED = frozenset((*ATTRIBUTES, "data", "data_base64"))

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
#: Every UTC offset RFC 3339 can write (whole minutes, up to 23:59 either way).
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
def events(draw: st.DrawFn, /, **fields: st.SearchStrategy[Any]) -> Event:
    """Draw a valid event: any attributes, extensions, offsets and payloads.

    Args:
        draw: Hypothesis' draw function.
        **fields: A strategy per ``Event`` argument to use instead of the default one
            (``type=st.just("t")``). A ``data`` strategy without a
            ``datacontenttype`` one gives events without a content type;
            ``id=st.none()`` and ``time=st.none()`` give the constructor's defaults
            (a fresh UUIDv7, now), for tests where ids must not collide.
    """
    defaults: dict[str, st.SearchStrategy[Any]] = {
        "type": attribute_text,
        "source": attribute_text,
        "id": attribute_text,
        "subject": st.none() | attribute_text,
        "time": times,
        "dataschema": st.none() | st.just("https://example.com/schema.json"),
        "extensions": extensions,
    }
    unknown = set(fields) - {*defaults, "data", "datacontenttype"}
    if unknown:
        raise TypeError(f"events() got unknown fields {sorted(unknown)}")
    if "data" in fields or "datacontenttype" in fields:
        content_type = draw(fields.get("datacontenttype", st.none()))
        payload = draw(fields.get("data", st.none()))
    else:
        content_type, payload = draw(payloads())
    values = {name: draw(fields.get(name, strategy)) for name, strategy in defaults.items()}
    return Event(datacontenttype=content_type, data=payload, **values)
