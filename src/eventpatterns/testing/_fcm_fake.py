"""A local FCM HTTP v1 service and its OAuth2 token endpoint, over a real socket.

``POST /token`` takes the JWT-bearer grant and verifies the assertion against the
service account's public key (RS256, ``iss``, ``aud``, ``scope``, ``exp`` at most an hour
after ``iat``), then issues an access token with an expiry. ``POST
/v1/projects/{id}/messages:send`` checks the bearer token and the message's shape and
records it, or answers the error it was told to, with FCM's error JSON.
"""

from __future__ import annotations

import collections
import json
import secrets
from dataclasses import dataclass
from typing import Any

import anyio

from ..core import Clock, SystemClock
from ._fake_server import Receive, Scope, Send, read_request, respond, serve_asgi

__all__ = ["FCM_ERRORS", "FakeFCM", "make_service_account"]

_FCM_ERROR = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
_SCOPES = (
    "https://www.googleapis.com/auth/firebase.messaging",
    "https://www.googleapis.com/auth/cloud-platform",
)
_TARGETS = ("token", "topic", "condition")
_FIELDS = frozenset(
    {
        *_TARGETS,
        "name",
        "notification",
        "data",
        "android",
        "apns",
        "webpush",
        "fcm_options",
        "fcmOptions",
    }
)

#: Error code -> (HTTP status, google.rpc status, message), as FCM answers them.
#: ``UNAUTHENTICATED`` is the 401 of a bad or expired access token (no FcmError detail).
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (429, "RESOURCE_EXHAUSTED", "Quota exceeded."),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
    "UNAUTHENTICATED": (
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token.",
    ),
}


def make_service_account(
    *,
    project_id: str = "demo-project",
    token_uri: str = "https://oauth2.googleapis.com/token",  # noqa: S107 - a URL
) -> dict[str, str]:
    """Make a service-account key (the JSON Google's console downloads) with a fresh RSA key.

    Args:
        project_id: The Firebase project.
        token_uri: Where the provider asks for access tokens (a :class:`FakeFCM`'s ``token_url``).
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": f"firebase-adminsdk@{project_id}.iam.gserviceaccount.com",
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
    }


@dataclass
class _Answer:
    code: str | None  # None: never answer
    retry_after: str | None = None


def _error_body(code: str) -> tuple[int, dict[str, Any]]:
    status, rpc, message = FCM_ERRORS[code]
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc}
    if code != "UNAUTHENTICATED":
        error["details"] = [{"@type": _FCM_ERROR, "errorCode": code}]
    return status, {"error": error}


def _shape_error(body: bytes) -> str | None:
    """Why a ``messages:send`` body is malformed, or ``None``."""
    try:
        request = json.loads(body)
    except ValueError:
        return "the body is not JSON"
    message = request.get("message") if isinstance(request, dict) else None
    if not isinstance(message, dict):
        return "no 'message' object"
    unknown = set(message) - _FIELDS
    if unknown:
        return f"Invalid JSON payload received. Unknown name {sorted(unknown)[0]!r}"
    targets = [name for name in _TARGETS if name in message]
    if len(targets) != 1:
        return f"exactly one of token, topic, condition is required, got {targets}"
    data = message.get("data", {})
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        return "data values must be strings"
    rest = {k: v for k, v in message.items() if k not in _TARGETS}
    size = len(json.dumps(rest, separators=(",", ":"), ensure_ascii=False).encode())
    limit = 4096 if "token" in message else 2048
    if size > limit:
        return f"Message is too big: {size} bytes, the limit is {limit}"
    return None


class FakeFCM:
    """A local FCM HTTP v1 endpoint with its OAuth2 token endpoint; ``async with`` runs it.

    Args:
        project_id: The project whose ``messages:send`` it serves.
        service_account: The key whose assertions it accepts (a fresh one by default,
            see :attr:`service_account`, whose ``token_uri`` points here).
        clock: Tells when access tokens and assertions expire.
        token_lifetime: Seconds an access token lasts (``expires_in``).

    Attributes:
        messages: Every accepted ``message`` object, in order.
        token_requests: How many access tokens it issued.

    Example:
        >>> async with FakeFCM() as fcm:  # doctest: +SKIP
        ...     provider = FCMProvider(fcm.service_account, base_url=fcm.base_url)
    """

    def __init__(
        self,
        *,
        project_id: str = "demo-project",
        service_account: dict[str, str] | None = None,
        clock: Clock | None = None,
        token_lifetime: int = 3600,
    ) -> None:
        self.project_id = project_id
        self._account = service_account or make_service_account(project_id=project_id)
        self._clock = clock or SystemClock()
        self._lifetime = token_lifetime
        self._tokens: dict[str, float] = {}  # access token -> expiry
        self._answers: collections.deque[_Answer] = collections.deque()
        self._token_answers: collections.deque[tuple[int, str]] = collections.deque()
        self._unregistered: set[str] = set()
        self._closing = anyio.Event()
        self._port: int | None = None
        self._stack: Any = None
        self.messages: list[dict[str, Any]] = []
        self.token_requests = 0

    # -- what a test tells it ---------------------------------------------------------
    def fail(self, code: str, *, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` sends with an FCM error (a key of :data:`FCM_ERRORS`)."""
        if code not in FCM_ERRORS:
            raise ValueError(f"unknown FCM error {code!r}; known: {sorted(FCM_ERRORS)}")
        self._answers.extend(_Answer(code, retry_after) for _ in range(times))

    def hang(self, *, times: int = 1) -> None:
        """Never answer the next ``times`` sends (until the fake closes)."""
        self._answers.extend(_Answer(None) for _ in range(times))

    def fail_token(
        self, status: int = 400, error: str = "invalid_grant", *, times: int = 1
    ) -> None:
        """Answer the next ``times`` token requests with an OAuth2 error."""
        self._token_answers.extend((status, error) for _ in range(times))

    def unregister(self, token: str) -> None:
        """Answer every later send to ``token`` with ``UNREGISTERED``."""
        self._unregistered.add(token)

    def revoke_tokens(self) -> None:
        """Make every access token issued so far invalid (the next send gets 401)."""
        self._tokens.clear()

    # -- where it is ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The URL to pass as ``FCMProvider(base_url=...)``."""
        if self._port is None:
            raise RuntimeError("FakeFCM is not running; use 'async with FakeFCM() as fcm'")
        return f"http://127.0.0.1:{self._port}"

    @property
    def token_url(self) -> str:
        """The OAuth2 token endpoint."""
        return f"{self.base_url}/token"

    @property
    def service_account(self) -> dict[str, str]:
        """The service-account key, its ``token_uri`` pointing at this fake."""
        return {**self._account, "token_uri": self.token_url}

    async def __aenter__(self) -> FakeFCM:
        from contextlib import AsyncExitStack

        self._closing = anyio.Event()  # a fresh one each time the fake starts
        self._stack = AsyncExitStack()
        self._port = await self._stack.enter_async_context(serve_asgi(self._app))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()
        await self._stack.aclose()
        self._port = None

    # -- the service ------------------------------------------------------------------
    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        if request.method == "POST" and request.path == "/token":
            form = dict(_form(request.body))
            await respond(send, *self._token(form))
        elif (
            request.method == "POST"
            and request.path == f"/v1/projects/{self.project_id}/messages:send"
        ):
            await self._send(request.headers, request.body, send)
        else:
            await respond(
                send, 404, {"error": {"code": 404, "message": "Not Found", "status": "NOT_FOUND"}}
            )

    def _token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        import jwt

        if self._token_answers:
            status, error = self._token_answers.popleft()
            return status, {"error": error, "error_description": "told to fail"}
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "Invalid grant_type",
            }
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        public = load_pem_private_key(self._account["private_key"].encode(), None).public_key()
        try:
            claims = jwt.decode(
                form.get("assertion", ""),
                public,  # type: ignore[arg-type]
                algorithms=["RS256"],
                audience=self.token_url,
                issuer=self._account["client_email"],
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iat", "exp", "scope"],
                },
            )
            kid = jwt.get_unverified_header(form.get("assertion", "")).get("kid")
        except jwt.PyJWTError as exc:
            return 400, {"error": "invalid_grant", "error_description": f"Invalid JWT: {exc}"}
        if kid is not None and kid != self._account.get("private_key_id"):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
        now = self._clock.time()
        iat, exp = claims["iat"], claims["exp"]
        if (
            not (isinstance(iat, int) and isinstance(exp, int))
            or exp - iat > 3600
            or exp <= now
            or iat > now + 300
        ):
            return 400, {
                "error": "invalid_grant",
                "error_description": "Invalid JWT: Token must be a short-lived token"
                " (60 minutes) and in a reasonable timeframe.",
            }
        if not set(str(claims["scope"]).split()) & set(_SCOPES):
            return 400, {"error": "invalid_scope", "error_description": "Invalid OAuth scope"}
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self._tokens[token] = now + self._lifetime
        self.token_requests += 1
        return 200, {"access_token": token, "expires_in": self._lifetime, "token_type": "Bearer"}

    async def _send(self, headers: dict[str, str], body: bytes, send: Send) -> None:
        if self._answers and self._answers[0].code is None:
            self._answers.popleft()
            await self._closing.wait()  # "never answers"; released when the fake closes
            return
        scheme, _, token = headers.get("authorization", "").partition(" ")
        expiry = self._tokens.get(token)
        if scheme.lower() != "bearer" or expiry is None or expiry <= self._clock.time():
            await respond(send, *_error_body("UNAUTHENTICATED"))
            return
        problem = _shape_error(body)
        if problem is not None:
            status, error = _error_body("INVALID_ARGUMENT")
            error["error"]["message"] = problem
            await respond(send, status, error)
            return
        message = json.loads(body)["message"]
        if self._answers:
            answer = self._answers.popleft()
            extra = {"retry-after": answer.retry_after} if answer.retry_after else None
            await respond(send, *_error_body(str(answer.code)), headers=extra)
            return
        if message.get("token") in self._unregistered:
            await respond(send, *_error_body("UNREGISTERED"))
            return
        if not json.loads(body).get("validate_only"):
            self.messages.append(message)
        name = f"projects/{self.project_id}/messages/0:{len(self.messages)}%{secrets.token_hex(8)}"
        await respond(send, 200, {"name": name})


def _form(body: bytes) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(body.decode("utf-8", "replace"))
