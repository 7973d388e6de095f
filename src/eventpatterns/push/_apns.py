"""The APNs provider: HTTP/2 requests with a token-based (ES256) provider JWT.

Apple's "Establishing a token-based connection to APNs": the JWT carries ``iss`` (the
team id) and ``iat`` and its header ``kid`` (the key id); APNs refuses a token older
than an hour (``403 ExpiredProviderToken``) and one refreshed more often than every 20
minutes (``429 TooManyProviderTokenUpdates``). So :class:`~eventpatterns.push.TokenAuth`
mints one per ``refresh_after`` (20 to 60 minutes), with ``min_age`` 20 minutes, and
once more when APNs says it expired.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio
import httpx

from ..core import Clock, SystemClock
from ..errors import ArgumentTypeError, ConfigurationError, MissingDependency
from ._apns_message import APNsMessage
from ._auth import TokenAuth
from ._fcm_errors import Outcome, retry_at
from ._http import OwnedClient
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult

__all__ = ["APNsProvider"]

APNS_PRODUCTION_URL = "https://api.push.apple.com"
APNS_SANDBOX_URL = "https://api.sandbox.push.apple.com"
MIN_TOKEN_AGE = 20 * 60
MAX_TOKEN_AGE = 60 * 60

#: APNs ``reason`` -> outcome, from Apple's "Handling notification responses from
#: APNs". Anything else: retry on 429 and 5xx, permanent otherwise.
REASONS: dict[str, Outcome] = {
    # 410: the token is no longer active for the topic; the body's timestamp says since when.
    "Unregistered": Outcome.DEAD,
    "ExpiredToken": Outcome.DEAD,
    # 400: not a token of this environment / app; it will never work.
    "BadDeviceToken": Outcome.DEAD,
    "TooManyRequests": Outcome.RETRY,
    "TooManyProviderTokenUpdates": Outcome.RETRY,
    "IdleTimeout": Outcome.RETRY,
    "InternalServerError": Outcome.RETRY,
    "ServiceUnavailable": Outcome.RETRY,
    "Shutdown": Outcome.RETRY,
    "PayloadTooLarge": Outcome.PERMANENT,
    # Still expired after the one refresh: the clock is wrong; retrying cannot help.
    "ExpiredProviderToken": Outcome.PERMANENT,
}


def _reason(response: httpx.Response) -> tuple[str, float | None]:
    """Return ``(reason, timestamp in seconds)`` of an APNs error response."""
    try:
        body = json.loads(response.content)
        reason = str(body["reason"])[:200]
    except (ValueError, KeyError, TypeError, RecursionError):
        return str(response.status_code), None
    if not reason.strip():  # an empty reason says nothing: name the status instead
        reason = str(response.status_code)
    stamp = body.get("timestamp")
    if isinstance(stamp, (int, float)) and not isinstance(stamp, bool):
        return reason, stamp / 1000.0  # APNs gives milliseconds
    return reason, None


def _expired(response: httpx.Response) -> bool:
    return response.status_code == 403 and _reason(response)[0] == "ExpiredProviderToken"


def apns_result(response: httpx.Response, now: float) -> SendResult:
    """Map an APNs response onto a normalised result (the table is :data:`REASONS`)."""
    status = response.status_code
    if status == 200:
        return Delivered("apns", response.headers.get("apns-id"))
    reason, stamp = _reason(response)
    outcome = REASONS.get(reason)
    if outcome is None:
        outcome = Outcome.RETRY if status == 429 or status >= 500 else Outcome.PERMANENT
    if outcome is Outcome.DEAD:
        return DeadToken("apns", reason, timestamp=stamp, status=status)
    if outcome is Outcome.RETRY:
        return RetryLater(
            "apns", reason, retry_at(response.headers.get("retry-after"), now), status
        )
    return PermanentFailure("apns", reason, status=status)


def _load_key(private_key: str | bytes | os.PathLike[str]) -> object:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    if isinstance(private_key, os.PathLike):
        try:
            private_key = Path(private_key).read_bytes()
        except OSError as exc:
            raise ConfigurationError(f"cannot read the APNs key: {exc}") from exc
    data = private_key.encode() if isinstance(private_key, str) else private_key
    try:
        key = load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigurationError("the APNs key is not a PEM (.p8) private key") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigurationError("the APNs key must be an EC P-256 key (Apple's .p8 file)")
    return key


class APNsProvider(OwnedClient):
    """Send APNs notifications over HTTP/2; each send returns a normalised result.

    Args:
        team_id: The Apple developer team id (the JWT's ``iss``).
        key_id: The key's id (the JWT header's ``kid``).
        private_key: The ``AuthKey_<key id>.p8`` contents (PEM), or a path to it.
        client: The HTTP client; one of its own with HTTP/2 by default, closed by
            :meth:`aclose`. A client passed in must speak HTTP/2 and stays open.
        clock: Tells the token's age.
        production_url: The production endpoint (a fake's URL in tests).
        sandbox_url: The development endpoint, for messages with ``sandbox=True``.
        deadline: Seconds a send may take before it gives up with
            ``RetryLater(reason="timeout")``: APNs sometimes never answers.
        refresh_after: Mint a new provider token after this many seconds (20 to 60 minutes).

    Attributes:
        auth: The :class:`~eventpatterns.push.TokenAuth` holding the provider token
            (``auth.mints`` counts tokens minted).

    Raises:
        ConfigurationError: A key that is not an EC P-256 PEM, empty ids, a
            ``refresh_after`` outside 20-60 minutes.
        MissingDependency: The ``push`` extra is not installed.
    """

    def __init__(
        self,
        *,
        team_id: str,
        key_id: str,
        private_key: str | bytes | os.PathLike[str],
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        production_url: str = APNS_PRODUCTION_URL,
        sandbox_url: str = APNS_SANDBOX_URL,
        deadline: float = 10.0,
        refresh_after: float = 50 * 60,
    ) -> None:
        try:  # the push extra; imported here so that the package stays light
            import cryptography  # noqa: F401
            import h2  # noqa: F401  # httpx's HTTP/2
            import jwt
        except ImportError as exc:
            raise MissingDependency(exc.name or "pyjwt", extra="push") from exc

        if not team_id or not key_id:
            raise ConfigurationError("team_id and key_id must be non-empty")
        if not MIN_TOKEN_AGE <= refresh_after < MAX_TOKEN_AGE:
            raise ConfigurationError(
                f"refresh_after must be between {MIN_TOKEN_AGE} and {MAX_TOKEN_AGE} seconds"
                f" (APNs refuses tokens refreshed more often or older), got {refresh_after!r}"
            )
        if deadline <= 0:
            raise ConfigurationError(f"deadline must be positive, got {deadline!r}")
        self._jwt = jwt
        self._key = _load_key(private_key)
        self.team_id = team_id
        self.key_id = key_id
        self._urls = (production_url.rstrip("/"), sandbox_url.rstrip("/"))
        self._clock = clock or SystemClock()
        self._deadline = deadline
        self._refresh_after = refresh_after
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(http2=True, timeout=deadline)
        self.auth = TokenAuth(
            self._mint,
            expired=_expired,
            margin=0.0,
            min_age=MIN_TOKEN_AGE,
            clock=self._clock,
        )

    def __repr__(self) -> str:
        return f"<APNsProvider team={self.team_id!r} key={self.key_id!r}>"

    async def _mint(self, request: httpx.Request) -> tuple[str, float]:
        now = self._clock.time()
        token = self._jwt.encode(
            {"iss": self.team_id, "iat": int(now)},
            self._key,  # type: ignore[arg-type]  # checked to be an EC key in _load_key
            algorithm="ES256",
            headers={"kid": self.key_id},
        )
        return f"bearer {token}", now + self._refresh_after

    async def send(self, message: APNsMessage) -> SendResult:
        """Send one notification; never raise for what APNs answers.

        Args:
            message: The notification.

        Returns:
            ``Delivered(message_id=<apns-id>)``; ``DeadToken`` for ``410 Unregistered``
            (``timestamp`` in seconds) and ``400 BadDeviceToken``; ``RetryLater`` for
            429, 500, 503, a timeout or a connection error; ``PermanentFailure`` for
            ``413 PayloadTooLarge`` and the other 4xx.

        Raises:
            ArgumentTypeError: ``message`` is not an :class:`APNsMessage`.
            LimitExceeded: The payload is over 4,096 bytes (5,120 for VoIP), before
                anything is sent.
        """
        if not isinstance(message, APNsMessage):
            raise ArgumentTypeError("send", "message", expected="an APNsMessage", got=message)
        body = message.encode()
        url = f"{self._urls[message.sandbox]}/3/device/{message.token}"
        headers = {**message.headers(), "content-type": "application/json"}
        request = self._client.build_request("POST", url, content=body, headers=headers)
        try:
            with anyio.fail_after(self._deadline):
                response = await self._client.send(request, auth=self.auth)
        except (TimeoutError, httpx.TimeoutException):
            return RetryLater("apns", "timeout")
        except httpx.TransportError as exc:
            return RetryLater("apns", f"connection: {type(exc).__name__}")
        return apns_result(response, self._clock.time())
