"""JSON for what a shared dispatch state stores: fatigue state and dead letters.

Stores on another process (Redis) keep :class:`~eventpatterns.push.UserFatigue` and
:class:`~eventpatterns.push.PushDeadLetter` as compact JSON; decoding rebuilds the
dataclasses through their own checks, so a stored value that is not one (a corrupt store) raises
:class:`~eventpatterns.errors.BackendUnavailable` naming what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from ..errors import BackendUnavailable, EventPatternsError
from ._dispatch_state import PushDeadLetter
from ._fatigue import Bucket, UserFatigue
from ._notification import Notification, Variant
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult

__all__ = ["decode_fatigue", "decode_letter", "encode_fatigue", "encode_letter"]

_RESULTS: dict[str, type[Delivered | RetryLater | DeadToken | PermanentFailure]] = {
    "delivered": Delivered,
    "retry": RetryLater,
    "dead": DeadToken,
    "failed": PermanentFailure,
}
_KINDS = {kind: name for name, kind in _RESULTS.items()}


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _notification(n: Notification) -> list[Any]:
    fields: list[Any] = [
        n.title, n.body, dict(n.data), n.topic, n.urgency, n.collapse_key, n.ttl,
        n.idempotency_key,
    ]  # fmt: skip
    if n.variants:  # left out when empty: state written before variants reads the same
        fields.append({p: _variant(v) for p, v in n.variants.items()})
    return fields


def _variant(v: Variant | None) -> list[Any] | None:
    return None if v is None else [v.title, v.body, dict(v.data)]


def _to_notification(fields: Any) -> Notification:
    title, body, data, topic, urgency, collapse_key, ttl, key = fields[:8]
    raw = fields[8] if len(fields) > 8 else {}
    variants = {p: None if v is None else Variant(*v) for p, v in raw.items()}
    return Notification(title, body, data, topic, urgency, collapse_key, ttl, key, variants)


def encode_fatigue(state: UserFatigue) -> str:
    """Return ``state`` as JSON."""
    bucket = None if state.bucket is None else [state.bucket.tokens, state.bucket.updated]
    return _dumps({"b": bucket, "h": [_notification(n) for n in state.held], "f": state.folded})


def decode_fatigue(text: str | bytes) -> UserFatigue:
    """Return the fatigue state ``text`` holds.

    Raises:
        BackendUnavailable: ``text`` is not a stored fatigue state.
    """
    try:
        raw = json.loads(text)
        bucket = None if raw["b"] is None else Bucket(float(raw["b"][0]), float(raw["b"][1]))
        held = tuple(_to_notification(n) for n in raw["h"])
        folded = raw["f"]
        if isinstance(folded, bool) or not isinstance(folded, int) or folded < 0:
            raise ValueError(f"folded is {folded!r}")
        return UserFatigue(bucket, held, folded)
    except (EventPatternsError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise BackendUnavailable(f"a stored fatigue state is malformed: {exc}") from None


def encode_letter(letter: PushDeadLetter) -> str:
    """Return ``letter`` as JSON."""
    result = letter.result
    encoded = None
    if result is not None:
        encoded = {"k": _KINDS[type(result)], **dataclasses.asdict(result)}
    return _dumps(
        {
            "id": letter.id, "u": letter.user, "d": letter.device_id, "p": letter.platform,
            "n": _notification(letter.notification), "nid": letter.notification_id,
            "r": letter.reason, "a": letter.attempts, "t": letter.at, "res": encoded,
        }
    )  # fmt: skip


def decode_letter(text: str | bytes) -> PushDeadLetter:
    """Return the dead letter ``text`` holds.

    Raises:
        BackendUnavailable: ``text`` is not a stored dead letter.
    """
    try:
        raw = json.loads(text)
        res = raw["res"]
        result: SendResult | None = None
        if res is not None:
            result = _RESULTS[res.pop("k")](**res)
        for name in ("id", "u", "nid", "r"):
            if not isinstance(raw[name], str):
                raise ValueError(f"{name} is {raw[name]!r}")
        attempts = raw["a"]
        if isinstance(attempts, bool) or not isinstance(attempts, int):
            raise ValueError(f"attempts is {attempts!r}")
        return PushDeadLetter(
            raw["id"], raw["u"], raw["d"], raw["p"], _to_notification(raw["n"]), raw["nid"],
            raw["r"], attempts, float(raw["t"]), result,
        )  # fmt: skip
    except (EventPatternsError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        raise BackendUnavailable(f"a stored push dead letter is malformed: {exc}") from None
