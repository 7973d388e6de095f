"""core._json writes and reads what ``json`` does, by orjson where that holds."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.core import _json
from eventpatterns.errors import ArgumentTypeError
from eventpatterns.jobs import Job, JobState
from eventpatterns.jobs._codec import job_from_json, job_to_json

# JSON values as the library's checked data holds them: finite floats, big integers
# (beyond 64 bits: orjson refuses them), text with any character but lone surrogates.
texts = st.text(st.characters(blacklist_categories=["Cs"]), max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)


def stdlib(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


@settings(max_examples=400, deadline=None)
@given(values)
def test_dumps_writes_what_json_reads_as_the_same_value(value: Any) -> None:
    written = _json.dumps(value)
    assert json.loads(written) == json.loads(stdlib(value))
    assert _json.loads(written) == json.loads(written)


@settings(max_examples=200, deadline=None)
@given(values)
def test_without_floats_dumps_writes_the_very_bytes_of_json(value: Any) -> None:
    def floats(v: Any) -> bool:
        if isinstance(v, float):
            return True
        if isinstance(v, dict):
            return any(floats(x) for x in v.values())
        return isinstance(v, list) and any(floats(x) for x in v)

    if not floats(value):
        assert _json.dumps(value) == stdlib(value)


def test_what_orjson_refuses_json_writes() -> None:
    class Color(enum.IntEnum):
        RED = 1

    deep: Any = 1
    for _ in range(300):  # orjson stops at 255 levels
        deep = [deep]
    for value in ({"n": 2**70}, {"n": -(2**64)}, deep, {"c": Color.RED}):
        assert _json.dumps(value) == stdlib(value)


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 123456789012345678901234567890}',  # orjson would read a float
        '{"n": -18446744073709551617}',
        '{"x": NaN}',  # json reads it; orjson refuses
        '"\\ud800"',  # a lone surrogate: json reads it
    ],
)
def test_loads_reads_what_json_reads(text: str) -> None:
    got, want = _json.loads(text), json.loads(text)
    assert repr(got) == repr(want)
    assert repr(_json.loads(text.encode("utf-8", "surrogatepass"))) == repr(want)


def test_loads_raises_what_json_raises() -> None:
    for bad in (b'{"a": 1', b"\xff\xfe", b""):
        with pytest.raises(ValueError):
            _json.loads(bad)


def job(**fields: Any) -> Job:
    base: dict[str, Any] = {
        "id": "j1", "kind": "echo", "owner": "u1", "input": {"n": 1},
        "state": JobState.SUCCEEDED, "version": 3, "created_at": 1.5, "updated_at": 2.5,
    }  # fmt: skip
    return Job(**(base | fields))


@pytest.mark.parametrize(
    "result",
    [
        float("nan"),
        float("inf"),
        {"t": datetime.datetime(2026, 1, 1)},
        [{"x": -float("inf")}],
    ],
)
def test_a_job_record_still_refuses_what_json_refuses(result: Any) -> None:
    with pytest.raises(ArgumentTypeError, match="JSON-serialisable"):
        job_to_json(job(result=result))


@settings(max_examples=200, deadline=None)
@given(values, values)
def test_a_job_record_round_trips_through_its_json(input_: Any, result: Any) -> None:
    original = job(input=input_, result=result)
    text = job_to_json(original)
    assert json.loads(text) == json.loads(
        json.dumps(json.loads(text), ensure_ascii=False, allow_nan=False)
    )
    assert job_from_json(text) == job_from_json(text.encode())
    back = job_from_json(text)
    assert back.input == json.loads(stdlib(input_))
    assert back.result == json.loads(stdlib(result))


@pytest.mark.parametrize(
    "fields",
    [
        {"deadline": float("nan")},
        {"ttl": float("inf")},
        {"updated_at": -float("inf")},
        {"input": {"when": datetime.date(2026, 1, 1)}},
        {"step_outputs": ({"x": float("nan")},)},
    ],
)
def test_a_job_record_refuses_nan_in_any_field(fields: dict[str, Any]) -> None:
    with pytest.raises(ArgumentTypeError, match="JSON-serialisable"):
        job_to_json(job(**fields))


def test_a_job_record_takes_what_json_takes_that_orjson_does_not_know() -> None:
    class Seconds(float):
        pass

    text = job_to_json(job(deadline=Seconds(1.5), input={"big": 2**80}))
    assert json.loads(text)["deadline"] == 1.5
    assert job_from_json(text).input == {"big": 2**80}
