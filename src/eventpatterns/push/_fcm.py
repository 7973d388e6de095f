"""The FCM HTTP v1 provider: ``messages:send`` with an OAuth2 token from a service account.

The access token comes from the JWT-bearer grant (RFC 7523 section 2.1, as Google's
https://developers.google.com/identity/protocols/oauth2/service-account#httprest
describes): an RS256 assertion signed with the service account's private key, POSTed to
its ``token_uri``. :class:`~eventpatterns.push.TokenAuth` caches it until ``margin``
before it expires and refreshes it once when ``messages:send`` answers 401.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx

from ..core import Clock, SystemClock
from ..errors import (
    ArgumentTypeError,
    AuthenticationFailed,
    ConfigurationError,
    MissingDependency,
)
from ._auth import TokenAuth
from ._fcm_errors import fcm_result, retry_at, token_expired
from ._fcm_message import FCMMessage
from ._http import OwnedClient
from ._result import RetryLater, SendResult

__all__ = ["FCMProvider"]

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
FCM_BASE_URL = "https://fcm.googleapis.com"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_REQUIRED = ("project_id", "client_email", "private_key")


class _TokenUnavailable(Exception):
    """The token endpoint failed transiently; carries the result ``send`` returns."""

    def __init__(self, result: RetryLater) -> None:
        self.result = result


def _load(service_account: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    if isinstance(service_account, Mapping):
        info = dict(service_account)
    else:
        path = Path(service_account)
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigurationError(
                f"cannot read the service-account key {str(path)!r}: {exc}"
            ) from exc
        if not isinstance(info, dict):
            raise ConfigurationError(f"service-account key {str(path)!r} is not a JSON object")
    if info.get("type", "service_account") != "service_account":
        raise ConfigurationError(
            f"expected a service-account key (type 'service_account'), got {info.get('type')!r}"
        )
    missing = [name for name in _REQUIRED if not isinstance(info.get(name), str)]
    if missing:
        raise ConfigurationError(f"service-account key lacks {', '.join(missing)}")
    return info


class FCMProvider(OwnedClient):
    """Send FCM HTTP v1 messages; each send returns a normalised result.

    Args:
        service_account: The service-account key: its JSON as a dict, or a path to it.
        client: The HTTP client (its transport, proxies, limits); one of its own with
            HTTP/2 by default, closed by :meth:`aclose`. A client passed in stays open.
        clock: Tells when the access token expires.
        base_url: Where ``/v1/projects/{project_id}/messages:send`` lives (a fake's URL
            in tests).
        token_url: The OAuth2 token endpoint; the key's ``token_uri`` by default.
        deadline: Seconds a send may take in all (token included) before it gives up
            with ``RetryLater(reason="timeout")``.
        margin: Refresh the access token this many seconds before it expires.

    Attributes:
        project_id: The Firebase project (from the key).
        auth: The :class:`~eventpatterns.push.TokenAuth` holding the access token
            (``auth.mints`` counts tokens fetched).

    Raises:
        ConfigurationError: An unreadable key, a key that is not a service account or
            lacks a field, a private key that is not RSA.
        MissingDependency: The ``push`` extra is not installed.

    Example:
        >>> provider = FCMProvider(service_account)  # doctest: +SKIP
        >>> await provider.send(FCMMessage(token=token, title="Order shipped"))  # doctest: +SKIP
        Delivered(provider='fcm', message_id='projects/my-app/messages/0:15004153%31bd1c96')
    """

    def __init__(
        self,
        service_account: Mapping[str, Any] | str | os.PathLike[str],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        base_url: str = FCM_BASE_URL,
        token_url: str | None = None,
        deadline: float = 10.0,
        margin: float = 300.0,
    ) -> None:
        try:  # the push extra; imported here so that the package stays light
            import h2  # noqa: F401  # httpx's HTTP/2
            import jwt
            from cryptography.hazmat.primitives.asymmetric import rsa
            from cryptography.hazmat.primitives.serialization import load_pem_private_key
        except ImportError as exc:
            raise MissingDependency(exc.name or "pyjwt", extra="push") from exc

        info = _load(service_account)
        try:
            key = load_pem_private_key(info["private_key"].encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ConfigurationError("the service account's private_key is not a PEM key") from exc
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ConfigurationError("the service account's private_key is not an RSA key")
        if deadline <= 0:
            raise ConfigurationError(f"deadline must be positive, got {deadline!r}")
        self._jwt = jwt
        self._key = key
        self._key_id = info.get("private_key_id")
        self._email: str = info["client_email"]
        self.project_id: str = info["project_id"]
        self._token_url = token_url or info.get("token_uri") or GOOGLE_TOKEN_URL
        self._url = f"{base_url.rstrip('/')}/v1/projects/{self.project_id}/messages:send"
        self._clock = clock or SystemClock()
        self._deadline = deadline
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(http2=True, timeout=deadline)
        self.auth = TokenAuth(self._mint, expired=token_expired, margin=margin, clock=self._clock)

    def __repr__(self) -> str:
        return f"<FCMProvider project={self.project_id!r} account={self._email!r}>"

    async def _mint(self, request: httpx.Request) -> tuple[str, float]:
        now = self._clock.time()
        claims = {
            "iss": self._email,
            "scope": FCM_SCOPE,
            "aud": self._token_url,
            "iat": int(now),
            "exp": int(now) + 3600,  # Google's maximum for an assertion
        }
        headers = {"kid": self._key_id} if self._key_id else None
        assertion = self._jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        response = await self._client.post(
            self._token_url, data={"grant_type": JWT_BEARER, "assertion": assertion}
        )
        status = response.status_code
        if status == 429 or status >= 500:
            at = retry_at(response.headers.get("retry-after"), self._clock.time())
            raise _TokenUnavailable(RetryLater("fcm", f"token endpoint {status}", at, status))
        try:
            body = response.json()
        except ValueError:
            body = None
        answer = body if isinstance(body, dict) else {}
        token, expires_in = answer.get("access_token"), answer.get("expires_in", 3600)
        if status != 200 or not isinstance(token, str) or not isinstance(expires_in, (int, float)):
            error = answer.get("error", status)
            detail = answer.get("error_description")
            raise AuthenticationFailed(
                f"the token endpoint refused the service account {self._email!r}:"
                f" {status} {error}" + (f" ({detail})" if detail else ""),
                reason=str(error),
            )
        return f"Bearer {token}", now + expires_in

    async def send(self, message: FCMMessage, *, validate_only: bool = False) -> SendResult:
        """Send one message; never raise for what FCM answers.

        Args:
            message: The message.
            validate_only: Ask FCM to check the message without delivering it.

        Returns:
            ``Delivered(message_id=<name>)``; ``DeadToken`` for ``UNREGISTERED`` and
            ``SENDER_ID_MISMATCH``; ``RetryLater`` (with ``Retry-After``) for
            ``QUOTA_EXCEEDED``, ``UNAVAILABLE``, ``INTERNAL``, a timeout or a connection
            error; ``PermanentFailure`` for ``INVALID_ARGUMENT`` and the rest.

        Raises:
            ArgumentTypeError: ``message`` is not an :class:`FCMMessage`.
            LimitExceeded: The payload is over 4,096 bytes (2,048 for a topic), before
                anything is sent.
            AuthenticationFailed: The token endpoint refused the service account (a
                configuration problem no retry fixes).
        """
        if not isinstance(message, FCMMessage):
            raise ArgumentTypeError("send", "message", expected="an FCMMessage", got=message)
        body = message.encode()  # checks the size before anything is sent
        if validate_only:
            body = json.dumps({"message": message.payload(), "validate_only": True}).encode()
        request = self._client.build_request(
            "POST", self._url, content=body, headers={"content-type": "application/json"}
        )
        try:
            with anyio.fail_after(self._deadline):
                response = await self._client.send(request, auth=self.auth)
        except (TimeoutError, httpx.TimeoutException):
            return RetryLater("fcm", "timeout")
        except httpx.TransportError as exc:
            return RetryLater("fcm", f"connection: {type(exc).__name__}")
        except _TokenUnavailable as exc:
            return exc.result
        return fcm_result(response, self._clock.time())
