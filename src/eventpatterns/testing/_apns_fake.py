"""A local APNs service: HTTP/2 over TLS (a fresh self-signed certificate), real sockets.

It verifies the provider JWT as APNs does (ES256 with the team's key, ``kid``, ``iss``,
``iat`` not older than an hour, no new token sooner than 20 minutes after the last one),
checks the ``apns-*`` headers, the device token and the payload, and answers like APNs:
an ``apns-id`` header on every response and ``{"reason": ..., "timestamp": ...}`` bodies
for errors. ``BadPayload`` (a body that is not a JSON object with an ``aps``
dictionary) is this fake's own reason; the others are Apple's.
"""

from __future__ import annotations

import collections
import json
import re
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import anyio

from ..core import Clock, SystemClock
from ._fake_server import (
    Receive,
    Request,
    Scope,
    Send,
    client_ssl_context,
    read_request,
    respond,
    self_signed_certificate,
    serve_asgi,
)

__all__ = ["APNS_REASONS", "APNsNotification", "FakeAPNs", "make_apns_key"]

#: Apple's reasons and their HTTP status ("Handling notification responses from APNs").
APNS_REASONS: dict[str, int] = {
    "BadCollapseId": 400,
    "BadDeviceToken": 400,
    "BadExpirationDate": 400,
    "BadMessageId": 400,
    "BadPriority": 400,
    "BadTopic": 400,
    "DeviceTokenNotForTopic": 400,
    "DuplicateHeaders": 400,
    "IdleTimeout": 400,
    "InvalidPushType": 400,
    "MissingDeviceToken": 400,
    "MissingTopic": 400,
    "PayloadEmpty": 400,
    "TopicDisallowed": 400,
    "BadCertificate": 403,
    "BadCertificateEnvironment": 403,
    "ExpiredProviderToken": 403,
    "Forbidden": 403,
    "InvalidProviderToken": 403,
    "MissingProviderToken": 403,
    "BadPath": 404,
    "MethodNotAllowed": 405,
    "ExpiredToken": 410,
    "Unregistered": 410,
    "PayloadTooLarge": 413,
    "TooManyProviderTokenUpdates": 429,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Shutdown": 503,
    "BadPayload": 400,  # this fake's own: a body that is not a JSON object with "aps"
}
_PATH = re.compile(r"/3/device/([^/]*)")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PUSH_TYPES = frozenset(
    {
        "alert",
        "background",
        "controls",
        "complication",
        "fileprovider",
        "liveactivity",
        "location",
        "mdm",
        "pushtotalk",
        "voip",
        "widgets",
    }
)


def make_apns_key() -> str:
    """Make an APNs signing key with a fresh EC P-256 key: the PEM a ``.p8`` file holds."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass(frozen=True)
class APNsNotification:
    """One notification the fake accepted.

    Attributes:
        token: The device token from the path.
        headers: The request's headers (lower-case names).
        payload: The JSON payload.
        http_version: ``"2"``: the fake answers nothing else.
    """

    token: str
    headers: dict[str, str]
    payload: dict[str, Any]
    http_version: str


class FakeAPNs:
    """A local APNs endpoint over HTTP/2 and TLS; ``async with`` runs it.

    Args:
        team_id: The team id tokens must carry as ``iss``.
        key_id: The key id tokens must carry as ``kid``.
        private_key: The ``.p8`` PEM whose public key verifies tokens (fresh by default,
            see :attr:`private_key`).
        topics: The bundle ids it accepts (any by default).
        clock: Tells a token's age.

    Attributes:
        notifications: Every accepted notification, in order.
        token_updates: How many distinct provider tokens it has seen.
    """

    def __init__(
        self,
        *,
        team_id: str = "TEAM123456",
        key_id: str = "KEY1234567",
        private_key: str | None = None,
        topics: Collection[str] | None = None,
        clock: Clock | None = None,
    ) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        self.team_id = team_id
        self.key_id = key_id
        self.private_key = private_key or make_apns_key()
        self._public = load_pem_private_key(self.private_key.encode(), None).public_key()
        self._topics = None if topics is None else frozenset(topics)
        self._clock = clock or SystemClock()
        self._answers: collections.deque[tuple[str | None, float | None]] = collections.deque()
        self._unregistered: dict[str, float] = {}
        self._current: tuple[str, float] | None = None  # (token, first seen)
        self._expired: set[str] = set()
        self._closing = anyio.Event()
        self._port: int | None = None
        self._stack: Any = None
        self.certificate, self._certificate_key = self_signed_certificate()
        self.notifications: list[APNsNotification] = []
        self.token_updates = 0

    # -- what a test tells it ---------------------------------------------------------
    def fail(self, reason: str, *, times: int = 1, timestamp: float | None = None) -> None:
        """Answer the next ``times`` notifications with ``reason`` (a key of :data:`APNS_REASONS`).

        ``timestamp`` (Unix seconds) goes in a 410's body, in milliseconds as APNs sends it.
        ``ExpiredProviderToken`` also expires the current token, so a refresh is allowed.
        """
        if reason not in APNS_REASONS:
            raise ValueError(f"unknown APNs reason {reason!r}; known: {sorted(APNS_REASONS)}")
        self._answers.extend((reason, timestamp) for _ in range(times))

    def hang(self, *, times: int = 1) -> None:
        """Never answer the next ``times`` notifications (until the fake closes)."""
        self._answers.extend((None, None) for _ in range(times))

    def unregister(self, token: str, *, at: float) -> None:
        """Answer every later notification to ``token`` with ``410 Unregistered`` since ``at``."""
        self._unregistered[token] = at

    # -- where it is ------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """The URL to pass as ``APNsProvider(production_url=..., sandbox_url=...)``."""
        if self._port is None:
            raise RuntimeError("FakeAPNs is not running; use 'async with FakeAPNs() as apns'")
        return f"https://127.0.0.1:{self._port}"

    def client(self, **options: Any) -> Any:
        """Return an ``httpx.AsyncClient`` speaking HTTP/2 that trusts this fake's certificate."""
        import httpx

        options.setdefault("http2", True)
        return httpx.AsyncClient(verify=client_ssl_context(self.certificate), **options)

    async def __aenter__(self) -> FakeAPNs:
        from contextlib import AsyncExitStack

        self._closing = anyio.Event()  # a fresh one each time the fake starts
        self._stack = AsyncExitStack()
        certificate = (self.certificate, self._certificate_key)
        self._port = await self._stack.enter_async_context(
            serve_asgi(self._app, certificate=certificate)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()
        await self._stack.aclose()
        self._port = None

    # -- the service ------------------------------------------------------------------
    async def _app(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        apns_id = request.headers.get("apns-id") or str(uuid.uuid4())
        if self._answers and self._answers[0][0] is None:
            self._answers.popleft()
            await self._closing.wait()  # "never answers"; released when the fake closes
            return
        if request.http_version != "2":
            await respond(send, 505, {"reason": "HTTP/2 required"})
            return
        reason, timestamp = self._check(request)
        if reason is None and self._answers:
            reason, timestamp = self._answers.popleft()
            if reason == "ExpiredProviderToken" and self._current is not None:
                self._expired.add(self._current[0])
        headers = {"apns-id": apns_id}
        if reason is not None:
            body: dict[str, Any] = {"reason": reason}
            if timestamp is not None:
                body["timestamp"] = int(timestamp * 1000)
            await respond(send, APNS_REASONS[reason], body, headers)
            return
        token = _PATH.fullmatch(request.path)
        assert token is not None  # _check said so
        payload = json.loads(request.body)
        self.notifications.append(
            APNsNotification(token.group(1), request.headers, payload, request.http_version)
        )
        await respond(send, 200, None, headers)

    def _check(self, request: Request) -> tuple[str | None, float | None]:
        """The reason APNs would refuse ``request`` with (and a 410's timestamp), or none."""
        match = _PATH.fullmatch(request.path)
        if match is None:
            return "BadPath", None
        if request.method != "POST":
            return "MethodNotAllowed", None
        problem = self._check_token(request.headers.get("authorization", ""))
        if problem is not None:
            return problem, None
        problem = self._check_headers(request.headers)
        if problem is not None:
            return problem, None
        device = match.group(1)
        if not device:
            return "MissingDeviceToken", None
        if not _HEX.fullmatch(device):
            return "BadDeviceToken", None
        if device in self._unregistered:
            return "Unregistered", self._unregistered[device]
        voip = request.headers.get("apns-push-type") == "voip"
        if len(request.body) > (5120 if voip else 4096):
            return "PayloadTooLarge", None
        if not request.body:
            return "PayloadEmpty", None
        try:
            payload = json.loads(request.body)
        except ValueError:
            return "BadPayload", None
        if not isinstance(payload, dict) or not isinstance(payload.get("aps"), dict):
            return "BadPayload", None
        return None, None

    def _check_token(self, authorization: str) -> str | None:
        import jwt

        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "MissingProviderToken"
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(
                token,
                self._public,  # type: ignore[arg-type]
                algorithms=["ES256"],
                options={"verify_iat": False, "require": ["iss", "iat"]},
            )
        except jwt.PyJWTError:
            return "InvalidProviderToken"
        if header.get("kid") != self.key_id or claims["iss"] != self.team_id:
            return "InvalidProviderToken"
        now = self._clock.time()
        if (
            not isinstance(claims["iat"], int)
            or now - claims["iat"] > 3600
            or token in self._expired
        ):
            return "ExpiredProviderToken"
        if self._current is None or self._current[0] != token:
            previous = self._current
            if (
                previous is not None
                and previous[0] not in self._expired
                and now - previous[1] < 1200
            ):
                return "TooManyProviderTokenUpdates"
            self._current = (token, now)
            self.token_updates += 1
        return None

    def _check_headers(self, headers: dict[str, str]) -> str | None:
        topic = headers.get("apns-topic")
        if not topic:
            return "MissingTopic"
        if self._topics is not None and topic not in self._topics:
            return "TopicDisallowed"
        push_type = headers.get("apns-push-type", "alert")
        if push_type not in _PUSH_TYPES:
            return "InvalidPushType"
        priority = headers.get("apns-priority", "10")
        if priority not in ("10", "5", "1") or (push_type == "background" and priority != "5"):
            return "BadPriority"
        expiration = headers.get("apns-expiration", "0")
        if not (expiration.isascii() and expiration.isdigit()):
            return "BadExpirationDate"
        if len(headers.get("apns-collapse-id", "").encode("latin-1")) > 64:
            return "BadCollapseId"
        if "apns-id" in headers and not _UUID.fullmatch(headers["apns-id"]):
            return "BadMessageId"
        return None
