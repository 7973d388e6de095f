"""Fuzzing ``POST /publish``: any headers and body get a 202 or a 4xx problem, never a 500."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventpatterns import EventBus
from eventpatterns.bff._ingest import IngestEndpoint
from eventpatterns.core import EventModel, EventRegistry

CONTRACTS = EventRegistry("tests.bff.fuzz")


class Placed(EventModel, type="placed", registry=CONTRACTS):
    order_id: str
    total_cents: int


CONTENT_TYPES = [
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/cloudevents-batch+json; charset=utf-8",
    "application/json",
    "text/plain",
    "",
]
CE_HEADERS = ["ce-specversion", "ce-id", "ce-type", "ce-source", "ce-time", "ce-subject", "ce-x"]
text = st.text(max_size=20)
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)
random_envelope = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "0.3", 1]),
        "id": text | st.integers(),
        "type": st.sampled_from(["t", "placed", ""]) | json_value,
        "source": st.sampled_from(["/s", ""]) | json_value,
        "data": json_value,
        "data_base64": text,
        "datacontenttype": text,
        "time": text,
    },
)
placed_data = st.fixed_dictionaries(
    {}, optional={"order_id": text | st.integers(), "total_cents": st.integers() | text}
)
valid = st.fixed_dictionaries(
    {
        "specversion": st.just("1.0"),
        "id": st.text(min_size=1, max_size=10),
        "type": st.sampled_from(["t", "placed"]),
        "source": st.just("/s"),
    },
    optional={"data": placed_data | json_value},
)
envelope: st.SearchStrategy[Any] = valid | random_envelope
structured = envelope.map(lambda d: json.dumps(d).encode())
batch = st.lists(envelope | json_value, max_size=5).map(lambda d: json.dumps(d).encode())
body = structured | batch | st.binary(max_size=200)
valid_ce = st.fixed_dictionaries(
    {
        "ce-specversion": st.just(b"1.0"),
        "ce-id": st.sampled_from([b"b1", b"b2"]),
        "ce-type": st.sampled_from([b"t", b"placed"]),
        "ce-source": st.just(b"/s"),
    }
)
headers = valid_ce | st.dictionaries(
    st.sampled_from(CE_HEADERS),
    st.text(max_size=15).map(lambda t: t.encode("latin-1", "replace")),
    max_size=6,
)


async def _call(
    app: IngestEndpoint, raw_headers: list[tuple[bytes, bytes]], data: bytes
) -> tuple[int, dict[str, str], bytes]:
    scope: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "headers": raw_headers,
        "query_string": b"",
    }
    messages: list[MutableMapping[str, Any]] = [
        {"type": "http.request", "body": data[:50], "more_body": True},
        {"type": "http.request", "body": data[50:]},
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, end = sent
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, end["body"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(content_type=st.sampled_from(CONTENT_TYPES), ce=headers, data=body)
def test_any_request_is_accepted_or_a_4xx_problem(
    content_type: str, ce: dict[str, bytes], data: bytes
) -> None:
    async def main() -> tuple[int, dict[str, str], bytes]:
        async with EventBus.from_url("memory://") as bus:
            app = IngestEndpoint(
                bus, authorizer=None, contracts=CONTRACTS, max_body=4096, max_batch=3
            )
            raw = [(b"content-type", content_type.encode())] if content_type else []
            raw += [(k.encode(), v) for k, v in ce.items()]
            return await _call(app, raw, data)

    status, answer_headers, answer = anyio.run(main)
    document = json.loads(answer)
    if status == 202:
        assert answer_headers["content-type"] == "application/json"
        ids = [e["id"] for e in document["events"]] if "events" in document else [document["id"]]
        assert all(isinstance(i, str) and i for i in ids)
    else:
        assert 400 <= status < 500, (status, document)
        assert answer_headers["content-type"] == "application/problem+json"
        assert document["status"] == status
        assert document["detail"]


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=100) | json_value.map(lambda v: json.dumps({"ids": v}).encode()))
def test_a_redrive_body_is_ids_all_or_a_400(data: bytes) -> None:
    from eventpatterns.bff._dlq_routes import _ids
    from eventpatterns.bff._ingest import Refused

    refused: Refused | None = None
    ids: list[str] | None = None
    try:
        ids = _ids(data)
    except Refused as exc:
        refused = exc
    if refused is not None:
        assert refused.status == 400
        assert "ids" in refused.detail
    else:
        assert ids is None or all(isinstance(i, str) and i for i in ids)
