"""The receive side of a group: the receive transaction, its recovery, queued acks.

A receive is, on the fast path, one ``MULTI``/``EXEC`` round trip: ``take_before.lua``
(queued acks, "is a redelivery due?"), a plain ``XREADGROUP`` (Redis writes its reply
itself: about a third of the server time of reading the same entries inside Lua), then
``take_after.lua`` (one deadline for the whole batch). When redeliveries are due, the
first script parks the group's cursor so that the ``XREADGROUP`` reads nothing, and a
second round trip runs ``receive.lua``, which serves them first. Both transaction
scripts are sent with ``EVALSHA``; one failing with ``NOSCRIPT`` does not stop the
``XREADGROUP`` queued after it, so ``recover.lua`` then does what the missing script
would have done for the entries that were read.

Acks of a group this backend has received from are queued (:class:`Acks`) and ride
along with the group's next call, saving a round trip per batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from typing import Any

import anyio

from ...bus import Delivery
from ...bus._matching import type_probe
from ...core import Clock, Event
from ...errors import BackendUnavailable, BusClosed, EventPatternsError, GroupNotFound
from ...observability._metrics import metrics
from ._codec import Decoded, decode_event
from ._connection import RedisConnection, pack, pack_args, pack_head
from ._keys import BusKeys
from ._positions import Positions, new_epoch

__all__ = ["Acks", "Receiver", "stream_entries"]

_FLUSH_TIMEOUT = 2.0  # seconds a consumer being cancelled may spend sending its queued acks


class Acks:
    """Acks queued per group, sent with the group's next call (or by :meth:`flush`)."""

    def __init__(self, conn: RedisConnection, keys: BusKeys) -> None:
        self._conn = conn
        self._keys = keys
        self.live: set[str] = set()  # groups known to exist: their acks may be queued
        self._queued: dict[str, list[str]] = {}

    def queue(self, group: str, ids: list[str]) -> None:
        """Queue acks for a group in :attr:`live`."""
        if ids:
            self._queued.setdefault(group, []).extend(ids)

    def take(self, group: str) -> list[str] | None:
        """Remove and return the acks queued for ``group`` (the caller sends them)."""
        return self._queued.pop(group, None)

    def unsent(self, group: str, ids: list[str], exc: BaseException) -> None:
        """Queue acks again after the call carrying them failed (acking twice is harmless)."""
        if not isinstance(exc, GroupNotFound):  # else the group is gone, and its entries
            self._queued.setdefault(group, [])[:0] = ids

    def __bool__(self) -> bool:
        return bool(self._queued)

    def clear(self) -> None:
        """Forget what is queued (after the backend closed)."""
        self._queued.clear()

    async def send(self, group: str, ids: Sequence[str]) -> None:
        """Ack ``ids`` now (``ack.lua``), which also checks that the group exists."""
        k = self._keys.group(group)
        await self._conn.script(
            "ACK", [k.log, k.groups, k.due, k.att, k.held], [group, ",".join(ids)], group=group
        )

    async def flush(self, group: str | None = None) -> None:
        """Send the queued acks of ``group`` (of every group: ``None``) now."""
        for name in list(self._queued) if group is None else [group]:
            ids = self._queued.pop(name, None)
            if ids:
                try:
                    await self.send(name, ids)
                except BaseException as exc:
                    self.unsent(name, ids, exc)
                    raise

    async def flush_shielded(self, group: str | None = None) -> None:
        """Flush as clean-up: shielded, bounded; unsent acks only mean redeliveries."""
        with (
            anyio.CancelScope(shield=True),
            anyio.move_on_after(_FLUSH_TIMEOUT),
            contextlib.suppress(EventPatternsError),
        ):
            await self.flush(group)


_Taken = tuple[list[Delivery], "float | None", str]  # deliveries, next due time, last id
#: The "last id" of a take whose entries were all screened out: take again at once.
_SCREENED = "screened"
_FILTERED = metrics.counter("eventpatterns_bus_dropped_total", reason="filtered_out")


class Receiver:
    """Takes deliveries for the groups of one backend, and waits when there are none."""

    def __init__(
        self,
        conn: RedisConnection,
        keys: BusKeys,
        positions: Positions,
        acks: Acks,
        clock: Clock,
        *,
        reclaim_after: float,
        decoded: Decoded | None = None,
    ) -> None:
        self._decoded = decoded if decoded is not None else Decoded()
        self._conn = conn
        self._keys = keys
        self._positions = positions
        self._acks = acks
        self._clock = clock
        self._reclaim_ms = max(int(reclaim_after * 1000), 1)
        self._sweep_every = min(reclaim_after, 60.0)
        self._swept: dict[str, float] = {}  # group -> time.monotonic() of its last sweep
        self._wakeups: dict[str, anyio.Event] = {}
        self._group_keys: dict[str, list[str]] = {}
        # group -> the fixed parts of its receive transaction, encoded once (RESP)
        self._heads: dict[str, tuple[bytes, bytes]] = {}
        self._reads: dict[str, tuple[str, int, bytes]] = {}  # group -> its last XREADGROUP
        self._screens: dict[str, tuple[bytes, ...]] = {}  # group -> its types' probes

    def screen(self, group: str, types: Sequence[str]) -> None:
        """Deliver to ``group`` only new entries of one of ``types`` (see ``screen_types``)."""
        self._screens[group] = tuple(type_probe(t) for t in types)

    def wake(self, group: str | None = None) -> None:
        """Wake receives of ``group`` (of every group: ``None``) waiting in this process."""
        for name in list(self._wakeups) if group is None else [group]:
            event = self._wakeups.pop(name, None)
            if event is not None:
                event.set()

    async def receive(
        self, group: str, consumer: str, *, max_count: int, visibility_timeout: float, wait: float
    ) -> list[Delivery]:
        """Take deliveries; see :meth:`BusBackend.receive`."""
        out, next_due, last_id = await self._take(group, consumer, max_count, visibility_timeout)
        while not out and last_id == _SCREENED:  # read on past what the screen dropped
            out, next_due, last_id = await self._take(
                group, consumer, max_count, visibility_timeout
            )
        if out or wait <= 0:
            return out
        # Nothing ready: wait for a new entry (XREAD BLOCK), the next deadline on the
        # bus clock, or a release/redrive in this process, whichever comes first.
        now = self._clock.time()
        timeout = wait if next_due is None else min(wait, max(next_due - now, 0.0))
        if timeout > 0:
            await self._wait(group, last_id, timeout, wait)
        out, _, _ = await self._take(group, consumer, max_count, visibility_timeout)
        return out

    async def _wait(self, group: str, last_id: str, until: float, wait: float) -> None:
        """Wait up to ``until`` seconds (bus clock) for an entry after ``last_id`` or a wakeup."""
        wakeup = self._wakeups.setdefault(group, anyio.Event())
        failure: BackendUnavailable | BusClosed | None = None
        async with anyio.create_task_group() as tg:

            async def _timer() -> None:
                await self._clock.sleep(until)
                tg.cancel_scope.cancel()

            async def _local() -> None:
                await wakeup.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(_timer)
            tg.start_soon(_local)
            try:
                await self._conn.blocking(
                    "XREAD", "COUNT", 1, "BLOCK", max(int(wait * 1000), 1),
                    "STREAMS", self._keys.log, last_id,
                    block=wait,
                )  # fmt: skip
            except (BackendUnavailable, BusClosed) as exc:
                failure = exc  # raised below, not wrapped in an exception group
            tg.cancel_scope.cancel()
        if failure is not None:
            raise failure

    def _keys_of(self, group: str) -> list[str]:
        keys = self._group_keys.get(group)
        if keys is None:
            k = self._keys.group(group)
            keys = self._group_keys[group] = [k.log, k.groups, k.due, k.att, k.held, k.meta]
        return keys

    async def _take(
        self, group: str, consumer: str, max_count: int, visibility_timeout: float
    ) -> _Taken:
        now = self._clock.time()
        # The XAUTOCLAIM sweep runs on real time, as idle times are the server's.
        tick = time.monotonic()
        sweep = tick - self._swept.get(group, -math.inf) >= self._sweep_every
        acks = self._acks.take(group)
        deadline = repr(now + visibility_timeout)
        try:
            if not sweep:
                fast = await self._take_new(group, consumer, max_count, now, deadline, acks)
                if fast is not None:
                    return fast
                acks = None  # sent by the transaction; receive.lua takes the redeliveries
            reply = await self._conn.script(
                "RECEIVE",
                self._keys_of(group),
                [
                    group, consumer, repr(now), deadline, max_count,
                    self._reclaim_ms if sweep else "", ",".join(acks) if acks else "",
                ],
                group=group,
            )  # fmt: skip
        except BaseException as exc:
            if acks:
                self._acks.unsent(group, acks, exc)
                if isinstance(exc, anyio.get_cancelled_exc_class()):
                    # A consumer stopping: no later call may come, so send them now.
                    await self._acks.flush_shielded(group)
            raise
        self._acks.live.add(group)
        if sweep:
            self._swept[group] = tick
        prefix = await self.prefix(reply[3])
        # k redeliveries (id, json, attempt, error), then first deliveries (id, json).
        first = 4 + 4 * int(reply[2])
        out = [
            Delivery(
                (receipt := reply[i].decode()),
                prefix + receipt,
                decode_event(reply[i + 1]),
                int(reply[i + 2]),
                reply[i + 3].decode() or None,
            )
            for i in range(4, first, 4)
        ]
        indexes: Sequence[int] = range(first, len(reply), 2)
        screen = self._screens.get(group)
        if screen is not None and len(reply) > first:
            wanted = [i for i in indexes if any(probe in reply[i + 1] for probe in screen)]
            kept = set(wanted)
            self._skip(group, [reply[i].decode() for i in indexes if i not in kept])
            if not out and not wanted:
                return [], None, _SCREENED
            indexes = wanted
        out += [
            _first_delivery(
                (receipt := reply[i].decode()), prefix + receipt, decode_event(reply[i + 1])
            )
            for i in indexes
        ]
        next_due = float(reply[0]) if reply[0] else None
        return out, next_due, _text(reply[1]) or "0-0"

    def _skip(self, group: str, receipts: list[str]) -> None:
        """Ack screened-out first deliveries with the group's next call; count them."""
        if receipts:
            self._acks.queue(group, receipts)
            _FILTERED.inc(len(receipts))

    async def prefix(self, epoch: bytes) -> str:
        """Return the position prefix for a script's epoch (set one if the log has none)."""
        if not epoch:  # the meta hash was deleted under live groups: the log starts over
            k = self._keys
            epoch = (await self._conn.script("LAST", [k.log, k.meta], [new_epoch()]))[0]
        return self._positions.seen(epoch)

    def _commands(self, group: str, consumer: str, max_count: int) -> tuple[bytes, bytes, bytes]:
        """Return the receive transaction's commands, but the arguments that change."""
        heads = self._heads.get(group)
        if heads is None:
            keys = self._keys_of(group)
            conn = self._conn
            heads = self._heads[group] = (
                pack_head("EVALSHA", conn.sha("TAKE_BEFORE"), 6, *keys, group, more=2),
                pack_head("EVALSHA", conn.sha("TAKE_AFTER"), 3, *keys[:3], group, more=1),
            )
        read = self._reads.get(group)
        if read is None or read[0] != consumer or read[1] != max_count:
            read = self._reads[group] = (
                consumer,
                max_count,
                pack(("XREADGROUP", "GROUP", group, consumer, "COUNT", max_count,
                      "STREAMS", self._keys.log, ">")),
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
    ) -> _Taken | None:
        """Take new entries in one transaction (see the module's docstring).

        Return ``None``, having sent ``acks`` and read nothing, when redeliveries are
        due: the caller runs ``receive.lua``, which serves them first.
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
                with conn.mapped(group=group):  # EPNOGROUP -> GroupNotFound
                    raise reply
        if before == 1:
            return None
        self._acks.live.add(group)
        if not got:
            return [], float(after[0]) if after[0] else None, after[1].decode()
        prefix = await self.prefix(before)
        screen = self._screens.get(group)
        if screen is None:
            return _first_deliveries(got, prefix, self._decoded), None, ""
        # Entries of other types are acked unread: the group's consumers would only
        # filter them out (what a consumer filters out is acked, and counted, too).
        wanted = []
        skipped = []
        for entry in stream_entries(got):
            fields = entry[1]
            raw = fields[3] if fields[2] == b"e" else field(fields, b"e")
            if any(probe in raw for probe in screen):
                wanted.append(entry)
            else:
                skipped.append(entry[0].decode())
        self._skip(group, skipped)
        if not wanted:
            return [], None, _SCREENED
        return _deliveries_of(wanted, prefix, self._decoded), None, ""

    async def _recover(
        self, group: str, deadline: str, acks: str, before: Any, got: Any
    ) -> _Taken | None:
        """Finish a receive transaction whose scripts were not loaded (NOSCRIPT).

        The ``XREADGROUP`` ran regardless: ``recover.lua`` records the deadline of what
        it read, and does what the missing scripts would have (acks, the parked cursor).
        """
        conn = self._conn
        conn.reload_scripts()
        ran = not conn.is_noscript(before)
        if ran and isinstance(before, Exception):
            with conn.mapped(group=group):  # EPNOGROUP -> GroupNotFound
                raise before
        entries = [] if isinstance(got, Exception) or not got else stream_entries(got)
        next_due, last, epoch = await conn.script(
            "RECOVER",
            self._keys_of(group),
            [
                group, deadline, "" if ran else acks, "1" if ran else "",
                entries[0][0] if entries else "", entries[-1][0] if entries else "", len(entries),
            ],
            group=group,
        )  # fmt: skip
        if isinstance(got, Exception):
            with conn.mapped(group=group):
                raise got
        if ran and before == 1:
            return None  # redeliveries are due (the cursor was parked, and is back)
        self._acks.live.add(group)
        if not entries:
            return [], float(next_due) if next_due else None, _text(last)
        return _first_deliveries(got, await self.prefix(epoch), self._decoded), None, ""


def _text(value: bytes | str | Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


_set_receipt, _set_position, _set_event, _set_attempt, _set_error = (
    vars(Delivery)[name].__set__
    for name in ("receipt", "position", "event", "attempt", "last_error")
)


def _first_delivery(receipt: str, position: str, event: Event) -> Delivery:
    """Return ``Delivery(receipt, position, event, 1)``, built at half the cost.

    The frozen dataclass's ``__init__`` sets each slot through ``object.__setattr__``;
    its slot descriptors do the same for less, and a consumer builds one per event.
    """
    delivery: Delivery = object.__new__(Delivery)
    _set_receipt(delivery, receipt)
    _set_position(delivery, position)
    _set_event(delivery, event)
    _set_attempt(delivery, 1)
    _set_error(delivery, None)
    return delivery


def _first_deliveries(reply: Any, prefix: str, decoded: Decoded) -> list[Delivery]:
    """Return the deliveries of a raw ``XREADGROUP`` reply (first deliveries: attempt 1)."""
    return _deliveries_of(stream_entries(reply), prefix, decoded)


def _deliveries_of(entries: list[Any], prefix: str, decoded: Decoded) -> list[Delivery]:
    # append.lua writes the fields as i <id> e <json>; look further only if they are not.
    event = decoded.event
    return [
        _first_delivery(
            (receipt := pos.decode()),
            (position := prefix + receipt),
            event(position, fields[3] if fields[2] == b"e" else field(fields, b"e")),
        )
        for pos, fields in entries
    ]


def stream_entries(reply: Any) -> list[Any]:
    """Return the entries of a raw one-stream ``XREAD`` reply (RESP2 list or RESP3 map)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return list(next(iter(reply.values())))
    return list(reply[0][1])


def field(fields: Any, name: bytes) -> Any:
    """Return one field of a stream entry, parsed (dict) or raw (flat list)."""
    if isinstance(fields, dict):
        return fields[name]
    for i in range(0, len(fields), 2):
        if fields[i] == name:
            return fields[i + 1]
    raise KeyError(name)
