"""A job's record as JSON, for stores that keep bytes (Redis, DynamoDB, files)."""

from __future__ import annotations

import json
from typing import Any

from ..core._json import dumps, loads
from ..errors import ArgumentTypeError, ConfigurationError
from ._model import NO_PROGRESS, Job, JobState, Progress, ResultRef, job_of

__all__ = ["encode_json", "job_from_json", "job_from_record", "job_to_json"]


def job_to_json(job: Job) -> str:
    """Return the job as one JSON object (every field, ``None`` included).

    Raises:
        ArgumentTypeError: The input, result, progress detail or a step output is not
            JSON-serialisable (NaN and infinities included): a store could not keep it.
    """
    record: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "owner": job.owner,
        "input": job.input,
        "state": job.state.value,
        "version": job.version,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": {
            "fraction": job.progress.fraction,
            "message": job.progress.message,
            "detail": None if job.progress.detail is None else dict(job.progress.detail),
        },
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "deadline": job.deadline,
        "run_after": job.run_after,
        "worker": job.worker,
        "lease_until": job.lease_until,
        "cancel_requested": job.cancel_requested,
        "result": job.result,
        "result_ref": None
        if job.result_ref is None
        else {
            "key": job.result_ref.key,
            "size": job.result_ref.size,
            "content_type": job.result_ref.content_type,
            **({} if job.result_ref.filename is None else {"filename": job.result_ref.filename}),
        },
        "error": job.error,
        "idempotency_key": job.idempotency_key,
        "ttl": job.ttl,
        "step": job.step,
        "step_outputs": list(job.step_outputs),
    }
    try:
        if _job_plain(job):  # orjson would write NaN as null: only exact JSON values
            return dumps(record).decode()
        return _strict_dumps(record)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(
            "JobStore", f"job {job.id!r}", expected="JSON-serialisable values", got=exc
        ) from exc


def job_from_json(raw: str | bytes) -> Job:
    """Return the job :func:`job_to_json` wrote.

    Raises:
        ConfigurationError: The text is not such a record (a corrupt or foreign value).
    """
    try:
        return job_from_record(loads(raw))
    except ValueError as exc:
        raise ConfigurationError(f"not a job record: {str(raw)[:80]!r} ({exc})") from exc


def job_from_record(obj: Any) -> Job:
    """Return the job of a decoded record (the object :func:`job_to_json` writes).

    Raises:
        ConfigurationError: ``obj`` is not such a record.
    """
    try:
        _check_types(obj)
        progress = obj["progress"]
        fraction, message, detail = progress["fraction"], progress["message"], progress["detail"]
        ref = obj["result_ref"]
        return job_of((
            obj["id"],
            obj["kind"],
            obj["owner"],
            obj["input"],
            _STATES[obj["state"]],
            obj["version"],
            obj["created_at"],
            obj["updated_at"],
            obj["attempts"],
            obj["max_attempts"],
            NO_PROGRESS
            if fraction == 0 and message == "" and detail is None and type(fraction) is not bool
            else Progress(fraction, message, detail),
            obj["started_at"],
            obj["finished_at"],
            obj["deadline"],
            obj["run_after"],
            obj["worker"],
            obj["lease_until"],
            obj["cancel_requested"],
            obj["result"],
            None
            if ref is None
            else ResultRef(ref["key"], ref["size"], ref["content_type"], ref.get("filename")),
            obj["error"],
            obj["idempotency_key"],
            obj["ttl"],
            obj["step"],
            tuple(obj["step_outputs"]),
        ))  # fmt: skip
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"not a job record: {str(obj)[:80]!r} ({exc})") from exc


def _job_plain(job: Job) -> bool:
    """Tell whether the record of ``job`` holds only exact JSON values, floats finite.

    Only the numbers and what a user gave can be NaN, an infinity or another type:
    orjson writes NaN as ``null`` and encodes some types json refuses (datetimes,
    dataclasses), so only such a record goes to it. The other fields are strings and
    integers whose wrong types orjson refuses itself.
    """
    for number in (
        job.created_at, job.updated_at, job.started_at, job.finished_at, job.deadline,
        job.run_after, job.lease_until, job.ttl, job.progress.fraction,
    ):  # fmt: skip
        kind = type(number)
        if kind is float:
            if number - number != 0.0:  # type: ignore[operator]  # NaN, infinities
                return False
        elif number is not None and kind is not int:
            return False
    detail = job.progress.detail
    return (
        _plain(job.input)
        and _plain(job.result)
        and (detail is None or _plain(dict(detail)))
        and _plain(job.step_outputs)
    )


def encode_json(value: Any) -> bytes:
    """Return ``value`` as compact UTF-8 JSON, refusing NaN and infinities as json does.

    Raises:
        TypeError, ValueError: ``value`` is not JSON-serialisable (``json.dumps`` says why).
    """
    if _plain(value):  # orjson would write NaN as null: only exact JSON values go to it
        return dumps(value)
    return _strict_dumps(value).encode()


#: The standard library's compact UTF-8 encoder, refusing NaN and infinities: what
#: orjson is not given.
_strict_dumps = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


def _plain(value: Any) -> bool:
    """Tell whether ``value`` is made of exact JSON types alone, with finite floats."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return True
    if kind is float:
        return bool(value - value == 0.0)  # NaN and infinities give NaN
    try:
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str or not _plain(item):
                    return False
            return True
        if kind is list or kind is tuple:
            return all(_plain(item) for item in value)
    except RecursionError:  # nested too deep to walk: json.dumps decides
        return False
    return False


_STATES = {state.value: state for state in JobState}
_INTS = ("version", "attempts", "max_attempts", "step")
_TEXTS = ("id", "kind", "owner")
_TIMES = ("created_at", "updated_at")
_OPTIONAL_TIMES = ("started_at", "finished_at", "deadline", "run_after", "lease_until", "ttl")
_OPTIONAL_TEXTS = ("worker", "error", "idempotency_key")


def _check_types(obj: Any) -> None:
    """Refuse a record whose fields have the wrong JSON types (a corrupt value)."""
    if not isinstance(obj, dict):
        raise TypeError("not an object")

    def number(value: Any) -> bool:
        return isinstance(value, int | float) and not isinstance(value, bool)

    for name in _INTS:
        if not isinstance(obj[name], int) or isinstance(obj[name], bool):
            raise TypeError(f"{name} is not an integer")
    for name in _TEXTS:
        if not isinstance(obj[name], str):
            raise TypeError(f"{name} is not a string")
    for name in _TIMES:
        if not number(obj[name]):
            raise TypeError(f"{name} is not a number")
    for name in _OPTIONAL_TIMES:
        if obj[name] is not None and not number(obj[name]):
            raise TypeError(f"{name} is not a number")
    for name in _OPTIONAL_TEXTS:
        if obj[name] is not None and not isinstance(obj[name], str):
            raise TypeError(f"{name} is not a string")
    if not isinstance(obj["cancel_requested"], bool) or not isinstance(obj["step_outputs"], list):
        raise TypeError("cancel_requested or step_outputs has the wrong type")
