"""The connection side of the Redis backend: clients, blocking reads, error mapping.

redis-py is imported here, on first use, so that importing eventpatterns never needs
it. Vendor errors become eventpatterns errors at this boundary, raised ``from`` the
original (``BackendUnavailable`` for anything that means "try again later"), and every
error reply of our scripts is mapped by one table, :data:`REPLIES`.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ...errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    DeadLetterNotFound,
    GroupNotFound,
    InvalidPosition,
    MissingDependency,
    PositionExpired,
    StalePosition,
)
from ._scripts import NAMES, TEXTS, sha1
from ._url import connection_options, server_of

if TYPE_CHECKING:
    from redis.asyncio import ConnectionPool, Redis, RedisCluster

__all__ = [
    "RAW_CONNECTIONS",
    "REPLIES",
    "Context",
    "RawCalls",
    "RedisConnection",
    "pack",
    "pack_args",
    "pack_head",
]

_BLOCK_SLACK = 10.0  # seconds a blocking read may exceed its BLOCK before we give up on it
# The scripts transaction() runs with EVALSHA: loaded on each connection it opens.
_TRANSACTION_SCRIPTS = ("TAKE_BEFORE", "TAKE_AFTER")
# Client arguments the backend sets itself.
_OURS = frozenset({"self", "connection_pool", "single_connection_client", "startup_nodes"})


@dataclass(frozen=True, slots=True)
class Context:
    """What an error reply does not say itself: the call's group and position."""

    group: str = ""
    position: str = ""


def _not_pending(arg: str, c: Context) -> Exception:
    return LookupError(f"no delivery {arg!r} is pending in group {c.group!r}")


def _trimmed(arg: str, c: Context) -> Exception:
    return LookupError(
        f"delivery {arg!r} of group {c.group!r} was trimmed from the log before it could be"
        " dead-lettered (counted in group_stats().lost)"
    )


#: Every error reply of the scripts (``<code> <argument>``) -> the error it becomes.
REPLIES: dict[str, Callable[[str, Context], Exception]] = {
    "EPNOGROUP": lambda arg, c: GroupNotFound(arg),
    "EPNODEAD": lambda arg, c: DeadLetterNotFound(c.group, arg),
    "EPNOTPENDING": _not_pending,
    "EPTRIMMED": _trimmed,
    "EPSTALE": lambda arg, c: StalePosition(c.position, epoch=arg),
    "EPBEYOND": lambda arg, c: InvalidPosition(
        c.position, expected="a position not beyond the end of the log"
    ),
    "EPEXPIRED": lambda arg, c: PositionExpired(c.position, oldest=None if arg == "-" else arg),
}


def _import_redis() -> Any:
    try:
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
        import redis.exceptions
    except ImportError as exc:
        raise MissingDependency("redis", extra="redis") from exc
    return redis


def pack_args(*args: Any) -> bytes:
    """Encode arguments as RESP bulk strings: the body of a command, without its header."""
    # "$<n>" and the value alternate, joined by CRLF (with one at the end): no
    # formatting copies the values, which may be large.
    parts: list[bytes] = []
    add = parts.append
    known = _SHORT
    for arg in args:
        kind = type(arg)
        if kind is str:
            bulk = known.get(arg)
            if bulk is not None:  # a key or a name sent before: encoded once
                add(bulk)
                continue
            value = arg.encode()
            if len(value) <= _SHORT_SIZE:
                bulk = b"$%d\r\n%b" % (len(value), value)
                if len(known) >= _SHORT_COUNT:
                    known.clear()
                known[arg] = bulk
                add(bulk)
                continue
        else:
            value = arg if kind is bytes else str(arg).encode()
        add(b"$%d" % len(value))
        add(value)
    add(b"")
    return b"\r\n".join(parts)


#: Short strings' RESP bulk form (``$<n>\r\n<value>``), by string: keys and names come
#: back in every call. Bounded: when full it starts over.
_SHORT: dict[str, bytes] = {}
_SHORT_SIZE = 96
_SHORT_COUNT = 4096


def pack(*commands: Sequence[Any]) -> bytes:
    """Encode commands in RESP, as redis-py's ``pack_commands`` does, for less."""
    return b"".join([b"*%d\r\n" % len(command) + pack_args(*command) for command in commands])


_MULTI, _EXEC = b"*1\r\n$5\r\nMULTI\r\n", b"*1\r\n$4\r\nEXEC\r\n"


def pack_head(*args: Any, more: int) -> bytes:
    """Encode the fixed first ``args`` of a command that ``more`` arguments will end."""
    return b"*%d\r\n" % (len(args) + more) + pack_args(*args)


#: Largest command :func:`send` writes straight to the socket's buffer.
_DIRECT_WRITE = 64 * 1024


async def send(conn: Any, packed: bytes) -> None:
    """Send a packed command on a redis-py connection (connecting it first if need be).

    redis-py's ``send_packed_command`` runs each write in a task of its own under
    ``wait_for`` when a socket timeout is set, which costs more than a small
    command's round trip; a command that fits the transport's buffer (under its
    64 KiB high-water mark, so ``drain`` returns at once) is written directly. A
    failed write shows as a failed read of the reply.
    """
    writer = getattr(conn, "_writer", None) if conn.is_connected else None
    if writer is None or len(packed) > _DIRECT_WRITE:
        await conn.send_packed_command(packed, check_health=False)
        return
    writer.write(packed)
    await writer.drain()


#: Connections a client opens at most unless ``max_connections`` says otherwise.
DEFAULT_MAX_CONNECTIONS = 100


def waiting_client(redis: Any, options: dict[str, Any]) -> Any:
    """Return a ``redis.asyncio.Redis`` whose pool waits for a free connection.

    redis-py's default pool raises ``MaxConnectionsError`` once ``max_connections``
    (100) commands are in flight; this one makes the 101st wait (up to the socket
    timeout, or 20 s) instead, so a burst of concurrent calls slows down rather than
    failing. ``max_connections`` in the URL or options still sets the size.
    """
    plain = redis.asyncio.Redis(**options).connection_pool
    pool = redis.asyncio.BlockingConnectionPool(
        connection_class=plain.connection_class,
        max_connections=options.get("max_connections") or DEFAULT_MAX_CONNECTIONS,
        timeout=options.get("socket_timeout") or 20.0,
        **plain.connection_kwargs,
    )
    return redis.asyncio.Redis.from_pool(pool)


#: Most connections a :class:`RawCalls` opens.
RAW_CONNECTIONS = 64


class RawCalls:
    """Commands sent packed by us on connections of their own: the hot paths' client.

    redis-py's command path (its argument encoder, a pool checkout that tests each
    connection, response callbacks, observability hooks) costs more than the round
    trip itself for a small script; the job store's scripts and reads go this way:
    the command is packed by :func:`pack` and sent on a connection kept idle here
    (not handed back to a pool), its reply read raw. An error reply is raised as
    redis-py's ``ResponseError``; a connection that fails or is interrupted
    mid-exchange is dropped (a reply may be in flight), and a call that failed on
    an idle connection (stale after a Redis restart) is sent once more on a new one.

    At most :data:`RAW_CONNECTIONS` connections are open (fewer if ``max_connections``
    says so); further calls wait for one. A call holds its connection for one round
    trip, so a few dozen serve any number of callers, and a thousand calls in flight
    cost a thousand sockets' set-up and polling no more.

    Args:
        redis: The redis-py package (:func:`_import_redis`).
        options: The client options (as for ``redis.asyncio.Redis``).
        max_connections: Connections open at once at most (further calls wait).
    """

    def __init__(self, redis: Any, options: dict[str, Any], *, max_connections: int) -> None:
        self._pool = redis.asyncio.Redis(**options).connection_pool
        self._idle: list[Any] = []
        self._slots = asyncio.Semaphore(min(max_connections, RAW_CONNECTIONS))
        # What a connection the server dropped fails with (not a timeout: a command
        # that timed out may still run, and is not sent twice).
        self._stale: tuple[type[BaseException], ...] = (redis.exceptions.ConnectionError, OSError)
        self._closed_error: type[Exception] = redis.exceptions.ConnectionError
        self._closed = False
        self._error_reply: type[Exception] = redis.exceptions.ResponseError
        self.noscript: type[Exception] = redis.exceptions.NoScriptError
        wants = inspect.signature(self._pool.get_connection).parameters.get("command_name")
        needs_name = wants is not None and wants.default is inspect.Parameter.empty
        self._command_name: tuple[str, ...] = ("EVALSHA",) if needs_name else ()

    async def call(self, packed: bytes) -> Any:
        """Send one packed command and return its reply (raw bytes, lists, ints)."""
        async with self._slots:
            reused = bool(self._idle)
            try:
                return await self._exchange(packed)
            except self._stale:
                if not reused:
                    raise
            # The server went away (a restart): the other idle connections are as
            # stale as that one. Drop them all, and send once more on a new one.
            stale, self._idle = self._idle, []
            with anyio.CancelScope(shield=True):
                for conn in stale:
                    await conn.disconnect(nowait=True)
                    await self._pool.release(conn)
            return await self._exchange(packed)

    async def _exchange(self, packed: bytes) -> Any:
        if self._closed:  # no new connection once closed (the caller says BusClosed)
            raise self._closed_error("the connections are closed")
        idle = self._idle
        if idle:
            conn = idle.pop()
        else:
            conn = await self._pool.get_connection(*self._command_name)
        try:
            await send(conn, packed)
            reply = await conn.read_response()
        except self._error_reply:
            await self._keep(conn)  # an error reply: the connection is in step
            raise
        except BaseException:
            with anyio.CancelScope(shield=True):
                await conn.disconnect(nowait=True)
                await self._pool.release(conn)
            raise
        await self._keep(conn)
        return reply

    async def _keep(self, conn: Any) -> None:
        if not self._closed:
            self._idle.append(conn)
            return
        with anyio.CancelScope(shield=True):  # closed meanwhile (opened after the others)
            await conn.disconnect(nowait=True)

    async def script(self, sha: bytes, text: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a script by its SHA1 (``EVALSHA``), sending its text when the server lacks it."""
        try:
            return await self.call(pack(("EVALSHA", sha, len(keys), *keys, *args)))
        except self.noscript:  # a new or flushed server: EVAL caches it again
            return await self.call(pack(("EVAL", text, len(keys), *keys, *args)))

    async def aclose(self) -> None:
        """Close every connection (idempotent); later calls fail as unavailable."""
        self._closed = True
        self._idle.clear()
        with anyio.CancelScope(shield=True):
            await self._pool.disconnect()


class RedisConnection:
    """A client for commands and scripts, plus connections of their own for blocking reads.

    Args:
        url: A Redis URL (without the bus's own options); see :mod:`._url`.
        cluster: Use redis-py's ``RedisCluster``.
        route_key: A key of the bus; in cluster mode, blocking reads go to its primary.
        redis_options: redis-py client options; they reach every connection.

    Raises:
        ConfigurationError: A bad URL or option.
        MissingDependency: redis-py is not installed.
    """

    def __init__(
        self, url: str, *, cluster: bool, route_key: str, redis_options: dict[str, Any]
    ) -> None:
        redis = _import_redis()
        client_class = redis.asyncio.RedisCluster if cluster else redis.asyncio.Redis
        allowed = set(inspect.signature(client_class.__init__).parameters) - _OURS
        options = connection_options(url, redis_options, cluster=cluster, allowed=allowed)
        if "retry" not in options:
            # Reconnect quickly once (a pooled connection may be stale after a Redis
            # restart), then fail fast: the façade retries with backoff on its own.
            backoff = redis.backoff.ExponentialBackoff(cap=0.2, base=0.02)
            options["retry"] = redis.asyncio.retry.Retry(backoff, 2)
        self.cluster = cluster
        self.db = options.get("db", 0)
        #: The server and database this connection reaches (see ``_url.server_of``).
        self.server = server_of(options)
        self.client: Redis | RedisCluster = (
            client_class(**options) if cluster else waiting_client(redis, options)
        )
        # Blocking reads and receive's transactions get connections of their own,
        # used raw: one cancelled half-way leaves a reply in flight, so such a
        # connection is dropped, never pooled. Without a cluster, that pool is the
        # pool of a second client built from the same options (so a password, TLS
        # or timeouts given as keywords reach it too); with one, it is resolved on
        # first use from the node that serves the bus's slot.
        self._blocking_pool: ConnectionPool | None = None
        if not cluster:
            self._blocking_pool = redis.asyncio.Redis(**options).connection_pool
        self._idle: list[Any] = []  # connections of the raw pool for transaction()
        self._route_key = route_key
        self._pool_class: type[ConnectionPool] = redis.asyncio.ConnectionPool
        wants = inspect.signature(self._pool_class.get_connection).parameters["command_name"]
        # redis-py < 5.3 wants a command name for get_connection(); later ones warn.
        self._command_name = ("XREAD",) if wants.default is inspect.Parameter.empty else ()
        self._unavailable: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.ClusterError,  # cluster down, slot moving: try again later
            redis.exceptions.MovedError,
            redis.exceptions.AskError,
            redis.exceptions.TryAgainError,
            OSError,
        )
        #: redis-py's ``ResponseError``: an error reply (our scripts' ``EP...`` codes).
        self.response_error: type[Exception] = redis.exceptions.ResponseError
        self._scripts = {name: self.client.register_script(TEXTS[name]) for name in NAMES}
        # Scripts skip redis-py's command path (not on a cluster: it routes them).
        self._raw: RawCalls | None = None
        if not cluster:
            limit = options.get("max_connections") or DEFAULT_MAX_CONNECTIONS
            self._raw = RawCalls(redis, options, max_connections=limit)
        self._all_shas = {name: sha1(TEXTS[name]) for name in NAMES}
        self._shas = {name: sha1(TEXTS[name]) for name in _TRANSACTION_SCRIPTS}
        self._loads = pack(*[("SCRIPT", "LOAD", TEXTS[name]) for name in _TRANSACTION_SCRIPTS])
        self._reload = False  # load them before the next transaction, on any connection
        self._noscript: type[Exception] = redis.exceptions.NoScriptError
        self._on_asyncio = False
        self.closed = False

    def check_open(self) -> None:
        """Raise ``BusClosed`` after :meth:`aclose`, ``ConfigurationError`` off asyncio."""
        if self.closed:
            raise BusClosed("the Redis bus backend is closed")
        if not self._on_asyncio:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                raise ConfigurationError(
                    "the Redis backend runs on asyncio only (redis-py's client); use"
                    " anyio.run(..., backend='asyncio')"
                ) from None
            self._on_asyncio = True

    @contextmanager
    def mapped(self, *, group: str = "", position: str = "") -> Iterator[None]:
        """Map redis-py errors to ours: unavailable, closed, and :data:`REPLIES`."""
        self.check_open()
        try:
            yield
        except self._unavailable as exc:
            if self.closed:
                raise BusClosed("the Redis bus backend is closed") from exc
            raise BackendUnavailable(f"Redis is unavailable: {exc}") from exc
        except self.response_error as exc:
            raise self.error_of(exc, Context(group, position)) from None

    def error_of(self, exc: Exception, context: Context) -> Exception:
        """Return the eventpatterns error for an error reply (``exc`` itself if none)."""
        code, _, arg = str(exc).partition(" ")
        make = REPLIES.get(code)
        if make is not None:
            return make(arg, context)
        if "DB index is out of range" in str(exc):
            return ConfigurationError(
                f"redis option db={self.db} is out of range for this server"
                " (its 'databases' setting)"
            )
        return exc

    async def script(
        self,
        name: str,
        keys: Sequence[str],
        args: Sequence[Any],
        *,
        group: str = "",
        position: str = "",
    ) -> Any:
        """Run one of the scripts (``EVALSHA``, loading it again after a restart)."""
        with self.mapped(group=group, position=position):
            if self._raw is not None:
                return await self._raw.script(self._all_shas[name], TEXTS[name], keys, args)
            return await self._scripts[name](keys=keys, args=args)

    async def blocking(self, *command: Any, block: float) -> Any:
        """Run a blocking command on a connection of its own; drop it if interrupted."""
        with self.mapped():
            pool = await self._pool()
            conn = await pool.get_connection(*self._command_name)  # type: ignore[no-untyped-call]
            try:
                await conn.send_command(*command)
                return await conn.read_response(timeout=block + _BLOCK_SLACK)
            except BaseException as exc:
                await self._drop(pool, conn, exc)
                raise
            finally:
                with anyio.CancelScope(shield=True):
                    await pool.release(conn)

    async def blocking_then(
        self, command: Sequence[Any], then: Sequence[Any], *, block: float
    ) -> tuple[Any, Any]:
        """Run a blocking command and ``then`` after it on the same connection, at once.

        One round trip: the server runs ``then`` as soon as ``command`` returns (the
        connection's commands run in order), as if sent after its reply arrived.
        """
        packed = pack(command, then)
        with self.mapped():
            pool = await self._pool()
            # An idle connection of transaction()'s is taken as it is (the pool would
            # test it first: a read attempt per checkout); one gone stale (a Redis
            # restart) fails at once, and the call is sent again on a new one.
            idle = self._idle
            while True:
                reused = bool(idle)
                conn = idle.pop() if reused else await pool.get_connection(*self._command_name)  # type: ignore[no-untyped-call]
                try:
                    await send(conn, packed)
                    first = await conn.read_response(timeout=block + _BLOCK_SLACK)
                    second = await conn.read_response(timeout=_BLOCK_SLACK)
                except BaseException as exc:
                    await self._drop(pool, conn, exc)
                    with anyio.CancelScope(shield=True):
                        await pool.release(conn)
                    if reused and isinstance(exc, self._unavailable) and not self.closed:
                        continue
                    raise
                break
            if self.closed:  # closed meanwhile: aclose() has disconnected the others
                with anyio.CancelScope(shield=True):
                    await conn.disconnect(nowait=True)
            elif pool is self._blocking_pool:
                idle.append(conn)
            else:  # pragma: no cover - the cluster's pool changed meanwhile
                await pool.release(conn)
            return first, second

    def sha(self, name: str) -> bytes:
        """Return the SHA1 ``EVALSHA`` names one of the scripts :meth:`transaction` loads."""
        return self._shas[name]

    def is_noscript(self, reply: Any) -> bool:
        """Tell whether a reply of :meth:`transaction` is a NOSCRIPT error."""
        return isinstance(reply, self._noscript)

    def reload_scripts(self) -> None:
        """Load the transaction's scripts again before the next transaction (NOSCRIPT seen)."""
        self._reload = True

    async def transaction(self, body: bytes, count: int) -> list[Any]:
        """Run ``count`` commands packed in ``body`` in one ``MULTI``/``EXEC`` round trip.

        Return EXEC's replies, raw (no redis-py response callbacks); a command that
        failed inside the transaction has its ``ResponseError`` as its reply. Scripts
        named by :meth:`sha` are loaded on every connection opened for this, but may
        be flushed since (``SCRIPT FLUSH``): the caller checks :meth:`is_noscript`.
        """
        data = _MULTI + body + _EXEC
        try:
            return await self._exchange(data, count + 2)
        except BackendUnavailable:
            # Once more on a new connection: pooled ones go stale when Redis restarts.
            # Should the first EXEC have run after all, its entries are redelivered
            # when their deadline passes (at least once) and acks are idempotent.
            return await self._exchange(data, count + 2)

    async def _exchange(self, data: bytes, replies: int) -> list[Any]:
        """Send packed commands on a connection of the raw pool; return the last reply.

        Idle connections are kept here, not handed back to the pool, which checks
        each one it hands out (a read attempt per checkout); a stale one fails and
        :meth:`transaction` tries again. A new connection may be to a new server (a
        restart, a failover) without our scripts: they are loaded first, in the same
        round trip.
        """
        with self.mapped():
            pool = await self._pool()
            load = self._reload or not self._idle
            if self._idle:
                conn = self._idle.pop()
            else:
                conn = await pool.get_connection(*self._command_name)  # type: ignore[no-untyped-call]
            if load:
                self._reload = False
                data = self._loads + data
                replies += len(_TRANSACTION_SCRIPTS)
            try:
                await send(conn, data)
                for _ in range(replies - 1):
                    await conn.read_response()
                reply: list[Any] = await conn.read_response()
            except BaseException as exc:
                await self._drop(pool, conn, exc)
                with anyio.CancelScope(shield=True):
                    await pool.release(conn)
                raise
            if pool is self._blocking_pool:
                self._idle.append(conn)
            else:
                await pool.release(conn)
            return reply

    async def _drop(self, pool: ConnectionPool, conn: Any, exc: BaseException) -> None:
        """Disconnect a connection whose exchange was interrupted: a reply may be in flight."""
        with anyio.CancelScope(shield=True):
            await conn.disconnect(nowait=True)
            if self.cluster and isinstance(exc, Exception):
                # The slot may have moved: resolve its primary again next time.
                self._blocking_pool = None
                self._idle.clear()
                await pool.disconnect()

    async def _pool(self) -> ConnectionPool:
        if self._blocking_pool is None:
            cluster: Any = self.client
            await cluster.initialize()
            node = cluster.get_node_from_key(self._route_key)
            self._blocking_pool = self._pool_class(
                connection_class=node.connection_class, **node.connection_kwargs
            )
        return self._blocking_pool

    async def aclose(self) -> None:
        """Close every connection; blocked reads end with ``BusClosed``. Idempotent."""
        if self.closed:
            return
        self.closed = True
        with anyio.CancelScope(shield=True):
            if self._raw is not None:
                await self._raw.aclose()
            if self._blocking_pool is not None:
                await self._blocking_pool.disconnect()
            await self.client.aclose()
