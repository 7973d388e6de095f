"""FCM's answers mapped onto the normalised results, in one table (sans-I/O).

The error list is FCM's ``ErrorCode`` enum
(https://firebase.google.com/docs/reference/fcm/rest/v1/ErrorCode); FCM sends it in
``error.details[].errorCode`` of a ``google.firebase.fcm.v1.FcmError`` entry, beside the
``google.rpc`` status in ``error.status``. ``Retry-After`` is read by the one shared
parser, :func:`eventpatterns.core._http_dates.retry_after` (``retry_at`` here).
"""

from __future__ import annotations

import enum
import json

import httpx

from ..core._http_dates import retry_after as retry_at
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult

__all__ = ["Outcome", "fcm_result", "retry_at", "token_expired"]

_PROVIDER = "fcm"
_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"


class Outcome(enum.Enum):
    """Which normalised result an error code becomes."""

    DEAD = "dead"
    RETRY = "retry"
    PERMANENT = "permanent"


#: FCM error code (or google.rpc status when no FcmError came) -> outcome. Anything
#: else: retry on 429 and 5xx, permanent otherwise.
ERRORS: dict[str, Outcome] = {
    # The token is no longer valid (app uninstalled, token expired): remove the device.
    "UNREGISTERED": Outcome.DEAD,
    # The token belongs to another Firebase project's sender: it will never work here.
    "SENDER_ID_MISMATCH": Outcome.DEAD,
    # Too many messages (overall, per device or per topic): back off, honour Retry-After.
    "QUOTA_EXCEEDED": Outcome.RETRY,
    "RESOURCE_EXHAUSTED": Outcome.RETRY,
    "UNAVAILABLE": Outcome.RETRY,
    "INTERNAL": Outcome.RETRY,
    # The request itself is wrong: resending it cannot help.
    "INVALID_ARGUMENT": Outcome.PERMANENT,
    # The APNs certificate or Web Push key of the Firebase project was refused.
    "THIRD_PARTY_AUTH_ERROR": Outcome.PERMANENT,
    # Still 401 after the one refresh TokenAuth makes.
    "UNAUTHENTICATED": Outcome.PERMANENT,
    "PERMISSION_DENIED": Outcome.PERMANENT,
}


def _error(response: httpx.Response) -> tuple[str, str]:
    """Return ``(code, message)`` of an FCM error response, whatever its body."""
    try:
        error = json.loads(response.content)["error"]
        message = str(error.get("message", ""))
        for detail in error.get("details") or ():
            if detail.get("@type") == _FCM_ERROR and detail.get("errorCode"):
                return str(detail["errorCode"]), message
        if error.get("status"):
            return str(error["status"]), message
    except (ValueError, KeyError, TypeError, AttributeError):
        pass
    return str(response.status_code), ""


def token_expired(response: httpx.Response) -> bool:
    """Tell whether a response says the access token is bad (a refresh may help).

    Not for ``THIRD_PARTY_AUTH_ERROR``, also a 401: that is the Firebase project's APNs
    certificate or Web Push key, which no new access token fixes.
    """
    return response.status_code == 401 and _error(response)[0] != "THIRD_PARTY_AUTH_ERROR"


def fcm_result(response: httpx.Response, now: float) -> SendResult:
    """Map a ``messages:send`` response onto a normalised result.

    Args:
        response: The response, body read.
        now: The current time, for ``Retry-After``.

    Returns:
        :class:`Delivered` with the message's ``name``, or the failure ``ERRORS`` says.
    """
    status = response.status_code
    if status == 200:
        try:
            name = json.loads(response.content).get("name")
        except (ValueError, AttributeError):
            name = None
        return Delivered(_PROVIDER, name if isinstance(name, str) else None)
    code, message = _error(response)
    outcome = ERRORS.get(code)
    if outcome is None:
        outcome = Outcome.RETRY if status == 429 or status >= 500 else Outcome.PERMANENT
    if outcome is Outcome.DEAD:
        return DeadToken(_PROVIDER, code, status=status)
    if outcome is Outcome.RETRY:
        at = retry_at(response.headers.get("retry-after"), now)
        return RetryLater(_PROVIDER, code, at=at, status=status)
    return PermanentFailure(_PROVIDER, f"{code}: {message}" if message else code, status=status)
