"""What the three providers share: an httpx client, closed with the provider that made it.

And :class:`PushTransport`, the lean HTTP/1.1 ``httpx.AsyncBaseTransport`` the Web Push
provider sends through by default: a push message is one small ``POST`` answered by an
empty ``201``, so per request it writes the request in one ``send`` and reads the
answer with :class:`ResponseParser` (sans-I/O, below), over a per-origin pool of
keep-alive connections that takes and returns a connection in O(1).
"""

from __future__ import annotations

import asyncio
import re
import ssl
import time
from collections import deque
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.abc
import httpx

__all__ = ["OwnedClient", "ParsedResponse", "PushTransport", "ResponseParser", "Target"]

P = TypeVar("P", bound="OwnedClient")


class OwnedClient:
    """Base of the providers: an async context manager over an ``httpx.AsyncClient``.

    A client passed in by the caller is the caller's to close; one the provider made is
    closed by :meth:`aclose` (or leaving ``async with``).
    """

    _client: httpx.AsyncClient
    _owns_client: bool

    async def __aenter__(self: P) -> P:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if the provider made it."""
        if self._owns_client:
            with anyio.CancelScope(shield=True), anyio.move_on_after(5):
                await self._client.aclose()


# -- parsing an HTTP/1.1 response (sans-I/O) -------------------------------------------

_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\r\n\x00]")
_STATUS = re.compile(rb"HTTP/1\.([01]) ([0-9]{3})(?: [^\r\n]*)?")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
_MAX_HEAD = 64 * 1024
_BAD_URL = re.compile(r"[\x00-\x20\x7f]")


@dataclass(slots=True)
class ParsedResponse:
    """One HTTP/1.x response, read whole.

    Attributes:
        status: The status code.
        headers: ``(name, value)`` pairs as sent (names in their own case).
        body: The body (chunked transfer coding removed).
        keep_alive: Whether the connection may carry another request.
    """

    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    keep_alive: bool


@dataclass(slots=True)
class _Head:
    status: int
    headers: list[tuple[bytes, bytes]]
    length: int | None  # None: chunked or to the end of the connection
    chunked: bool
    keep_alive: bool
    start: int  # where the body starts in the buffer


@dataclass(slots=True)
class ResponseParser:
    """Read one HTTP/1.1 response from bytes fed in any pieces (RFC 9112).

    ``Content-Length``, ``chunked`` and read-until-close bodies; 1xx interim answers
    are skipped. Anything else malformed raises ``httpx.RemoteProtocolError``.

    Args:
        head_only: The request was ``HEAD``: the response has no body.
        max_size: The most octets of head plus body accepted.
    """

    head_only: bool = False
    max_size: int = 1 << 20
    _buffer: bytearray = field(default_factory=bytearray)
    _head: _Head | None = None

    def feed(self, data: bytes) -> ParsedResponse | None:
        """Add bytes; return the response once it is complete, else ``None``.

        Raises:
            httpx.RemoteProtocolError: Not a valid response, or over ``max_size``.
        """
        self._buffer += data
        if len(self._buffer) > self.max_size:
            raise httpx.RemoteProtocolError(f"the response is over {self.max_size} octets")
        while self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > _MAX_HEAD:
                    raise httpx.RemoteProtocolError("the response head is over 64 KiB")
                return None
            head = self._parse_head(bytes(self._buffer[:end]), end + 4)
            if 100 <= head.status < 200:  # interim (100 Continue, 103...): skip it
                del self._buffer[: end + 4]
                continue
            self._head = head
        return self._body(self._head, final=False)

    def close(self) -> ParsedResponse:
        """The connection ended: return the response if it is complete.

        Raises:
            httpx.RemoteProtocolError: It ended before the response did.
        """
        head = self._head
        if head is not None:
            if head.length is None and not head.chunked:
                return ParsedResponse(
                    head.status, head.headers, bytes(self._buffer[head.start :]), False
                )
            done = self._body(head, final=True)
            if done is not None:  # pragma: no cover - feed() returned it already
                return done
        raise httpx.RemoteProtocolError("the server closed the connection mid-response")

    def _parse_head(self, raw: bytes, start: int) -> _Head:
        lines = raw.split(b"\r\n")
        match = _STATUS.fullmatch(lines[0])
        if match is None:
            raise httpx.RemoteProtocolError(f"not an HTTP/1.x status line: {lines[0][:60]!r}")
        minor, status = match.group(1), int(match.group(2))
        headers: list[tuple[bytes, bytes]] = []
        lengths: set[bytes] = set()
        codings = b""
        connection = b""
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon or not _TOKEN.fullmatch(name):
                raise httpx.RemoteProtocolError(f"malformed header line {line[:60]!r}")
            value = value.strip(b" \t")
            if _BAD_VALUE.search(value):
                raise httpx.RemoteProtocolError(f"a control character in header {name[:60]!r}")
            headers.append((name, value))
            lower = name.lower()
            if lower == b"content-length":
                lengths.update(v.strip(b" \t") for v in value.split(b","))
            elif lower == b"transfer-encoding":
                codings += b"," + value.lower()
            elif lower == b"connection":
                connection += b"," + value.lower()
        keep_alive = minor == b"1" and b"close" not in {
            t.strip(b" \t") for t in connection.split(b",")
        }
        chunked = False
        length: int | None = None
        if self.head_only or status in (204, 304) or status < 200:
            length = 0
        elif codings:
            last = [c.strip(b" \t") for c in codings.split(b",") if c.strip(b" \t")]
            chunked = bool(last) and last[-1] == b"chunked"
            keep_alive = keep_alive and chunked
        elif lengths:
            value = lengths.pop()
            if lengths or not value.isdigit() or len(value) > 18:
                raise httpx.RemoteProtocolError("a malformed or conflicting Content-Length")
            length = int(value)
        else:
            keep_alive = False  # the body runs to the end of the connection
        return _Head(status, headers, length, chunked, keep_alive, start)

    def _body(self, head: _Head, *, final: bool) -> ParsedResponse | None:
        buffer = self._buffer
        if head.length is not None:
            end = head.start + head.length
            if len(buffer) < end:
                return None
            body = bytes(buffer[head.start : end])
            # Bytes after a response we did not ask for: never reuse that connection.
            keep = head.keep_alive and len(buffer) == end
            return ParsedResponse(head.status, head.headers, body, keep)
        if not head.chunked:
            return None  # read to the end of the connection: see close()
        at = head.start
        chunks: list[bytes] = []
        while True:
            eol = buffer.find(b"\r\n", at)
            if eol < 0:
                return None
            size_text = bytes(buffer[at:eol]).split(b";", 1)[0].strip(b" \t")
            if not _HEX.fullmatch(size_text):
                raise httpx.RemoteProtocolError(f"a malformed chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                # Trailers (ignored) end with an empty line.
                if buffer.startswith(b"\r\n", eol + 2):
                    end = eol + 4
                else:
                    trailers = buffer.find(b"\r\n\r\n", eol + 2)
                    if trailers < 0:
                        return None
                    end = trailers + 4
                keep = head.keep_alive and len(buffer) == end
                return ParsedResponse(head.status, head.headers, b"".join(chunks), keep)
            data_end = eol + 2 + size
            if len(buffer) < data_end + 2:
                return None
            if buffer[data_end : data_end + 2] != b"\r\n":
                raise httpx.RemoteProtocolError("a chunk does not end with CRLF")
            chunks.append(bytes(buffer[eol + 2 : data_end]))
            at = data_end + 2


# -- the transport ------------------------------------------------------------------------


_MAX_TARGETS = 10_000


@dataclass(frozen=True, slots=True)
class Target:
    """A URL split for :meth:`PushTransport.post`.

    Attributes:
        key: ``(scheme, host, port)``: the connection pool it uses.
        origin: ``scheme://host[:port]``, lower case (a VAPID token's ``aud``).
        host_header: The ``Host`` header's value.
        path: The request target (path and query).
    """

    key: tuple[bytes, bytes, int]
    origin: str
    host_header: bytes
    path: bytes


def _split(url: str) -> Target:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise httpx.UnsupportedProtocol(f"PushTransport speaks http and https, not {url[:60]!r}")
    if _BAD_URL.search(url):
        raise httpx.LocalProtocolError("a control character or space in the URL")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise httpx.UnsupportedProtocol(f"a bad port in {url[:60]!r}") from None
    netloc = parts.netloc.rpartition("@")[2].lower()
    host = parts.hostname.encode("idna")
    if not netloc.isascii():
        netloc = host.decode("ascii") + ("" if parts.port is None else f":{parts.port}")
    # The request target: the URL after its authority, as written, less any fragment.
    rest = url.split("#", 1)[0][url.find("://") + 3 :]
    cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    path = rest[cut:] if rest[cut : cut + 1] == "/" else "/" + rest[cut:]
    return Target(
        (scheme.encode(), host, port), f"{scheme}://{netloc}", netloc.encode("ascii"), path.encode()
    )


def _on_asyncio() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # trio (or no loop): the anyio stream path
        return False
    return True


class _Stale(Exception):
    """A reused connection was closed by the server before it answered."""


class _Connection:
    """A connection over an anyio stream (any backend: trio's path)."""

    __slots__ = ("idle_since", "stream")

    def __init__(self, stream: anyio.abc.ByteStream) -> None:
        self.stream = stream
        self.idle_since = 0.0

    async def aclose(self) -> None:
        await anyio.aclose_forcefully(self.stream)

    async def exchange(
        self,
        data: bytes,
        *,
        head_only: bool,
        read_timeout: float | None,
        reused: bool,
        limit: int,
        deadline: float | None = None,
    ) -> ParsedResponse:
        stream = self.stream
        try:
            # A request is a few KiB: the socket's buffer takes it without waiting,
            # but a deadline bounds the send too.
            with anyio.fail_after(None if deadline is None else deadline - time.monotonic()):
                await stream.send(data)
        except TimeoutError:
            raise httpx.WriteTimeout("the push service did not take the request in time") from None
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            if reused:
                raise _Stale from exc
            raise httpx.WriteError(f"the connection broke while sending: {exc!r}") from exc
        parser = ResponseParser(head_only=head_only, max_size=limit)
        got = False
        while True:
            if deadline is not None:
                read_timeout = deadline - time.monotonic()
            try:
                if read_timeout is None:  # the caller bounds the whole send
                    chunk = await stream.receive(65536)
                else:
                    with anyio.fail_after(read_timeout):
                        chunk = await stream.receive(65536)
            except TimeoutError:
                raise httpx.ReadTimeout("the push service did not answer in time") from None
            except anyio.EndOfStream:
                if reused and not got:
                    raise _Stale from None
                return parser.close()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                if reused and not got:
                    raise _Stale from exc
                raise httpx.ReadError(f"the connection broke while reading: {exc!r}") from exc
            got = True
            done = parser.feed(chunk)
            if done is not None:
                return done


class _Reader(asyncio.Protocol):
    """What an asyncio connection received, and a future to wake the one reader."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.ended = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport

    def closed(self) -> bool:
        """Whether the server ended the connection (a method: it changes while awaiting)."""
        return self.ended

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self.ended = True
        self._wake()
        return False  # close the transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self._wake()


class _AsyncioConnection:
    """A connection straight on an asyncio transport: no stream wrapper, no checkpoints.

    On asyncio (what most applications run) this saves the anyio stream's event-loop
    round trips on each write and read; the bytes and the parsing are the same.
    """

    __slots__ = ("idle_since", "loop", "reader", "transport")

    def __init__(self, transport: asyncio.Transport, reader: _Reader) -> None:
        self.transport = transport
        self.reader = reader
        self.loop = asyncio.get_running_loop()
        self.idle_since = 0.0

    async def aclose(self) -> None:
        self.transport.abort()

    async def exchange(
        self,
        data: bytes,
        *,
        head_only: bool,
        read_timeout: float | None,
        reused: bool,
        limit: int,
        deadline: float | None = None,
    ) -> ParsedResponse:
        reader = self.reader
        if reader.closed() or self.transport.is_closing():
            if reused:
                raise _Stale
            raise httpx.WriteError("the connection closed before the request was sent")
        self.transport.write(data)
        parser = ResponseParser(head_only=head_only, max_size=limit)
        got = False
        while True:
            if reader.buffer:
                chunk = bytes(reader.buffer)
                reader.buffer.clear()
                got = True
                done = parser.feed(chunk)
                if done is not None:
                    return done
                continue
            if reader.closed():
                if reused and not got:
                    raise _Stale
                if reader.error is not None:
                    raise httpx.ReadError(f"the connection broke while reading: {reader.error!r}")
                return parser.close()
            loop = self.loop
            waiter = reader.waiter = loop.create_future()
            # A timer that fails the one future awaited: a tenth of a cancel scope's
            # cost, and nothing else is awaited here.
            timer = None
            if deadline is not None:
                timer = loop.call_later(deadline - time.monotonic(), _expire, waiter)
            elif read_timeout is not None:
                timer = loop.call_later(read_timeout, _expire, waiter)
            try:
                await waiter
            except TimeoutError:
                raise httpx.ReadTimeout("the push service did not answer in time") from None
            finally:
                reader.waiter = None
                if timer is not None:
                    timer.cancel()


def _left(deadline: float | None, timeouts: dict[str, Any], name: str) -> float | None:
    # A step's timeout: what is left of the deadline, else httpx's timeout for it.
    return timeouts.get(name) if deadline is None else deadline - time.monotonic()


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Pool:
    """The connections to one origin: idle ones (last in, first out) and waiting senders."""

    __slots__ = ("active", "idle", "waiters")

    def __init__(self) -> None:
        self.idle: list[_Connection | _AsyncioConnection] = []
        self.active = 0  # slots handed out (each one connection in use or being made)
        self.waiters: deque[anyio.Event] = deque()

    def release(self) -> None:
        if self.waiters:
            self.waiters.popleft().set()  # the slot passes straight to the first waiter
        else:
            self.active -= 1


class PushTransport(httpx.AsyncBaseTransport):
    """A lean HTTP/1.1 transport for httpx, for many small requests to few origins.

    Pass it as ``httpx.AsyncClient(transport=PushTransport())``: the client's API,
    auth, hooks and timeouts are as usual, while each request costs one write and
    (usually) one read on a kept-alive connection, with none of the general pool's
    per-request scans. Works on asyncio and trio (through anyio). ``http://`` and
    ``https://`` (TLS with ALPN ``http/1.1``); no proxies, no HTTP/2.

    A request on a reused connection that the server had closed meanwhile (nothing
    received) is sent once more on a new connection, as browsers do.

    Args:
        max_connections: At most this many connections per origin; more requests
            wait for one (the ``pool`` timeout).
        keepalive_expiry: Close a connection idle for longer than this many seconds
            rather than reuse it.
        ssl_context: For ``https://``; ``httpx.create_ssl_context()`` by default.
        max_response_size: Refuse a response larger than this (octets).
    """

    def __init__(
        self,
        *,
        max_connections: int = 64,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        max_response_size: int = 1 << 20,
    ) -> None:
        if max_connections < 1:
            raise ValueError(f"max_connections must be >= 1, not {max_connections}")
        self._max = max_connections
        self._expiry = keepalive_expiry
        self._ssl = ssl_context
        self._limit = max_response_size
        self._pools: dict[tuple[bytes, bytes, int], _Pool] = {}
        self._targets: dict[str, Target] = {}
        self._closed = False
        #: Connections opened so far (for tests and metrics).
        self.connections_opened = 0

    def __repr__(self) -> str:
        return f"<PushTransport origins={len(self._pools)} opened={self.connections_opened}>"

    async def __aenter__(self) -> PushTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every idle connection; those in use close when their request ends."""
        self._closed = True
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            while pool.idle:
                await pool.idle.pop().aclose()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` and return the whole response (httpx calls this)."""
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"PushTransport speaks http and https, not {scheme!r}")
        host = url.raw_host
        port = url.port or (443 if scheme == b"https" else 80)
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        data = _request_bytes(request, await request.aread())
        response = await self._exchange(
            (scheme, host, port), data, head_only=request.method == "HEAD", timeouts=timeouts
        )
        return httpx.Response(
            response.status,
            headers=response.headers,
            content=response.body,
            extensions={"http_version": b"HTTP/1.1"},
        )

    def target(self, url: str) -> Target:
        """Split a URL into what :meth:`post` needs (its origin's part cached).

        Raises:
            httpx.UnsupportedProtocol: Not ``http://`` or ``https://``.
            httpx.LocalProtocolError: A control character in the URL.
        """
        # Endpoints are many but their origins few: split the origin once per origin,
        # and only slice the path off each URL.
        start = url.find("://") + 3
        slash = url.find("/", start) if start > 2 else -1
        cut = len(url) if slash < 0 else slash
        cached = self._targets.get(url[:cut])
        if cached is None or "?" in url[start:cut] or "#" in url:
            target = _split(url)
            if len(self._targets) >= _MAX_TARGETS:
                self._targets.clear()
            if slash > 0 and "#" not in url and "?" not in url[start:cut]:
                self._targets[url[:cut]] = target
            return target
        path = url[cut:] or "/"
        if _BAD_URL.search(path):
            raise httpx.LocalProtocolError("a control character or space in the URL")
        return Target(cached.key, cached.origin, cached.host_header, path.encode())

    async def post(
        self, target: Target, headers: bytes, body: bytes, *, deadline: float | None = None
    ) -> ParsedResponse:
        """Send a ``POST`` with none of httpx's per-request objects (the provider's path).

        Args:
            target: Where (see :meth:`target`).
            headers: Header lines, each ending in CRLF, already checked by the caller
                (``Host`` and ``Content-Length`` are added here).
            body: The body.
            deadline: When (``time.monotonic()``) the whole send must be done by:
                waiting for a connection, connecting and reading the answer. ``None``:
                the caller bounds it (e.g. ``anyio.fail_after``).

        Raises:
            httpx.TimeoutException: The deadline passed (``PoolTimeout``,
                ``ConnectTimeout``, ``WriteTimeout`` or ``ReadTimeout``).
            httpx.TransportError: The subclass httpx raises for the same failure.
        """
        data = b"POST %s HTTP/1.1\r\nhost: %s\r\n%scontent-length: %d\r\n\r\n%s" % (
            target.path,
            target.host_header,
            headers,
            len(body),
            body,
        )
        return await self._exchange(
            target.key, data, head_only=False, timeouts={}, deadline=deadline
        )

    async def _exchange(
        self,
        key: tuple[bytes, bytes, int],
        data: bytes,
        *,
        head_only: bool,
        timeouts: dict[str, Any],
        deadline: float | None = None,
    ) -> ParsedResponse:
        if self._closed:
            raise RuntimeError("this PushTransport is closed")
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool()
        await self._acquire(pool, _left(deadline, timeouts, "pool"))
        try:
            for attempt in (0, 1):
                # The retry goes on a new connection: the other idle ones may be stale too.
                connection, reused = await self._idle(pool) if attempt == 0 else (None, False)
                if connection is None:
                    connection = await self._connect(key, _left(deadline, timeouts, "connect"))
                try:
                    response = await connection.exchange(
                        data,
                        head_only=head_only,
                        read_timeout=timeouts.get("read"),
                        reused=reused,
                        limit=self._limit,
                        deadline=deadline,
                    )
                except _Stale:
                    await connection.aclose()
                    continue
                except BaseException:
                    await connection.aclose()
                    raise
                break
            else:  # pragma: no cover - the second attempt is never "reused"
                raise httpx.RemoteProtocolError("the server closed the connection")
            if response.keep_alive and not self._closed:
                connection.idle_since = time.monotonic()
                pool.idle.append(connection)
            else:
                await connection.aclose()
        finally:
            pool.release()
        return response

    async def _acquire(self, pool: _Pool, pool_timeout: float | None) -> None:
        if pool.active < self._max and not pool.waiters:
            pool.active += 1
            return
        ready = anyio.Event()
        pool.waiters.append(ready)
        try:
            with anyio.fail_after(pool_timeout):
                await ready.wait()
        except BaseException as exc:
            if ready.is_set():
                pool.release()  # it was handed a slot as it gave up: pass it on
            else:
                pool.waiters.remove(ready)
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout("no connection to the push service came free") from None
            raise

    async def _idle(self, pool: _Pool) -> tuple[_Connection | _AsyncioConnection | None, bool]:
        now = time.monotonic()
        while pool.idle:
            connection = pool.idle.pop()
            if now - connection.idle_since <= self._expiry:
                return connection, True
            await connection.aclose()
        return None, False

    async def _connect(
        self, key: tuple[bytes, bytes, int], connect_timeout: float | None
    ) -> _Connection | _AsyncioConnection:
        scheme, raw_host, port = key
        host = raw_host.decode("ascii")
        stream: anyio.abc.ByteStream
        context = None
        if scheme == b"https":
            context = self._ssl
            if context is None:
                context = self._ssl = httpx.create_ssl_context()
                context.set_alpn_protocols(["http/1.1"])
        try:
            with anyio.fail_after(connect_timeout):
                if _on_asyncio():
                    loop = asyncio.get_running_loop()
                    transport, reader = await loop.create_connection(
                        _Reader, host, port, ssl=context, server_hostname=host if context else None
                    )
                    self.connections_opened += 1
                    return _AsyncioConnection(transport, reader)
                if context is not None:
                    stream = await anyio.connect_tcp(
                        host, port, ssl_context=context, tls_hostname=host
                    )
                else:
                    stream = await anyio.connect_tcp(host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from None
        except (OSError, anyio.BrokenResourceError, ssl.SSLError) as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
        self.connections_opened += 1
        return _Connection(stream)


def _request_bytes(request: httpx.Request, body: bytes) -> bytes:
    """The request head and body as one buffer (headers checked: no CR, LF or NUL)."""
    lines = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), request.url.raw_path)]
    has_length = False
    for name, value in request.headers.raw:
        lower = name.lower()
        if lower == b"transfer-encoding":
            continue  # the body was read whole: it is sent with a Content-Length
        if lower == b"content-length":
            has_length = True
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise httpx.LocalProtocolError(f"an invalid header {name[:60]!r}")
        lines.append(b"%s: %s\r\n" % (name, value))
    if not has_length and (body or request.method not in ("GET", "HEAD")):
        lines.append(b"content-length: %d\r\n" % len(body))
    lines.append(b"\r\n")
    lines.append(body)
    return b"".join(lines)
