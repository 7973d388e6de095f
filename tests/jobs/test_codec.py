"""A job's JSON record: every field round-trips, and garbage is refused cleanly."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.errors import ArgumentTypeError, ConfigurationError
from eventpatterns.jobs import (
    CompleteStep,
    Job,
    Progress,
    ReportProgress,
    ResultRef,
    Start,
    Succeed,
    transition,
)
from eventpatterns.jobs._codec import job_from_json, job_to_json
from eventpatterns.jobs._model import NO_PROGRESS, job_of

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(
    data=JSON,
    output=JSON,
    fraction=st.floats(0, 1),
    now=st.floats(0, 2e9),
    key=st.none() | st.text(min_size=1),
)
def test_every_field_round_trips(
    data: object, output: object, fraction: float, now: float, key: str | None
) -> None:
    job = Job.new("j", "k", owner="ü", input=data, now=now, idempotency_key=key, ttl=5)
    job = transition(job, Start("w", lease=9), now)
    job = transition(job, ReportProgress("w", Progress(fraction, "m", {"d": output})), now)
    job = transition(job, CompleteStep("w", 0, output), now)
    for version in (job, transition(job, Succeed("w", result_ref=ResultRef("r", 3)), now)):
        assert job_from_json(job_to_json(version)) == version


@pytest.mark.parametrize("bad", [float("nan"), {1, 2}, b"x", object()])
def test_values_json_cannot_hold_are_refused(bad: object) -> None:
    with pytest.raises(ArgumentTypeError, match="JSON-serialisable"):
        job_to_json(Job.new("j", "k", owner="o", input=[bad], now=0))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200) | JSON.map(json.dumps))
def test_anything_else_is_a_configuration_error(raw: str | bytes) -> None:
    with pytest.raises(ConfigurationError, match="not a job record"):
        job_from_json(raw)


def test_a_record_with_a_wrong_field_is_refused() -> None:
    good = json.loads(job_to_json(Job.new("j", "k", owner="o", input=None, now=0)))
    for field, value in (("state", "sleeping"), ("progress", {"fraction": 7}), ("version", None)):
        broken = dict(good, **{field: value})
        with pytest.raises((ConfigurationError, ArgumentTypeError)):
            job_from_json(json.dumps(broken))


def test_a_record_read_back_is_the_job_its_constructor_builds() -> None:
    job = Job.new("j1", "k", owner="o", input={"n": [1, 2]}, now=5.0)
    values = tuple(getattr(job, f.name) for f in dataclasses.fields(Job))
    assert job_of(values) == Job(*values)
    assert type(job_of(values)) is Job
    back = job_from_json(job_to_json(job))
    assert back == job
    assert back.progress is NO_PROGRESS  # the shared "no progress yet"
    reported = dataclasses.replace(job, progress=Progress(0.25, "a quarter", {"k": 1}))
    assert job_from_json(job_to_json(reported)) == reported
    with pytest.raises(ValueError, match="shorter"):
        job_of(values[:-1])
