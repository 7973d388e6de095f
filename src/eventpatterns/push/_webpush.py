"""The Web Push provider: RFC 8030 requests, VAPID (RFC 8292), aes128gcm (RFC 8291).

One :class:`WebPushProvider` sends to any number of subscriptions over one
``httpx.AsyncClient`` (a connection pool per push service), with one VAPID token per
push service origin, cached by :class:`~eventpatterns.push.TokenAuth` until near its
expiry. Every answer is mapped to a :data:`~eventpatterns.push.SendResult` by
:func:`classify`, one table, never an exception.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import anyio
import httpx

from ..core import Clock, SystemClock
from ..core._http_dates import retry_after
from ..errors import ConfigurationError
from ._auth import TokenAuth
from ._ece import DEFAULT_PADDING, encrypt
from ._http import OwnedClient, PushTransport
from ._notification import Urgency
from ._result import DeadToken, Delivered, PermanentFailure, RetryLater, SendResult
from ._vapid import Vapid, origin_of
from ._webpush_subscription import WebPushSubscription

__all__ = [
    "DEFAULT_TTL",
    "URGENCIES",
    "WebPushProvider",
    "classify",
    "retry_after",
]

#: Default ``TTL``: one day. Long enough for a phone that is off overnight to get the
#: message when it comes back; short enough that it does not arrive days late. (Not 0,
#: pywebpush's default, which drops the message unless the browser is online now.)
DEFAULT_TTL = 24 * 3600
#: The ``Urgency`` header values of RFC 8030 section 5.3, least urgent first.
URGENCIES = ("very-low", "low", "normal", "high")
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_PROVIDER = "webpush"

# One table from a push service's status to an outcome (RFC 8030 sections 5, 6, 7 and
# the Mozilla / Google push services' documented errors). 401 and 403 reach it only
# after TokenAuth retried once with a fresh VAPID token.
_TABLE: dict[int, tuple[type[SendResult], str]] = {
    201: (Delivered, "created"),
    202: (Delivered, "accepted"),
    400: (PermanentFailure, "bad request"),
    401: (PermanentFailure, "VAPID token rejected"),
    403: (PermanentFailure, "VAPID key not allowed for this subscription"),
    404: (DeadToken, "404"),
    410: (DeadToken, "410"),
    413: (PermanentFailure, "payload too large"),
    429: (RetryLater, "429"),
}


def classify(response: httpx.Response, *, now: float) -> SendResult:
    """Map a push service's response to a result (the one table of this provider).

    201/202 delivered (``Location`` is the message id); 404/410 dead subscription;
    413 too large, 400/401/403 and other 4xx permanent; 429 and 5xx retry later,
    at ``Retry-After`` when given.

    Args:
        response: The push service's answer.
        now: The current time, for ``Retry-After`` in seconds.
    """
    return _outcome(response.status_code, response.headers.get, now=now)


def _outcome(status: int, header: Callable[[str], str | None], *, now: float) -> SendResult:
    # ``header``: look a response header up by its lower-case name.
    kind, reason = _TABLE.get(status, (None, str(status)))
    if kind is Delivered or (kind is None and 200 <= status < 300):
        return Delivered(_PROVIDER, header("location"))
    if kind is DeadToken:
        return DeadToken(_PROVIDER, reason, status=status)
    if kind is RetryLater or status >= 500:
        at = retry_after(header("retry-after"), now=now)
        return RetryLater(_PROVIDER, reason, at=at, status=status)
    return PermanentFailure(_PROVIDER, reason, status=status)


def _lookup(headers: list[tuple[bytes, bytes]]) -> Callable[[str], str | None]:
    def header(name: str) -> str | None:
        wanted = name.encode("ascii")
        for key, value in headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    return header


def _check_topic(topic: str) -> None:
    if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
        raise ConfigurationError(
            "a Web Push Topic must be 1-32 characters of the URL-safe base64 alphabet"
            f" (A-Z a-z 0-9 - _; RFC 8030 section 5.4), not {str(topic)[:40]!r}"
        )


class WebPushProvider(OwnedClient):
    """Send Web Push messages: encrypted, VAPID-signed, mapped to a normalised result.

    Args:
        vapid: The signer (application server keys and subject).
        client: The HTTP client to send with; by default one of its own over a
            :class:`~eventpatterns.push.PushTransport`, closed by :meth:`aclose`. A
            client passed in is not closed here.
        clock: Where token expiry and ``Retry-After`` are read from.
        deadline: Seconds a send may take in all (connecting included); a push service
            that does not answer in time gives :class:`RetryLater`.
        padding: Pad each message to a multiple of this many octets (0: none).

    Example:
        >>> keys = VapidKeys.generate()  # doctest: +SKIP
        >>> async with WebPushProvider(Vapid(keys, subject="mailto:ops@example.com")) as p:
        ...     result = await p.send(subscription, b'{"title": "hi"}')  # doctest: +SKIP
    """

    def __init__(
        self,
        vapid: Vapid,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        deadline: float = 10.0,
        padding: int = DEFAULT_PADDING,
    ) -> None:
        if not isinstance(vapid, Vapid):
            raise ConfigurationError("WebPushProvider needs a Vapid(keys, subject=...) signer")
        if deadline <= 0:
            raise ConfigurationError(f"deadline must be positive, got {deadline!r}")
        if padding < 0:
            raise ConfigurationError(f"padding must be >= 0 octets, not {padding}")
        self._vapid = vapid
        self._clock = clock or SystemClock()
        self._owns_client = client is None
        #: Our own transport, sent through directly (no httpx objects per message)
        #: when no client was passed in.
        self._transport = PushTransport() if client is None else None
        self._client = client or httpx.AsyncClient(timeout=deadline, transport=self._transport)
        self._deadline = deadline
        self._padding = padding
        #: The VAPID credentials, one per push service origin.
        self.auth = TokenAuth(
            self._mint,
            key=lambda request: origin_of(str(request.url)),
            expired=lambda response: response.status_code in (401, 403),
            clock=self._clock,
        )

    def __repr__(self) -> str:
        return f"<WebPushProvider vapid={self._vapid!r}>"

    async def _mint(self, request: httpx.Request) -> tuple[str, float]:
        return self._vapid.authorization(origin_of(str(request.url)), now=self._clock.time())

    def encrypt(self, subscription: WebPushSubscription, payload: bytes) -> bytes:
        """Return the encrypted body for ``payload`` (RFC 8291, padded).

        Raises:
            LimitExceeded: The payload is over the 4,096-octet body limit once encrypted.
        """
        return encrypt(
            payload,
            subscription.public_key,
            auth_secret=subscription.auth,
            padding=self._padding,
            ua_point=subscription.p256dh,
        )

    async def send(
        self,
        subscription: WebPushSubscription,
        payload: bytes,
        *,
        ttl: int = DEFAULT_TTL,
        urgency: Urgency = "normal",
        topic: str | None = None,
    ) -> SendResult:
        """Encrypt and send one message; return what the push service made of it.

        Args:
            subscription: Where to send.
            payload: The message (at most 3,993 octets: it must fit, encrypted, in the
                4,096 octets a push service accepts).
            ttl: Seconds the push service keeps the message for an offline browser.
            urgency: ``very-low``, ``low``, ``normal`` or ``high`` (RFC 8030 5.3).
            topic: A message with the same topic replaces one not yet delivered
                (RFC 8030 5.4): at most 32 URL-safe base64 characters.

        Returns:
            :class:`Delivered` (``message_id`` is the ``Location``),
            :class:`DeadToken` (404 / 410: remove the subscription),
            :class:`RetryLater` (429, 5xx, timeout, connection error) or
            :class:`PermanentFailure` (413, 400, a VAPID token refused twice...).

        Raises:
            LimitExceeded: The payload does not fit (nothing is sent).
            ConfigurationError: A bad ``ttl``, ``urgency`` or ``topic`` (nothing is sent).
        """
        if not isinstance(subscription, WebPushSubscription):
            raise ConfigurationError("send() needs a WebPushSubscription (see from_json)")
        if not isinstance(payload, bytes):
            raise ConfigurationError(f"the payload must be bytes, not {type(payload).__name__}")
        if isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0:
            raise ConfigurationError(f"ttl must be an int >= 0 seconds, not {ttl!r}")
        if urgency not in URGENCIES:
            raise ConfigurationError(f"urgency must be one of {URGENCIES}, not {urgency!r}")
        if topic is not None:
            _check_topic(topic)
        body = self.encrypt(subscription, payload)
        if self._transport is not None:
            return await self._send_direct(self._transport, subscription, body, ttl, urgency, topic)
        headers = {
            "ttl": str(ttl),
            "urgency": urgency,
            "content-encoding": "aes128gcm",
            "content-type": "application/octet-stream",
        }
        if topic is not None:
            headers["topic"] = topic
        try:
            with anyio.fail_after(self._deadline):
                response = await self._client.post(
                    subscription.endpoint, content=body, headers=headers, auth=self.auth
                )
        except TimeoutError:
            return RetryLater(_PROVIDER, "timeout")
        except httpx.TimeoutException:
            return RetryLater(_PROVIDER, "timeout")
        except httpx.TransportError as exc:
            return RetryLater(_PROVIDER, f"connection error: {type(exc).__name__}")
        return classify(response, now=self._clock.time())

    async def _send_direct(
        self,
        transport: PushTransport,
        subscription: WebPushSubscription,
        body: bytes,
        ttl: int,
        urgency: str,
        topic: str | None,
    ) -> SendResult:
        # The default path: the same request and the same TokenAuth cache as through
        # httpx, written straight to a PushTransport connection. Every value below was
        # checked in send() (ttl an int, urgency from URGENCIES, topic base64url) or
        # made here (the VAPID header: base64url), so no header can carry a CR or LF.
        try:
            target = transport.target(subscription.endpoint)
        except httpx.TransportError as exc:
            return PermanentFailure(_PROVIDER, f"bad endpoint: {type(exc).__name__}")
        origin = target.origin

        async def mint() -> tuple[str, float]:
            return self._vapid.authorization(origin, now=self._clock.time())

        lines = b"ttl: %d\r\nurgency: %s\r\n%s" % (ttl, urgency.encode(), _FIXED_HEADERS)
        if topic is not None:
            lines += b"topic: %s\r\n" % topic.encode("ascii")
        # The deadline bounds every wait of the transport (a connection, connecting,
        # the answer) rather than a cancel scope around the whole: the same bound at
        # a tenth of the cost. Minting a token does no I/O.
        deadline = time.monotonic() + self._deadline
        try:
            used = await self.auth.value(origin, mint)
            response = await transport.post(
                target,
                lines + b"authorization: %s\r\n" % used.encode("ascii"),
                body,
                deadline=deadline,
            )
            if response.status in (401, 403):  # refreshed once, as TokenAuth does
                fresh = await self.auth.value(origin, mint, stale=used)
                response = await transport.post(
                    target,
                    lines + b"authorization: %s\r\n" % fresh.encode("ascii"),
                    body,
                    deadline=deadline,
                )
        except httpx.TimeoutException:
            return RetryLater(_PROVIDER, "timeout")
        except httpx.TransportError as exc:
            return RetryLater(_PROVIDER, f"connection error: {type(exc).__name__}")
        return _outcome(response.status, _lookup(response.headers), now=self._clock.time())


_FIXED_HEADERS = b"content-encoding: aes128gcm\r\ncontent-type: application/octet-stream\r\n"
