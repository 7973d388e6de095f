"""A local Web Push service for tests: real HTTP, verifies VAPID, decrypts with http_ece.

It plays the push service a browser subscribed with: :meth:`WebPushReceiver.subscribe`
makes a subscription whose private key only the receiver holds, as a browser's would
be. Each ``POST`` is checked as RFC 8030, 8291 and 8292 say (VAPID token signed with
the ``k=`` key, ``aud`` its own origin, ``exp`` at most 24 hours ahead; ``TTL``,
``Urgency`` and ``Topic`` headers; at most 4,096 octets), decrypted by ``http_ece`` (a
library nobody here wrote) and recorded. It can be told to answer with the errors real
push services send (404, 410, 413, 429 with ``Retry-After``, 5xx...), or to stall.
"""

from __future__ import annotations

import itertools
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from ..core import Clock, SystemClock

if TYPE_CHECKING:
    from ..push import VapidClaims, WebPushSubscription

__all__ = ["ReceivedWebPush", "WebPushReceiver"]

_Scope = MutableMapping[str, Any]
_Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
_Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")
_URGENCIES = ("very-low", "low", "normal", "high")
_MAX_VERIFIED = 4096


@dataclass(frozen=True, slots=True)
class ReceivedWebPush:
    """One message the receiver accepted, decrypted.

    Attributes:
        endpoint: The subscription's endpoint.
        payload: The decrypted message.
        body_size: The encrypted body's length (padding included).
        ttl: The ``TTL`` header.
        urgency: The ``Urgency`` header (``"normal"`` when absent).
        topic: The ``Topic`` header, if any.
        subject: The VAPID token's ``sub``.
        application_server_key: The VAPID ``k=`` key (base64url).
    """

    endpoint: str
    payload: bytes
    body_size: int
    ttl: int
    urgency: str
    topic: str | None
    subject: str
    application_server_key: str


@dataclass(slots=True)
class _Script:
    status: int
    times: int
    retry_after: str | None
    endpoint: str | None
    delay: float


@dataclass(frozen=True, slots=True)
class _Pending:
    endpoint: str
    body: bytes
    private_key: Any
    auth: bytes
    ttl: int
    urgency: str
    topic: str | None
    claims: VapidClaims


@dataclass(slots=True)
class _Sub:
    private_key: Any
    auth: bytes
    application_server_key: str | None
    gone: bool = False


class WebPushReceiver:
    """A push service on a loopback port, in a thread of its own (uvicorn).

    Use it with ``with`` or ``async with`` (any async library: the server has its own
    thread and event loop). Every check that fails is answered as a push service does
    and listed in :attr:`rejections`.

    Args:
        host: The loopback address to listen on.
        port: The port (0: any free port).
        clock: The clock VAPID ``exp`` is checked against.
        defer_decryption: Answer once the VAPID token and headers are checked, and
            decrypt each body when :attr:`messages` or :attr:`rejections` is next read
            (a body that does not decrypt is then listed in :attr:`rejections`, though
            it was answered ``201``). A real push service never decrypts (only the
            browser can), so its answer does not wait on it: for benchmarks, where the
            receiver's CPU should be the push service's part only.

    Example:
        >>> with WebPushReceiver() as receiver:  # doctest: +SKIP
        ...     subscription = receiver.subscribe()
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Clock | None = None,
        defer_decryption: bool = False,
    ) -> None:
        self._host = host
        self._port = port
        self._clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._subs: dict[str, _Sub] = {}
        self._ids = itertools.count(1)
        self._scripts: list[_Script] = []
        self._messages: list[ReceivedWebPush] = []
        self._rejections: list[tuple[int, str]] = []
        self._defer = defer_decryption
        self._pending: list[_Pending] = []  # accepted, not decrypted yet (deferred)
        self._verified: dict[str, VapidClaims] = {}
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sockets: list[socket.socket] = []
        #: Requests answered, whatever the status.
        self.requests = 0

    # -- lifecycle ---------------------------------------------------------------

    @property
    def origin(self) -> str:
        """``http://host:port``: the ``aud`` VAPID tokens must name."""
        return f"http://{self._host}:{self._port}"

    def start(self) -> None:
        """Listen and serve in a thread; return once it accepts connections."""
        import uvicorn

        if self._thread is not None:
            raise RuntimeError("this WebPushReceiver is running already")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        self._sockets.append(sock)
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            log_level="warning",
            access_log=False,
            lifespan="off",
            proxy_headers=False,
            server_header=False,
            date_header=False,
            backlog=1024,
        )
        self._server = server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="webpush-receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:  # pragma: no cover
                raise RuntimeError("the WebPushReceiver's server did not start")
            time.sleep(0.005)

    def stop(self) -> None:
        """Stop serving and close the port."""
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(10)
        self._thread = None
        while self._sockets:
            self._sockets.pop().close()

    def __enter__(self) -> WebPushReceiver:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> WebPushReceiver:
        await anyio.to_thread.run_sync(self.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self.stop)

    # -- what tests set up and read ---------------------------------------------

    def subscribe(self, *, application_server_key: str | None = None) -> WebPushSubscription:
        """Make a subscription as a browser would: a fresh P-256 key pair and auth secret.

        Args:
            application_server_key: Accept only VAPID tokens with this ``k=`` (as a
                browser subscribed with ``applicationServerKey``); others get 403.

        Returns:
            A :class:`~eventpatterns.push.WebPushSubscription` for this receiver.
        """
        import os

        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        from ..push import WebPushSubscription

        private = ec.generate_private_key(ec.SECP256R1())
        point = private.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        auth = os.urandom(16)
        with self._lock:
            endpoint = f"{self.origin}/push/{next(self._ids)}"
            self._subs[endpoint] = _Sub(private, auth, application_server_key)
        return WebPushSubscription(endpoint, point, auth)

    def unsubscribe(self, subscription: WebPushSubscription) -> None:
        """Forget a subscription, as when the user revokes permission: it gets 410."""
        with self._lock:
            self._subs[subscription.endpoint].gone = True

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | int | None = None,
        subscription: WebPushSubscription | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests (to ``subscription``, or any) with ``status``.

        Args:
            status: The status to answer (404, 410, 413, 429, 500, 401...).
            times: How many requests get it.
            retry_after: A ``Retry-After`` header value (seconds or an HTTP-date).
            subscription: Only requests to this subscription; any when omitted.
            delay: Wait this many (real) seconds before answering, e.g. to test a
                sender's deadline.
        """
        endpoint = None if subscription is None else subscription.endpoint
        value = None if retry_after is None else str(retry_after)
        with self._lock:
            self._scripts.append(_Script(status, times, value, endpoint, delay))

    @property
    def messages(self) -> list[ReceivedWebPush]:
        """Every message accepted so far, oldest first (a copy)."""
        with self._lock:
            self._decrypt_pending()
            return list(self._messages)

    @property
    def rejections(self) -> list[tuple[int, str]]:
        """``(status, reason)`` for every request refused by a check (not a script).

        With ``defer_decryption``, also ``(400, "cannot decrypt: ...")`` for each body
        accepted that did not decrypt.
        """
        with self._lock:
            self._decrypt_pending()
            return list(self._rejections)

    def clear(self) -> None:
        """Forget the messages and rejections recorded so far."""
        with self._lock:
            self._messages.clear()
            self._rejections.clear()
            self._pending.clear()

    # -- the push service ------------------------------------------------------

    def _script_for(self, endpoint: str) -> _Script | None:
        with self._lock:
            for script in self._scripts:
                if script.endpoint in (None, endpoint):
                    script.times -= 1
                    if script.times <= 0:
                        self._scripts.remove(script)
                    return script
        return None

    def _verify(self, authorization: str) -> VapidClaims:
        from ..push import verify_vapid

        now = self._clock.time()
        cached = self._verified.get(authorization)
        if cached is not None and now < cached.expires <= now + 24 * 3600:
            return cached  # the same token, verified before, still in date
        claims = verify_vapid(authorization, audience=self.origin, now=now)
        if len(self._verified) >= _MAX_VERIFIED:  # bounded, for long benchmark runs
            self._verified.clear()
        self._verified[authorization] = claims
        return claims

    def _handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        from ..errors import AuthenticationFailed

        endpoint = self.origin + path
        with self._lock:
            self.requests += 1
            sub = self._subs.get(endpoint)
        if sub is None:
            return 404, {}, b"no such subscription"
        if method != "POST":
            return 405, {}, b"POST a push message"
        if sub.gone:
            return 410, {}, b"the subscription expired or was revoked"
        try:
            claims = self._verify(headers.get("authorization", ""))
        except AuthenticationFailed as exc:
            return self._reject(401, f"{exc.reason}: {exc}")
        if sub.application_server_key not in (None, claims.application_server_key):
            return self._reject(403, "k= is not the key this subscription was made with")
        ttl = headers.get("ttl", "")
        if not (ttl.isascii() and ttl.isdigit()):
            return self._reject(400, "the TTL header is missing or not a number")
        urgency = headers.get("urgency", "normal")
        if urgency not in _URGENCIES:
            return self._reject(400, f"bad Urgency {urgency[:40]!r}")
        topic = headers.get("topic")
        if topic is not None and not _TOPIC.fullmatch(topic):
            return self._reject(400, f"bad Topic {topic[:40]!r}")
        if headers.get("content-encoding") != "aes128gcm":
            return self._reject(400, "Content-Encoding is not aes128gcm")
        if len(body) > 4096:
            return self._reject(413, f"the body is {len(body)} bytes, over 4096")
        pending = _Pending(endpoint, body, sub.private_key, sub.auth, int(ttl), urgency, topic,
                           claims)  # fmt: skip
        if self._defer:
            with self._lock:
                self._pending.append(pending)
                number = len(self._messages) + len(self._pending)
            return 201, {"location": f"{self.origin}/message/{number}"}, b""
        try:
            message = _decrypt(pending)
        except ValueError as exc:
            return self._reject(400, str(exc))
        with self._lock:
            self._messages.append(message)
            number = len(self._messages)
        return 201, {"location": f"{self.origin}/message/{number}"}, b""

    def _decrypt_pending(self) -> None:
        # Under the lock: the deferred bodies, in the order they were accepted.
        pending, self._pending = self._pending, []
        for each in pending:
            try:
                self._messages.append(_decrypt(each))
            except ValueError as exc:
                self._rejections.append((400, str(exc)))

    def _reject(self, status: int, reason: str) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            self._rejections.append((status, reason))
        return status, {}, reason.encode()

    async def _app(self, scope: _Scope, receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":  # pragma: no cover - lifespan is off
            return
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        script = self._script_for(self.origin + scope["path"])
        if script is not None:
            deadline = time.monotonic() + script.delay
            # Polls uvicorn's exit flag (set from another thread), so stop() need not
            # wait out a stall.
            while time.monotonic() < deadline and not self._server.should_exit:  # noqa: ASYNC110
                await anyio.sleep(0.02)
            status = script.status
            extra = {} if script.retry_after is None else {"retry-after": script.retry_after}
            out = b"scripted"
            with self._lock:
                self.requests += 1
        else:
            status, extra, out = self._handle(scope["method"], scope["path"], headers, body)
        raw = [(k.encode(), v.encode()) for k, v in extra.items()]
        raw.append((b"content-length", str(len(out)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": out})


def _decrypt(pending: _Pending) -> ReceivedWebPush:
    """Decrypt one accepted body with ``http_ece``; ``ValueError`` says why it did not."""
    import http_ece  # type: ignore[import-untyped]

    try:
        payload = http_ece.decrypt(
            pending.body, private_key=pending.private_key, auth_secret=pending.auth
        )
    except Exception as exc:  # http_ece raises several kinds for bad input
        reason = str(getattr(exc, "message", exc))[:100]
        raise ValueError(f"cannot decrypt: {reason}") from None
    claims = pending.claims
    return ReceivedWebPush(
        pending.endpoint, payload, len(pending.body), pending.ttl, pending.urgency,
        pending.topic, claims.subject, claims.application_server_key,
    )  # fmt: skip
