"""The Redis bus backend: a Redis Stream as the log, consumer groups for durable delivery.

The program in one paragraph: :class:`RedisBusBackend` turns each contract call into
one Lua script (``lua/*.lua``, loaded by :mod:`._scripts`) on keys named by
:mod:`._keys`; :mod:`._receive` runs the receive transaction and queues acks;
:mod:`._connection` owns the clients and maps every error reply to our errors in one
table; :mod:`._url` checks URLs and options; :mod:`._positions` reads and writes
``"<epoch>:<stream id>"`` positions. Blocking reads (``XREAD BLOCK``) run on
connections of their own, dropped, never reused, when a read is cancelled mid-command.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from ...bus import (
    Capabilities,
    DeadLetter,
    Delivery,
    GroupStats,
    LogEntry,
    Position,
    check_group_name,
)
from ...core import Clock, Event, SystemClock
from ...errors import ConfigurationError, EventTooLarge, PositionExpired, StalePosition
from ._codec import Decoded, RawEntry, decode_event
from ._connection import RedisConnection
from ._keys import BusKeys
from ._positions import Positions, id_key, new_epoch
from ._receive import Acks, Receiver, field, stream_entries
from ._url import split_url

__all__ = ["RedisBusBackend"]

_STREAM_ID = r"(?:0|[1-9][0-9]{0,19})-(?:0|[1-9][0-9]{0,19})"
_ID_LIST = re.compile(f"{_STREAM_ID}(?:,{_STREAM_ID})*")  # stream ids joined by commas
_IS_ID = re.compile(_STREAM_ID)


class RedisBusBackend:
    """The bus on Redis Streams: one box to a cluster, many processes, durable groups.

    The log is one stream per bus; a consumer group of the bus is a Redis consumer
    group on it, with visibility deadlines, retry delays and attempt counts kept next
    to it, and a dead-letter stream. All keys share one hash tag, so the bus works on
    Redis Cluster (it lives in one slot). Positions are ``"<epoch>:<stream id>"``.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` or
            ``unix:///path/to/socket``, with redis-py connection options in the query
            (``?socket_timeout=5``); see ``docs/backends.md`` for the list.
        prefix: Key namespace; keys are ``{prefix}:...``. Buses with the same prefix
            on the same database are the same bus.
        max_entries: The stream keeps at most this many entries.
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
        **redis_options: redis-py client options (``password``, ``ssl_ca_certs``,
            ``retry``...); they reach every connection the backend opens.

    Raises:
        MissingDependency: redis-py is not installed.
        ConfigurationError: A bad URL or option.

    Example:
        ```python
        import anyio
        from eventpatterns import Event, EventBus

        async def main() -> None:
            url = "redis://127.0.0.1:6379/0?prefix=docs-example&max_entries=1000"
            async with EventBus.from_url(url) as bus:
                position = await bus.publish(Event(type="hello", source="/docs"))
                print(position == await bus.backend.last_position())

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
        if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
            raise ConfigurationError(f"prefix must be non-empty without braces, got {prefix!r}")
        self.clock: Clock = clock or SystemClock()
        self.capabilities = Capabilities(
            ordering="total",
            history=True,
            max_message_size=max_message_size,
            dedupe_window=dedupe_window,
            unique_appends=True,
        )
        self.prefix = prefix
        # Our own settings, kept apart from the capabilities we declare to the façade.
        self._max_entries = max_entries
        self._max_message_size = max_message_size
        self._dedupe_window = dedupe_window
        self._keys = BusKeys.of(prefix)
        self._conn = RedisConnection(
            url, cluster=cluster, route_key=self._keys.log, redis_options=redis_options
        )
        self._positions = Positions()
        #: The newest position a read (or last_position) returned: a read after it
        #: takes the one-round-trip way (see _read_on).
        self._tail: Position | None = None
        self._acks = Acks(self._conn, self._keys)
        # Entries both the reader and a consumer group of this process read are
        # decoded once (a job worker's cancel watch and its dispatch group do).
        self._decoded = Decoded()
        self._receiver = Receiver(
            self._conn, self._keys, self._positions, self._acks, self.clock,
            reclaim_after=reclaim_after, decoded=self._decoded,
        )  # fmt: skip

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisBusBackend:
        """Build from ``redis://host:port/db?prefix=myapp&max_entries=100000``.

        The options ``prefix``, ``max_entries``, ``dedupe_window``,
        ``max_message_size``, ``reclaim_after`` and ``cluster`` are read from the
        query string, with the redis-py connection options listed in
        ``docs/backends.md``; keyword ``options`` (any redis-py client option, such
        as ``password``) win over the URL and reach every connection.

        Raises:
            ConfigurationError: Not a Redis URL, or a malformed or unknown option;
                the message names it.
            MissingDependency: redis-py is not installed.
        """
        return cls(split_url(url, options), **options)

    @property
    def server(self) -> tuple[Any, ...] | None:
        """What names the server and database of the bus (``None`` on a cluster).

        Equal for two Redis stores built from URLs naming the same server and database
        alike: the job store's outbox is on by default when it is (see
        :meth:`RedisJobStore.outbox_for`).
        """
        return None if self._conn.cluster else self._conn.server

    # -- the log --------------------------------------------------------------------------

    async def append(self, events: Sequence[Event], *, dedupe: bool = True) -> list[Position]:
        """Append events in one round trip; see :meth:`BusBackend.append`.

        ``dedupe=False``: the ids are new (the caller guarantees it), so no dedupe
        record is read or written (``GET`` + ``SET`` per event fewer).
        """
        self._conn.check_open()
        if not events:
            return []
        keys, args = self.append_request(events, dedupe=dedupe)
        return self.appended(await self._conn.script("APPEND", keys, args))

    def append_request(
        self, events: Sequence[Event], *, dedupe: bool = True
    ) -> tuple[list[str], list[Any]]:
        """Return the ``KEYS`` and ``ARGV`` of ``lua/append.lua`` appending ``events``.

        For a script of another part that appends in the same step (the job store's
        outbox); :meth:`appended` reads its reply.

        Args:
            events: What to append.
            dedupe: Skip the ids seen within the dedupe window (``False``: the caller
                guarantees an id is appended once, as the job store's compare-and-swap
                does for ``<job id>.<version>``; nothing is checked or recorded).

        Raises:
            EventTooLarge: An event is over ``max_message_size``.
        """
        limit = self._max_message_size
        keys = [self._keys.log, self._keys.meta]
        window = self._dedupe_window if dedupe else 0.0
        args: list[Any] = [
            repr(self.clock.time()),
            repr(window),
            self._max_entries,
            int(window * 1000) + 1000,
            new_epoch(),
        ]
        dedupe_key = self._keys.dedupe
        for event in events:
            data = event.to_json()
            if limit is not None and len(data) > limit:
                raise EventTooLarge(event.id, size=len(data), limit=limit)
            keys.append(dedupe_key(event.id))
            args.append(event.id)
            args.append(data)
        return keys, args

    def appended(self, reply: Sequence[bytes]) -> list[Position]:
        """Return the positions in ``lua/append.lua``'s reply (noting the log's epoch)."""
        prefix = self._positions.seen(reply[0])
        return [prefix + p.decode() for p in reply[1:]]

    def sort_key(self, position: Position) -> tuple[int, ...]:
        """Order positions of the current epoch: ``(milliseconds, sequence)`` of the id.

        Raises:
            InvalidPosition: Not a position of a Redis bus.
            StalePosition: The position's epoch is not the one this backend saw last
                (``read`` checks against the server's, and also rejects positions
                beyond the end of the log).
        """
        return self._positions.sort_key(position)

    async def read(
        self, after: Position | None, *, limit: int, wait: float = 0.0
    ) -> list[LogEntry]:
        """Read entries after ``after``; see :meth:`BusBackend.read`.

        ``after=None`` starts at the oldest entry retained when the call starts, as
        in memory: should retention trim entries after that while the call waits, it
        raises ``PositionExpired`` rather than skip them.
        """
        epoch, stream_id = ("", "") if after is None else self._positions.split(after)
        self._conn.check_open()
        k = self._keys
        if wait > 0 and after is not None and after == self._tail:
            return await self._read_on(after, epoch, stream_id, limit=limit, wait=wait)
        page = await self._conn.script(
            "READ", [k.log, k.meta], [new_epoch(), epoch, stream_id, limit], position=after or ""
        )
        prefix = self._positions.seen(page[0])
        if len(page) > 2:
            decoded = self._decoded
            entries: list[LogEntry] = [
                RawEntry(prefix + page[i].decode(), page[i + 1], decoded)
                for i in range(2, len(page), 2)
            ]
            self._tail = entries[-1].position
            return entries
        if wait <= 0:
            return []
        # Nothing yet: block from the position, or for after=None from the newest entry
        # trimmed so far (none: the very start), so that a trim during the wait shows.
        since = stream_id or page[1].decode() or "0-0"
        reply = await self._conn.blocking(
            "XREAD", "COUNT", limit, "BLOCK", max(int(wait * 1000), 1),
            "STREAMS", k.log, since,
            block=wait,
        )  # fmt: skip
        raw = stream_entries(reply)
        if not raw:
            return []
        with self._conn.mapped():
            meta: list[Any] = await self._conn.client.hmget(k.meta, ["trimmed", "epoch"])
        trimmed, epoch_now = meta
        if epoch_now != page[0]:  # the keys were deleted meanwhile: another log
            now = epoch_now.decode() if epoch_now else ""
            if after is not None:
                raise StalePosition(after, epoch=now)
            raise PositionExpired(f"{prefix}{since}", oldest=None)
        if trimmed and id_key(trimmed) > id_key(since):
            with self._conn.mapped():
                first: Any = await self._conn.client.xrange(k.log, "-", "+", count=1)
            oldest = prefix + first[0][0].decode() if first else None
            raise PositionExpired(after or f"{prefix}{since}", oldest=oldest)
        entries = self._raw_entries(prefix, raw)
        self._tail = entries[-1].position
        return entries

    async def _read_on(
        self, after: Position, epoch: str, stream_id: str, *, limit: int, wait: float
    ) -> list[LogEntry]:
        """Read on from the newest position this backend returned: one round trip.

        That position was checked when it was read (its epoch, that it is in the log),
        so ``READ``'s checks come down to what may have changed since: the log's epoch
        (its keys deleted: another log) and its trimming, read by an ``HMGET`` the
        server runs right after the ``XREAD`` (which returns at once when entries wait).
        """
        k = self._keys
        reply, (trimmed, epoch_now) = await self._conn.blocking_then(
            ("XREAD", "COUNT", limit, "BLOCK", max(int(wait * 1000), 1), "STREAMS", k.log,
             stream_id),
            ("HMGET", k.meta, "trimmed", "epoch"),
            block=wait,
        )  # fmt: skip
        if epoch_now is None or epoch_now.decode() != epoch:
            self._tail = None
            raise StalePosition(after, epoch=epoch_now.decode() if epoch_now else "")
        if trimmed and id_key(trimmed) > id_key(stream_id):
            self._tail = None
            with self._conn.mapped():
                first: Any = await self._conn.client.xrange(k.log, "-", "+", count=1)
            oldest = f"{epoch}:{first[0][0].decode()}" if first else None
            raise PositionExpired(after, oldest=oldest)
        raw = stream_entries(reply)
        if not raw:
            return []
        prefix = self._positions.seen(epoch_now)
        entries = self._raw_entries(prefix, raw)
        self._tail = entries[-1].position
        return entries

    def _raw_entries(self, prefix: str, raw: list[Any]) -> list[LogEntry]:
        """Return the entries of an ``XREAD`` reply, each decoded when first read.

        The bus's reader skips those nobody wants unread.
        """
        decoded = self._decoded
        return [RawEntry(prefix + pos.decode(), field(f, b"e"), decoded) for pos, f in raw]

    async def last_position(self) -> Position | None:
        """Return the newest position, or ``None`` for an empty log."""
        k = self._keys
        epoch, last = await self._conn.script("LAST", [k.log, k.meta], [new_epoch()])
        prefix = self._positions.seen(epoch)
        if not last:
            return None
        self._tail = prefix + last.decode()  # a position in the log: reads may go on from it
        return self._tail

    # -- consumer groups --------------------------------------------------------------

    async def create_group(self, group: str, *, start: Literal["earliest", "latest"]) -> bool:
        """Create a group; see :meth:`BusBackend.create_group`."""
        check_group_name(group)  # also keeps ':' out of the group's keys and fields
        if start not in ("earliest", "latest"):
            raise ConfigurationError(f"start must be 'earliest' or 'latest', got {start!r}")
        k = self._keys
        created, epoch = await self._conn.script(
            "CREATE_GROUP",
            [k.log, k.groups, k.meta],
            [group, "0" if start == "earliest" else "$", repr(self.clock.time()), new_epoch()],
        )
        self._positions.seen(epoch)
        self._acks.live.add(group)
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
        """Take deliveries; see :meth:`BusBackend.receive` and :mod:`._receive`."""
        return await self._receiver.receive(
            group, consumer, max_count=max_count, visibility_timeout=visibility_timeout, wait=wait
        )

    def screen_types(self, group: str, types: Sequence[str]) -> None:
        """Hand ``group``'s consumers in this process only new entries of one of ``types``.

        For a group whose consumers' pattern asks for those types anyway (the job
        workers' dispatch groups): the others are acknowledged as they are read,
        found by their bytes (``"type":"<type>"`` as ``Event.to_json()`` writes it)
        without being decoded, and counted as filtered out. Redeliveries are not
        screened (the consumer filters them, as always).
        """
        self._receiver.screen(group, types)

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
            ids = [r for r in receipts if _IS_ID.fullmatch(r)]
        if group in self._acks.live:
            self._acks.queue(group, ids)
            return
        await self._acks.send(group, ids)  # not seen yet: now, which checks the group

    async def release(self, group: str, receipt: str, *, delay: float, error: str) -> None:
        """Redeliver later; see :meth:`BusBackend.release`."""
        await self._acks.flush(group)
        if not _IS_ID.fullmatch(receipt):
            return  # never one of ours: ignored, as the contract says (XPENDING would fail)
        k = self._keys.group(group)
        due_at = self.clock.time() + max(delay, 0.0)
        await self._conn.script(
            "RELEASE",
            [k.log, k.groups, k.due, k.att],
            [group, receipt, repr(due_at), error],
            group=group,
        )
        self._receiver.wake(group)

    async def dead_letter(self, group: str, receipt: str, *, error: str) -> DeadLetter:
        """Dead-letter a delivery; see :meth:`BusBackend.dead_letter`.

        Raises:
            GroupNotFound: The group does not exist.
            LookupError: ``receipt`` is not pending, or retention trimmed its entry
                (which is counted in ``group_stats(group).lost``).
        """
        await self._acks.flush(group)
        if not _IS_ID.fullmatch(receipt):
            raise LookupError(f"no delivery {receipt!r} is pending in group {group!r}")
        failed_at = self.clock.time()
        k = self._keys.group(group)
        dead_id, data, attempts, epoch = await self._conn.script(
            "DEAD_LETTER",
            [k.log, k.groups, k.due, k.att, k.held, k.dlq, k.meta],
            [group, receipt, error, repr(failed_at)],
            group=group,
        )
        return DeadLetter(
            id=dead_id.decode(),
            group=group,
            position=await self._receiver.prefix(epoch) + receipt,
            event=decode_event(data),
            error=error,
            attempts=int(attempts),
            failed_at=failed_at,
        )

    async def dead_letters(self, group: str, *, limit: int) -> list[DeadLetter]:
        """List dead letters; see :meth:`BusBackend.dead_letters`."""
        await self._acks.flush(group)
        k = self._keys.group(group)
        epoch, raw = await self._conn.script(
            "DEAD_LETTERS", [k.groups, k.dlq, k.meta], [group, limit], group=group
        )
        prefix = await self._receiver.prefix(epoch)
        return [
            DeadLetter(
                id=dead_id.decode(),
                group=group,
                position=prefix + field(f, b"p").decode(),
                event=decode_event(field(f, b"e")),
                error=field(f, b"r").decode(),
                attempts=int(field(f, b"a")),
                failed_at=float(field(f, b"t")),
            )
            for dead_id, f in raw
        ]

    async def redrive(self, group: str, ids: Sequence[str] | None) -> int:
        """Redeliver dead letters; see :meth:`BusBackend.redrive`."""
        await self._acks.flush(group)
        k = self._keys.group(group)
        chosen = ["all"] if ids is None else ["ids", *ids]
        count = int(
            await self._conn.script(
                "REDRIVE",
                [k.log, k.groups, k.due, k.att, k.held, k.dlq],
                [group, repr(self.clock.time()), *chosen],
                group=group,
            )
        )
        if count:
            self._receiver.wake(group)
        return count

    async def discard_dead_letters(self, group: str, ids: Sequence[str] | None) -> int:
        """Delete dead letters; see :meth:`BusBackend.discard_dead_letters`."""
        await self._acks.flush(group)
        k = self._keys.group(group)
        chosen = ["all"] if ids is None else ["ids", *ids]
        return int(
            await self._conn.script(
                "DISCARD_DEAD_LETTERS", [k.groups, k.dlq], [group, *chosen], group=group
            )
        )

    async def group_stats(self, group: str) -> GroupStats:
        """Return the counters of one group; see :class:`~eventpatterns.bus.GroupStats`.

        ``reclaimed`` counts pending entries the ``XAUTOCLAIM`` safety net took over.

        Raises:
            GroupNotFound: The group does not exist.
        """
        await self._acks.flush(group)
        k = self._keys.group(group)
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
        ) = await self._conn.script(
            "STATS", [k.log, k.groups, k.held, k.dlq, k.meta], [group], group=group
        )
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
        self._receiver.wake()
        if self._acks and not self._conn.closed:
            await self._acks.flush_shielded()
        self._acks.clear()
        await self._conn.aclose()
