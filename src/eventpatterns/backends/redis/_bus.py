"""The Redis bus backend: a Redis Stream as the log, consumer groups for durable delivery.

See :mod:`._scripts` for the data layout. Every operation is one round trip (a Lua
script; for ``receive`` a ``MULTI``/``EXEC`` around a plain ``XREADGROUP``, and a second
round trip when redeliveries are due), except ``ack``, which usually takes none: its
receipts ride along with the next call for the group (see
:meth:`RedisBusBackend.ack`). Blocking reads
(``XREAD BLOCK``) run on connections of their own, which are dropped, never reused,
when a read is cancelled mid-command (:mod:`._connection`).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Sequence
from typing import Any, Literal

import anyio

from ...bus._contract import (
    Capabilities,
    DeadLetter,
    Delivery,
    GroupStats,
    LogEntry,
    Position,
    check_group_name,
)
from ...core import Clock, Event, SystemClock
from ...errors import (
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    DeadLetterNotFound,
    EventPatternsError,
    EventTooLarge,
    GroupNotFound,
    InvalidPosition,
    PositionExpired,
)
from ._codec import decode_event
from ._connection import RedisConnection, pack, pack_args, pack_head, split_url

__all__ = ["RedisBusBackend"]

_STREAM_ID = re.compile(r"\A(0|[1-9][0-9]{0,19})-(0|[1-9][0-9]{0,19})\Z")
_ID = r"(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})"
_ID_LIST = re.compile(f"{_ID}(?:,{_ID})*")  # stream ids joined by commas (fullmatch)
_FLUSH_TIMEOUT = 2.0  # seconds a consumer being cancelled may spend sending its queued acks


def _text(value: bytes | str | Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


class RedisBusBackend:
    """The bus on Redis Streams: one box to a cluster, many processes, durable groups.

    The log is one stream per bus; a consumer group of the bus is a Redis consumer
    group on it, with visibility deadlines, retry delays and attempt counts kept next
    to it, and a dead-letter stream. All keys share one hash tag, so the bus works on
    Redis Cluster (it lives in one slot).

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` or
            ``unix:///path/to/socket``; other redis-py URL options pass through.
        prefix: Key namespace; keys are ``{prefix}:...``. Buses with the same prefix
            on the same database are the same bus.
        max_entries: Retention: the stream keeps at most this many entries.
        dedupe_window: Seconds during which a repeated event id is not appended again.
        max_message_size: Reject events whose JSON form is larger (bytes).
        clock: Time source for visibility timeouts, retry delays and the dedupe
            window; processes sharing a bus must have roughly synchronised clocks.
        cluster: Talk to a Redis Cluster (redis-py's ``RedisCluster``); every key of
            the bus is in the slot of ``{prefix}``.
        reclaim_after: Safety net: a pending entry idle this long (Redis's clock)
            without a deadline of ours, e.g. because its bookkeeping was evicted,
            is taken over with ``XAUTOCLAIM`` and redelivered. Keep it above every
            visibility timeout.
        **redis_options: Passed to :meth:`redis.asyncio.Redis.from_url`.

    Raises:
        MissingDependency: redis-py is not installed.
        ConfigurationError: A bad option.

    Example:
        ```python
        import anyio
        from eventpatterns import Event, EventBus

        async def main() -> None:
            url = "redis://127.0.0.1:6379/0?prefix=docs-example&max_entries=1000"
            async with EventBus.from_url(url) as bus:
                position = await bus.publish(Event(type="hello", source="/docs"))
                print(bus.backend.sort_key(position) > (0, 0))

        anyio.run(main)
        ```
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventpatterns",
        max_entries: int = 100_000,
        dedupe_window: float = 300.0,
        max_message_size: int | None = 1024 * 1024,
        clock: Clock | None = None,
        cluster: bool = False,
        reclaim_after: float = 3600.0,
        **redis_options: Any,
    ) -> None:
        if max_entries < 1:
            raise ConfigurationError(f"max_entries must be at least 1, got {max_entries}")
        if dedupe_window < 0:
            raise ConfigurationError(f"dedupe_window must be >= 0, got {dedupe_window}")
        if max_message_size is not None and not 0 < max_message_size <= 512 * 1024 * 1024:
            raise ConfigurationError("max_message_size must be within 1 byte .. 512 MiB (Redis)")
        if reclaim_after <= 0:
            raise ConfigurationError(f"reclaim_after must be > 0, got {reclaim_after}")
        if not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"prefix must be non-empty without braces, got {prefix!r}")
        self.clock: Clock = clock or SystemClock()
        self.capabilities = Capabilities(
            ordering="total",
            history=True,
            max_message_size=max_message_size,
            dedupe_window=dedupe_window,
        )
        self.prefix = prefix
        self._max_entries = max_entries
        self._tag = "{" + prefix + "}"
        self._log = f"{self._tag}:log"
        self._meta = f"{self._tag}:meta"
        self._groups = f"{self._tag}:groups"
        self._conn = RedisConnection(
            url, cluster=cluster, route_key=self._log, redis_options=redis_options
        )
        self._wakeups: dict[str, anyio.Event] = {}
        self._reclaim_ms = max(int(reclaim_after * 1000), 1)
        self._sweep_every = min(reclaim_after, 60.0)
        self._swept: dict[str, float] = {}  # group -> time.monotonic() of its last sweep
        self._live: set[str] = set()  # groups known to exist: their acks may be queued
        self._acks: dict[str, list[str]] = {}  # group -> receipts acked, not sent yet
        self._keys: dict[str, list[str]] = {}
        # group -> the fixed parts of its receive transaction, encoded once (RESP)
        self._heads: dict[str, tuple[bytes, bytes]] = {}
        self._reads: dict[str, tuple[str, int, bytes]] = {}  # group -> its last XREADGROUP

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBusBackend:
        """Build from ``redis://host:port/db?prefix=myapp&max_entries=100000``.

        The options ``prefix``, ``max_entries``, ``dedupe_window``,
        ``max_message_size``, ``reclaim_after`` and ``cluster`` are read from the
        query string; the others are redis-py's. Keyword ``options`` win over the
        query string.

        Raises:
            ConfigurationError: Not a Redis URL, or a bad option.
            MissingDependency: redis-py is not installed.
        """
        return cls(split_url(url, options), **options)

    # -- plumbing ---------------------------------------------------------------------

    def _group_keys(self, group: str) -> list[str]:
        """Return the keys of one group's scripts: log, groups, due, att, held, dlq."""
        base = f"{self._tag}:g:{group}"
        return [
            self._log,
            self._groups,
            f"{base}:due",
            f"{base}:att",
            f"{base}:held",
            f"{base}:dlq",
        ]

    def _receive_keys(self, group: str) -> list[str]:
        keys = self._keys.get(group)
        if keys is None:
            keys = self._keys[group] = [*self._group_keys(group)[:5], self._meta]
        return keys

    def _wake(self, group: str) -> None:
        event = self._wakeups.pop(group, None)
        if event is not None:
            event.set()

    # -- the log --------------------------------------------------------------------------

    async def append(self, events: Sequence[Event]) -> list[Position]:
        """Append events in one round trip; see :meth:`BusBackend.append`."""
        self._conn.check_open()
        if not events:
            return []
        limit = self.capabilities.max_message_size
        keys = [self._log, self._meta]
        window = self.capabilities.dedupe_window
        args: list[Any] = [
            repr(self.clock.time()),
            repr(window),
            self._max_entries,
            int(window * 1000) + 1000,
        ]
        dedupe = f"{self._tag}:dd:"
        for event in events:
            data = event.to_json()
            if limit is not None and len(data) > limit:
                raise EventTooLarge(event.id, size=len(data), limit=limit)
            keys.append(dedupe + event.id)
            args.append(event.id)
            args.append(data)
        positions = await self._conn.script("APPEND", keys, args)
        return [_text(p) for p in positions]

    def sort_key(self, position: Position) -> tuple[int, ...]:
        """Order positions: stream ids ``<milliseconds>-<sequence>``."""
        match = _STREAM_ID.match(position) if isinstance(position, str) else None
        if match is None:
            raise InvalidPosition(position, expected="a Redis stream id such as '1700000000000-0'")
        return (int(match[1]), int(match[2]))

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        """Read entries after ``after``; see :meth:`BusBackend.read`."""
        key = None if after is None else self.sort_key(after)
        self._conn.check_open()
        page = await self._conn.script(
            "READ", [self._log, self._meta], ["-" if after is None else f"({after}", limit]
        )
        await self._check_retained(after, key, page[0] or None)
        if len(page) > 1:
            return [
                LogEntry(_text(page[i]), decode_event(page[i + 1])) for i in range(1, len(page), 2)
            ]
        raw: list[Any] = []
        if wait > 0:
            reply = await self._conn.blocking(
                "XREAD", "COUNT", limit, "BLOCK", max(int(wait * 1000), 1),
                "STREAMS", self._log, after or "0-0",
                block=wait,
            )  # fmt: skip
            raw = _stream_reply(reply)
            if raw and key is not None:
                with self._conn.mapped():
                    trimmed = await self._conn.client.hget(self._meta, "trimmed")
                await self._check_retained(after, key, trimmed)
        return [LogEntry(_text(pos), decode_event(_field(fields, b"e"))) for pos, fields in raw]

    async def _check_retained(
        self, after: Position | None, key: tuple[int, ...] | None, trimmed: bytes | str | None
    ) -> None:
        if after is None or key is None or trimmed is None:
            return
        if key < self.sort_key(_text(trimmed)):
            with self._conn.mapped():
                first = await self._conn.client.xrange(self._log, "-", "+", count=1)
            raise PositionExpired(after, oldest=_text(first[0][0]) if first else None)

    async def last_position(self) -> Position | None:
        """Return the newest position, or ``None`` for an empty log."""
        with self._conn.mapped():
            last = await self._conn.client.xrevrange(self._log, "+", "-", count=1)
        return _text(last[0][0]) if last else None

    # -- consumer groups --------------------------------------------------------------

    async def create_group(self, group: str, *, start: Literal["earliest", "latest"]) -> bool:
        """Create a group; see :meth:`BusBackend.create_group`."""
        check_group_name(group)  # also keeps ':' out of the group's keys and fields
        if start not in ("earliest", "latest"):
            raise ConfigurationError(f"start must be 'earliest' or 'latest', got {start!r}")
        first = "0" if start == "earliest" else "$"
        created = await self._conn.script(
            "CREATE_GROUP",
            [self._log, self._groups, self._meta],
            [group, first, repr(self.clock.time())],
        )
        self._live.add(group)
        return bool(created)

    async def receive(
        self,
        group: str,
        consumer: str,
        *,
        max_count: int,
        visibility_timeout: float,
        wait: float,
    ) -> list[Delivery]:
        """Take deliveries; see :meth:`BusBackend.receive`."""
        out, next_due, last_id = await self._take(group, consumer, max_count, visibility_timeout)
        if out or wait <= 0:
            return out
        # Nothing ready: wait for a new entry (XREAD BLOCK), the next deadline on the
        # bus clock, or a release/redrive in this process, whichever comes first.
        timeout = wait if next_due is None else min(wait, max(next_due - self.clock.time(), 0.0))
        if timeout > 0:
            wakeup = self._wakeups.setdefault(group, anyio.Event())
            failure: BackendUnavailable | BusClosed | None = None
            async with anyio.create_task_group() as tg:

                async def _timer() -> None:
                    await self.clock.sleep(timeout)
                    tg.cancel_scope.cancel()

                async def _local() -> None:
                    await wakeup.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(_timer)
                tg.start_soon(_local)
                try:
                    await self._conn.blocking(
                        "XREAD", "COUNT", 1, "BLOCK", max(int(wait * 1000), 1),
                        "STREAMS", self._log, last_id,
                        block=wait,
                    )  # fmt: skip
                except (BackendUnavailable, BusClosed) as exc:
                    failure = exc  # raised below, not wrapped in an exception group
                tg.cancel_scope.cancel()
            if failure is not None:
                raise failure
        out, _, _ = await self._take(group, consumer, max_count, visibility_timeout)
        return out

    async def _take(
        self, group: str, consumer: str, max_count: int, visibility_timeout: float
    ) -> tuple[list[Delivery], float | None, str]:
        now = self.clock.time()
        # The XAUTOCLAIM sweep runs on real time, as idle times are the server's.
        tick = time.monotonic()
        sweep = tick - self._swept.get(group, -math.inf) >= self._sweep_every
        acks = self._acks.pop(group, None)
        deadline = repr(now + visibility_timeout)
        try:
            if not sweep:
                fast = await self._take_new(group, consumer, max_count, now, deadline, acks)
                if fast is not None:
                    return fast
                acks = None  # sent by the transaction; RECEIVE takes the due redeliveries
            reply = await self._conn.script(
                "RECEIVE",
                self._receive_keys(group),
                [
                    group,
                    consumer,
                    repr(now),
                    deadline,
                    max_count,
                    self._reclaim_ms if sweep else "",
                    ",".join(acks) if acks else "",
                ],
            )
        except BaseException as exc:
            if acks:
                self._unsent(group, acks, exc)
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    # A consumer stopping: no later call may come, so send them now.
                    await self._flush_shielded(group)
            raise
        self._live.add(group)
        if sweep:
            self._swept[group] = tick
        # k redeliveries (id, json, attempt, error), then first deliveries (id, json).
        first = 3 + 4 * int(reply[2])
        out = [
            Delivery(
                (pos := reply[i].decode()),
                pos,
                decode_event(reply[i + 1]),
                int(reply[i + 2]),
                reply[i + 3].decode() or None,
            )
            for i in range(3, first, 4)
        ]
        out += [
            _first_delivery(reply[i].decode(), decode_event(reply[i + 1]))
            for i in range(first, len(reply), 2)
        ]
        next_due = float(reply[0]) if reply[0] else None
        return out, next_due, _text(reply[1]) or "0-0"

    def _commands(self, group: str, consumer: str, max_count: int) -> tuple[bytes, bytes, bytes]:
        """Return the receive transaction's commands, but the arguments that change."""
        heads = self._heads.get(group)
        if heads is None:
            keys = self._receive_keys(group)
            heads = self._heads[group] = (
                pack_head("EVALSHA", self._conn.sha("TAKE_BEFORE"), 6, *keys, group, more=2),
                pack_head("EVALSHA", self._conn.sha("TAKE_AFTER"), 3, *keys[:3], group, more=1),
            )
        read = self._reads.get(group)
        if read is None or read[0] != consumer or read[1] != max_count:
            read = self._reads[group] = (
                consumer,
                max_count,
                pack(("XREADGROUP", "GROUP", group, consumer, "COUNT", max_count,
                      "STREAMS", self._log, ">")),
            )  # fmt: skip
        return heads[0], read[2], heads[1]

    async def _take_new(
        self,
        group: str,
        consumer: str,
        max_count: int,
        now: float,
        deadline: str,
        acks: list[str] | None,
    ) -> tuple[list[Delivery], float | None, str] | None:
        """Take new entries in one transaction (see ``_scripts.TAKE_BEFORE``).

        Return ``None``, having sent ``acks`` and read nothing, when redeliveries are
        due: the caller runs RECEIVE, which serves them first.
        """
        before_head, read, after_head = self._commands(group, consumer, max_count)
        ack_list = ",".join(acks) if acks else ""
        before, got, after = await self._conn.transaction(
            before_head + pack_args(repr(now), ack_list) + read + after_head + pack_args(deadline),
            3,
        )
        conn = self._conn
        if conn.is_noscript(before) or conn.is_noscript(after):
            return await self._recover(group, deadline, ack_list, before, got)
        for reply in (before, got, after):
            if isinstance(reply, Exception):
                with conn.mapped():  # EPNOGROUP -> GroupNotFound
                    raise reply
        if before:
            return None
        self._live.add(group)
        if not got:
            return [], float(after[0]) if after[0] else None, after[1].decode()
        return _first_deliveries(got), None, ""

    async def _recover(
        self, group: str, deadline: str, acks: str, before: Any, got: Any
    ) -> tuple[list[Delivery], float | None, str] | None:
        """Finish a receive transaction whose scripts were not loaded (NOSCRIPT).

        The ``XREADGROUP`` ran regardless: RECOVER records the deadline of what it
        read, and does what the missing scripts would have (acks, the parked cursor).
        """
        self._conn.reload_scripts()
        ran = not self._conn.is_noscript(before)
        if ran and isinstance(before, Exception):
            with self._conn.mapped():  # EPNOGROUP -> GroupNotFound
                raise before
        entries = [] if isinstance(got, Exception) or not got else _stream_reply(got)
        next_due, last = await self._conn.script(
            "RECOVER",
            self._receive_keys(group),
            [
                group,
                deadline,
                "" if ran else acks,
                "1" if ran else "",
                entries[0][0] if entries else "",
                entries[-1][0] if entries else "",
                len(entries),
            ],
        )
        if isinstance(got, Exception):
            with self._conn.mapped():
                raise got
        if ran and before:
            return None  # redeliveries are due (the cursor was parked, and is back)
        self._live.add(group)
        if not entries:
            return [], float(next_due) if next_due else None, _text(last)
        return _first_deliveries(got), None, ""

    async def ack(self, group: str, receipts: Sequence[str]) -> None:
        """Acknowledge; see :meth:`BusBackend.ack`.

        Acks of a group this backend has received from are queued and ride along with
        the next call for that group (a consumer's next :meth:`receive` carries them in
        its own round trip), or are sent by :meth:`aclose`. Nothing awaits in between,
        so the façade's ``ack`` + ``receive`` is one round trip, and an ack that is
        lost (a crash in between) only means a redelivery, as at-least-once allows.
        """
        self._conn.check_open()
        # Receipts are ours, stream ids: check them all at once (one regex over the
        # joined list), and one by one only when some are not.
        joined = ",".join(receipts)
        if _ID_LIST.fullmatch(joined) and joined.count(",") == len(receipts) - 1:
            ids = list(receipts)
        else:
            ids = [r for r in receipts if _STREAM_ID.match(r)]
        if group in self._live:
            if ids:
                self._acks.setdefault(group, []).extend(ids)
            return
        # Not seen yet: ack now, which also checks that the group exists.
        await self._conn.script("ACK", self._group_keys(group)[:5], [group, ",".join(ids)])

    async def _flush(self, group: str | None = None) -> None:
        """Send the queued acks of ``group`` (of every group: ``None``) now."""
        for name in list(self._acks) if group is None else [group]:
            ids = self._acks.pop(name, None)
            if ids:
                try:
                    await self._conn.script(
                        "ACK", self._group_keys(name)[:5], [name, ",".join(ids)]
                    )
                except BaseException as exc:
                    self._unsent(name, ids, exc)
                    raise

    async def _flush_shielded(self, group: str | None = None) -> None:
        """Flush as clean-up: shielded, bounded; unsent acks only mean redeliveries."""
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(_FLUSH_TIMEOUT),
            contextlib.suppress(EventPatternsError),
        ):
            await self._flush(group)

    def _unsent(self, group: str, ids: list[str], exc: BaseException) -> None:
        """Queue acks again after the call carrying them failed (acking twice is harmless)."""
        if not isinstance(exc, GroupNotFound):  # else the group is gone, and its entries
            self._acks.setdefault(group, [])[:0] = ids

    async def release(self, group: str, receipt: str, *, delay: float, error: str) -> None:
        """Redeliver later; see :meth:`BusBackend.release`."""
        await self._flush(group)
        if not _STREAM_ID.match(receipt):
            return  # never one of ours: ignored, as the contract says (XPENDING would fail)
        due_at = self.clock.time() + max(delay, 0.0)
        await self._conn.script(
            "RELEASE", self._group_keys(group)[:4], [group, receipt, repr(due_at), error]
        )
        self._wake(group)

    async def dead_letter(self, group: str, receipt: str, *, error: str) -> DeadLetter:
        """Dead-letter a delivery; see :meth:`BusBackend.dead_letter`."""
        await self._flush(group)
        failed_at = self.clock.time()
        try:
            dead_id, data, attempts = await self._conn.script(
                "DEAD_LETTER",
                self._group_keys(group),
                [group, receipt, error, repr(failed_at)],
            )
        except self._conn.response_error as exc:
            raise LookupError(
                f"no delivery {receipt!r} is pending in group {group!r}: {exc}"
            ) from None
        return DeadLetter(
            id=_text(dead_id),
            group=group,
            position=receipt,
            event=decode_event(data),
            error=error,
            attempts=int(attempts),
            failed_at=failed_at,
        )

    async def dead_letters(self, group: str, *, limit: int) -> list[DeadLetter]:
        """List dead letters; see :meth:`BusBackend.dead_letters`."""
        await self._flush(group)
        dlq = self._group_keys(group)[5]
        with self._conn.mapped():
            if not await self._conn.client.hexists(self._groups, group):
                raise GroupNotFound(group)
            raw: Any = await self._conn.client.xrange(dlq, "-", "+", count=limit)
        return [
            DeadLetter(
                id=_text(dead_id),
                group=group,
                position=_text(f[b"p"]),
                event=decode_event(f[b"e"]),
                error=_text(f[b"r"]),
                attempts=int(f[b"a"]),
                failed_at=float(f[b"t"]),
            )
            for dead_id, f in raw
        ]

    async def _select(
        self, name: str, group: str, keys: list[str], extra: list[Any], ids: Sequence[str] | None
    ) -> int:
        unknown = ""  # an id that cannot be a stream id stands in as "0-0", never one
        if ids is None:
            args = [group, *extra, "all"]
        else:
            args = [group, *extra, "ids"]
            for dead_id in ids:
                if _STREAM_ID.match(dead_id):
                    args.append(dead_id)
                else:
                    unknown = unknown or dead_id
                    args.append("0-0")
        try:
            return int(await self._conn.script(name, keys, args))
        except self._conn.response_error as exc:
            code, _, arg = str(exc).partition(" ")
            if code == "EPNODEAD":
                raise DeadLetterNotFound(group, unknown if arg == "0-0" else arg) from None
            raise

    async def redrive(self, group: str, ids: Sequence[str] | None) -> int:
        """Redeliver dead letters; see :meth:`BusBackend.redrive`."""
        await self._flush(group)
        count = await self._select(
            "REDRIVE", group, self._group_keys(group), [repr(self.clock.time())], ids
        )
        if count:
            self._wake(group)
        return count

    async def discard_dead_letters(self, group: str, ids: Sequence[str] | None) -> int:
        """Delete dead letters; see :meth:`BusBackend.discard_dead_letters`."""
        await self._flush(group)
        dlq = self._group_keys(group)[5]
        return await self._select("DISCARD", group, [self._groups, dlq], [], ids)

    async def group_stats(self, group: str) -> GroupStats:
        """Return counters for one group, like :meth:`MemoryBusBackend.group_stats`.

        * ``pending``: deliveries not acked yet (in flight or waiting for a retry);
        * ``dead_letters``: entries in the group's dead-letter stream;
        * ``lag``: entries of the log the group has not received yet;
        * ``trimmed_unread``: entries retention trimmed before the group read them;
        * ``lost``: pending entries retention trimmed before they were acked;
        * ``reclaimed``: pending entries the ``XAUTOCLAIM`` safety net took over.

        Nonzero ``trimmed_unread`` or ``lost`` mean ``max_entries`` is too small for
        how far the group falls behind.

        Raises:
            GroupNotFound: The group does not exist.
        """
        await self._flush(group)
        log, groups, _, _, held, dlq = self._group_keys(group)
        (
            base,
            read,
            skipped,
            lost,
            reclaimed,
            added,
            dead,
            redriven,
            pending,
        ) = await self._conn.script("STATS", [log, groups, held, dlq, self._meta], [group])
        return GroupStats(
            pending=int(pending) + int(redriven),
            dead_letters=int(dead),
            lag=max(int(added) - int(base) - int(read), 0),
            trimmed_unread=int(skipped),
            lost=int(lost),
            reclaimed=int(reclaimed),
        )

    async def aclose(self) -> None:
        """Send queued acks, then close connections: later calls raise ``BusClosed``.

        Idempotent.
        """
        for group in list(self._wakeups):
            self._wake(group)
        if self._acks and not self._conn.closed:
            await self._flush_shielded()
        self._acks.clear()
        await self._conn.aclose()


_set_receipt, _set_position, _set_event, _set_attempt, _set_error = (
    vars(Delivery)[name].__set__
    for name in ("receipt", "position", "event", "attempt", "last_error")
)


def _first_delivery(position: str, event: Event) -> Delivery:
    """Return ``Delivery(position, position, event, 1)``, built at half the cost.

    The frozen dataclass's ``__init__`` sets each slot through ``object.__setattr__``;
    its slot descriptors do the same for less, and a consumer builds one per event.
    """
    delivery: Delivery = object.__new__(Delivery)
    _set_receipt(delivery, position)
    _set_position(delivery, position)
    _set_event(delivery, event)
    _set_attempt(delivery, 1)
    _set_error(delivery, None)
    return delivery


def _first_deliveries(reply: Any) -> list[Delivery]:
    """Return the deliveries of a raw ``XREADGROUP`` reply (first deliveries: attempt 1)."""
    # APPEND writes the fields as i <id> e <json>; look further only if they are not.
    return [
        _first_delivery(
            pos.decode(),
            decode_event(fields[3] if fields[2] == b"e" else _field(fields, b"e")),
        )
        for pos, fields in _stream_reply(reply)
    ]


def _stream_reply(reply: Any) -> list[Any]:
    """Return the entries of a raw one-stream ``XREAD`` reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values())))
    return list(reply[0][1])


def _field(fields: Any, name: bytes) -> Any:
    """Return one field of a stream entry, parsed (dict) or raw (flat list)."""
    if isinstance(fields, dict):
        return fields[name]
    for i in range(0, len(fields), 2):
        if fields[i] == name:
            return fields[i + 1]
    raise KeyError(name)
