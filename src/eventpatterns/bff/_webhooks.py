"""Webhook targets (EventBridge API destinations): a consumer group that POSTs events out.

:func:`deliver` starts a consumer of ``group`` whose handler sends each matching event
to a :class:`WebhookDestination`, signed in the `Standard Webhooks`_ format:
``webhook-id`` (the event id, the same on every retry, for the receiver to dedupe),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`` with the secret ``whsec_<base64>``.

Each destination has a token-bucket rate limit (the push fatigue :class:`Budget` and
:class:`Bucket`): over it, sends wait for a token. A ``429``, ``408``, a ``5xx``, a
timeout or a refused connection is retried after ``Retry-After`` (seconds or an HTTP
date, capped) or the backoff; any other ``4xx`` is permanent. After the last attempt
(or a permanent failure) the event goes to the group's dead letters, with the reason,
to be listed and redriven through the bus.

.. _Standard Webhooks: https://www.standardwebhooks.com/
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio

from ..bus import Backoff, Consumer, EventBus, Retry, Timeouts
from ..core import STRUCTURED_CONTENT_TYPE, Clock, Event, SystemClock
from ..core._http_dates import retry_after
from ..errors import AuthenticationFailed, ConfigurationError, WebhookFailed
from ..push import Bucket, Budget
from ._profile import Profile

if TYPE_CHECKING:
    import httpx

__all__ = ["WebhookDestination", "deliver", "new_secret", "sign", "verify"]

_RETRIED = frozenset({408, 425, 429})
#: ASCII digits only: ``str.isdigit`` also accepts "¹", which ``int`` refuses.
_DIGITS = re.compile(r"^[0-9]{1,12}$")


def _key(secret: str) -> bytes:
    if not isinstance(secret, str) or not secret.startswith("whsec_"):
        raise ConfigurationError("a webhook secret is 'whsec_' followed by base64")
    try:
        key = base64.b64decode(secret[6:], validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError("the webhook secret after 'whsec_' is not base64") from None
    if not 24 <= len(key) <= 64:
        raise ConfigurationError("a webhook secret holds 24 to 64 bytes")
    return key


def new_secret() -> str:
    """Return a new random ``whsec_`` secret (32 bytes)."""
    import secrets

    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the ``webhook-signature`` value: ``v1,<base64 HMAC-SHA256>``.

    Raises:
        ConfigurationError: The secret is not ``whsec_<base64>``.
    """
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str, headers: Mapping[str, str], body: bytes, *, now: float, tolerance: float = 300
) -> str:
    """Check a received webhook's signature (what a receiver does); return its id.

    Args:
        secret: The shared ``whsec_`` secret.
        headers: The request's headers, names lower-cased.
        body: The raw body.
        now: The receiver's time (Unix seconds).
        tolerance: Largest accepted clock difference (replays outside it are refused).

    Raises:
        AuthenticationFailed: A header is missing, the timestamp is outside the
            tolerance, or no ``v1`` signature matches (``reason`` says which).
    """
    msg_id = headers.get("webhook-id", "")
    stamp = headers.get("webhook-timestamp", "")
    given = headers.get("webhook-signature", "")
    if not msg_id or not _DIGITS.match(stamp) or not given:
        raise AuthenticationFailed("webhook headers are missing", reason="missing")
    if abs(now - int(stamp)) > tolerance:
        raise AuthenticationFailed("webhook timestamp is outside the tolerance", reason="expired")
    expected = sign(secret, msg_id, int(stamp), body)
    for candidate in given.split():  # several space-separated signatures (key rotation)
        if hmac.compare_digest(candidate, expected):
            return msg_id
    raise AuthenticationFailed("no webhook signature matches", reason="bad_signature")


@dataclass(frozen=True, slots=True)
class WebhookDestination:
    """An external HTTP endpoint and how deliveries to it behave.

    Attributes:
        url: Where events are POSTed (``http(s)``, fixed here: never from an event).
        secret: The ``whsec_<base64>`` signing secret.
        rate: At most this many deliveries per period (``None``: unlimited).
        max_attempts: Calls per event before it is dead-lettered.
        backoff: Delay between attempts when the answer names no ``Retry-After``.
        timeout: Seconds one call may take.
        max_retry_after: A longer ``Retry-After`` is cut to this.
        headers: Extra request headers (an API key of the receiver...).

    Raises:
        ConfigurationError: A bad URL, secret or option.
    """

    url: str
    secret: str
    rate: Budget | None = None
    max_attempts: int = 5
    backoff: Backoff = field(default_factory=lambda: Backoff(initial=1.0, maximum=60.0))
    timeout: float = 10.0
    max_retry_after: float = 60.0
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url) if isinstance(self.url, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"a webhook URL is http(s)://host/..., got {self.url!r:.80}")
        _key(self.secret)
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ConfigurationError("max_attempts must be an int")
        if not 1 <= self.max_attempts <= 100:
            raise ConfigurationError("max_attempts must be 1 to 100")
        for name in ("timeout", "max_retry_after"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"{name} must be positive seconds, got {value!r}")

    def longest(self) -> float:
        """Return the longest one event's delivery can take (every attempt and wait)."""
        waits = max(self.max_retry_after, self.backoff.maximum)
        return self.max_attempts * (self.timeout + waits) + 5.0


def _retry_after(value: str | None, now: float) -> float | None:
    """``Retry-After`` as a delay in seconds from ``now`` (``None``: absent or unreadable)."""
    at = retry_after(value, now)
    return None if at is None else at - now


class _Sender:
    """One destination's sends: its rate limit and its retry loop."""

    def __init__(
        self,
        destination: WebhookDestination,
        client: httpx.AsyncClient,
        clock: Clock,
        transform: Profile | None,
    ) -> None:
        self.destination = destination
        self.client = client
        self.clock = clock
        self.transform = transform
        self.bucket = Bucket.full(destination.rate, clock.time()) if destination.rate else None
        self.lock = anyio.Lock()
        self.sent = 0

    async def take(self) -> None:
        budget = self.destination.rate
        if budget is None or self.bucket is None:
            return
        async with self.lock:  # one waiter at a time: tokens go out in order
            while True:
                self.bucket = self.bucket.refill(budget, self.clock.time())
                if self.bucket.tokens >= 1:
                    self.bucket = Bucket(self.bucket.tokens - 1, self.bucket.updated)
                    return
                await self.clock.sleep(self.bucket.next_token(budget) - self.clock.time())

    def body(self, event: Event) -> tuple[bytes, str] | None:
        """Return the request body and its media type (``None``: nothing to send).

        A rich-form event goes as a structured-mode CloudEvent; a compact one as JSON.
        """
        shaped: Any = event if self.transform is None else self.transform.shape(event)
        if shaped is None:
            return None
        if isinstance(shaped, Event):
            return shaped.to_json(), STRUCTURED_CONTENT_TYPE
        return json.dumps(shaped, separators=(",", ":"), ensure_ascii=False).encode(), (
            "application/json"
        )

    async def __call__(self, event: Event) -> None:
        import httpx

        shaped = self.body(event)
        if shaped is None:  # the transformation hides it: nothing to deliver
            return
        body, media_type = shaped
        dest = self.destination
        status: int | None = None
        reason = ""
        for attempt in range(1, dest.max_attempts + 1):
            await self.take()
            stamp = int(self.clock.time())
            headers = {
                **dest.headers,
                "content-type": media_type,
                "webhook-id": event.id,
                "webhook-timestamp": str(stamp),
                "webhook-signature": sign(dest.secret, event.id, stamp, body),
            }
            wait: float | None = None
            try:
                response = await self.client.post(
                    dest.url, content=body, headers=headers, timeout=dest.timeout
                )
            except httpx.HTTPError as exc:
                status, reason = None, f"{type(exc).__name__}"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    self.sent += 1
                    return
                reason = f"HTTP {status}"
                if status < 500 and status not in _RETRIED:  # the receiver refuses it for good
                    break
                wait = _retry_after(response.headers.get("retry-after"), self.clock.time())
            if attempt < dest.max_attempts:
                # The receiver's Retry-After wins over the backoff (capped: a receiver
                # must not park a consumer for a day).
                delay = dest.backoff.delay(attempt) if wait is None else wait
                await self.clock.sleep(delay if wait is None else min(delay, dest.max_retry_after))
        raise WebhookFailed(
            f"webhook {dest.url} refused event {event.id!r}: {reason} after {attempt} attempt(s)",
            url=dest.url,
            status_code=status,
            attempts=attempt,
        )


async def deliver(
    bus: EventBus,
    group: str,
    *,
    destination: WebhookDestination,
    pattern: Mapping[str, Any] | None = None,
    transform: Profile | None = None,
    client: httpx.AsyncClient | None = None,
    clock: Clock | None = None,
    start: str = "latest",
) -> Consumer:
    """Deliver the events of ``group`` that match ``pattern`` to ``destination``.

    Args:
        bus: A running bus.
        group: The consumer group (created if missing); one per destination.
        destination: Where and how to send.
        pattern: An EventBridge pattern (``None``: every event).
        transform: The input transformation: a :class:`Profile` whose projections
            shape each event's body (an event it hides is acknowledged, not sent).
        client: The ``httpx.AsyncClient`` to send with (pass one you close, to share
            its pool; default: a new one, closed when the consumer stops).
        clock: For the rate limit and the waits.
        start: Where a new group starts (``"latest"`` or ``"earliest"``).

    Returns:
        The running :class:`~eventpatterns.bus.Consumer`; failed events are in
        ``bus.dead_letters(group)``.

    Raises:
        ConfigurationError: ``start`` is neither value, or a bad group name.
    """
    if start not in ("latest", "earliest"):
        raise ConfigurationError(f"start must be 'latest' or 'earliest', got {start!r:.40}")
    owned = client is None
    if client is None:
        import httpx

        client = httpx.AsyncClient()
    sender = _Sender(destination, client, clock or SystemClock(), transform)
    longest = destination.longest()
    try:
        consumer = await bus.consume(
            group,
            sender,
            pattern=dict(pattern) if pattern is not None else None,
            # The sender retries itself (it honours Retry-After, which the bus cannot):
            # one bus attempt, and its failure is the dead letter.
            retry=Retry(max_attempts=1),
            timeouts=Timeouts(visibility=longest + 30.0, handler=longest),
            start="earliest" if start == "earliest" else "latest",
        )
    except BaseException:
        if owned:
            await client.aclose()
        raise
    if owned:
        consumer.on_close(client.aclose)
    return consumer
