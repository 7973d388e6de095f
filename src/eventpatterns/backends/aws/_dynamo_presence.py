"""Presence on DynamoDB: one item per channel, conditional writes, events polled from it.

Items (the table's key is ``pk``; every key starts with the presence's ``prefix``):

==============================  ====================================================
``pk = <p>#ch#<channel>``       ``v`` version, ``m`` memberships (JSON: member ->
                                connection -> [info, deadline]), ``q`` the channel's
                                last event number, ``e`` its latest events (JSON),
                                ``dk``/``nd`` the ``due`` index key (the earliest
                                deadline, while anyone is present), ``x`` TTL
``pk = <p>#conn#<connection>``  ``cs`` the channels the connection joined (a set)
==============================  ====================================================

Every change of a channel reads its item (strongly consistent), expires what is due,
applies the change and puts the item back conditioned on the version it read; a
writer that lost the race reads again. So each change, and the event it emits, is
applied exactly once however many processes share the table, and the channel's event
numbers follow the order the changes were applied. DynamoDB has no pub/sub:
listeners poll their channel's item every ``poll_interval`` seconds and deliver the
events numbered after the last they saw (an item keeps its latest 100 events, at most
64 KB; a listener further behind gets ``EventsMissed`` and goes on). The sweeper
(inside ``async with``) queries the sparse ``due`` index for the channels whose
earliest deadline passed.

Costs: a join or leave is 2 reads and 1 write of the channel item (plus 1 write of
the connection's item on join), more when writers race; a heartbeat reads the
connection's item and rewrites each of its channels; a listener reads its channel's
item ``1 / poll_interval`` times a second, eventually consistent (half a read unit
per 4 KB of item). A channel's state is bounded by DynamoDB's 400 KB item size: about
a thousand connections with small ``info``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import anyio
import anyio.abc

from ...core import Clock, SystemClock
from ...errors import BackendUnavailable, BusClosed, ConfigurationError, EventsMissed
from ...realtime._presence import (
    MAX_CONNECTION,
    MAX_MEMBER,
    PresenceEvent,
    SweeperLifecycle,
    check_channel,
    check_join,
    check_name,
    check_settings,
    check_ttl,
)
from ._bus_url import store_keywords, table_of
from ._client import ClientPool, aws_errors
from ._dynamo_presence_state import ChannelState, events_after, ttl_of
from ._dynamo_tables import backoff, check_names, create_table, is_conflict, num

__all__ = ["DynamoPresence"]

_T = TypeVar("_T")
_INDEXES = {"due": ("dk", "nd", "N")}
_ATTEMPTS = 500
#: How many due channels one query of the sweeper reads.
SWEEP_PAGE = 100


class DynamoPresence(SweeperLifecycle):
    """A :class:`~eventpatterns.realtime.Presence` on a DynamoDB table (extra ``aws``).

    Args:
        table: The table's name (key ``pk``, a string, and the index ``due``: ``dk``
            string, ``nd`` number, keys only); ``create_table=True`` creates it with
            on-demand billing and TTL on ``x``.
        prefix: Starts every key; instances with the same table and prefix share their
            presence, other prefixes never meet.
        ttl: Default seconds a membership lives without a heartbeat.
        sweep_interval: Seconds between sweeps of the background sweeper that runs
            inside ``async with`` (run one in at least one process).
        max_info_size: Largest ``info`` accepted, in bytes of JSON.
        poll_interval: Seconds between a listener's reads of its channel (the latency
            of events, and their cost: a read each time).
        grace: Seconds after the last deadline DynamoDB's TTL deletes a channel item
            nobody swept (a backstop; it follows the system's time).
        region: The AWS region.
        endpoint_url: Another endpoint (moto, LocalStack, DynamoDB Local).
        create_table: Create the table on first use if it does not exist.
        clock: Time source of deadlines and of the sweeper; processes sharing a
            presence need roughly synchronised clocks.

    Raises:
        ConfigurationError: A bad table name, prefix or setting.

    Example:
        ```python
        from eventpatterns.backends.aws import DynamoPresence

        presence = DynamoPresence("presence", prefix="myapp", ttl=30, poll_interval=0.5)
        assert presence.poll_interval == 0.5
        ```
    """

    def __init__(
        self,
        table: str,
        *,
        prefix: str = "eventpatterns",
        ttl: float = 30.0,
        sweep_interval: float = 1.0,
        max_info_size: int = 4096,
        poll_interval: float = 0.25,
        grace: float = 86_400.0,
        region: str | None = None,
        endpoint_url: str | None = None,
        create_table: bool = False,
        clock: Clock | None = None,
    ) -> None:
        check_names(table, prefix)
        check_settings(ttl=ttl, sweep_interval=sweep_interval, max_info_size=max_info_size)
        for name, value in (("poll_interval", poll_interval), ("grace", grace)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigurationError(f"{name} must be seconds, got {value!r}")
            if not 0 < value < float("inf"):
                raise ConfigurationError(f"{name} must be > 0 seconds, got {value!r}")
        self.table = table
        self.prefix = prefix
        self.ttl = float(ttl)
        self.sweep_interval = float(sweep_interval)
        self.max_info_size = max_info_size
        self.poll_interval = float(poll_interval)
        self.clock: Clock = clock or SystemClock()
        self._grace = float(grace)
        self._pool = ClientPool(region=region, endpoint_url=endpoint_url)
        self._ready = not create_table
        self._listeners: set[_Listener] = set()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DynamoPresence:
        """Build from ``aws://?region=eu-west-1&prefix=myapp&ttl=30``.

        The query takes ``region``, ``prefix``, ``endpoint_url``, ``create`` (create
        the table on first use),
        ``presence_table``, ``ttl`` and ``sweep_interval``; the other AWS stores' options (the bus's
        ``bus``, ``poll``...) are skipped, so one URL serves every store. The table is
        ``{prefix}-presence`` by default.
        Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not an ``aws://`` URL, or a bad or unknown option.
        """
        keywords = store_keywords(url, "DynamoPresence", options)
        return cls(table_of(keywords, "presence"), **keywords)

    async def aclose(self) -> None:
        """Stop the sweeper, end every listener's iteration and close the client."""
        if self._closed:
            return
        self._closed = True
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()
        for listener in list(self._listeners):
            listener.stop()
        await self._pool.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise BusClosed("the DynamoDB presence is closed")

    # -- plumbing --------------------------------------------------------------------------

    async def _call(self, operation: str, method: str, **kwargs: Any) -> Any:
        self._check_open()
        db = await self._pool.client("dynamodb")
        if not self._ready:
            await create_table(db, self.table, indexes=_INDEXES, ttl="x")
            self._ready = True
        with aws_errors(operation, resource=self.table):
            return await getattr(db, method)(TableName=self.table, **kwargs)

    def _key(self, kind: str, name: str) -> dict[str, Any]:
        return {"pk": {"S": f"{self.prefix}#{kind}#{name}"}}

    async def _read(self, channel: str, *, consistent: bool = True) -> dict[str, Any] | None:
        answer = await self._call(
            "GetItem", "get_item", Key=self._key("ch", channel), ConsistentRead=consistent
        )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    async def _change(self, channel: str, apply: Callable[[ChannelState, float], _T]) -> _T:
        """Expire what is due on ``channel``, ``apply`` the change, write it if any."""
        for attempt in range(_ATTEMPTS):
            state = ChannelState.of(channel, await self._read(channel))
            now = self.clock.time()
            state.expire(now)
            result = apply(state, now)
            if not state.changed:
                return result
            item = {**self._key("ch", channel), **state.item_fields()}
            first = state.next_deadline()
            if first is not None:
                item["dk"], item["nd"] = {"S": f"{self.prefix}#due"}, num(first)
            item["x"] = ttl_of(state.latest_deadline(), now, self._grace)
            if state.version:
                condition: dict[str, Any] = {
                    "ConditionExpression": "v = :v",
                    "ExpressionAttributeValues": {":v": {"N": str(state.version)}},
                }
            else:
                condition = {"ConditionExpression": "attribute_not_exists(pk)"}
            try:
                await self._call("PutItem", "put_item", Item=item, **condition)
            except Exception as exc:
                if not is_conflict(exc.__cause__ or exc):
                    raise
                await backoff(attempt)
                continue
            return result
        raise BackendUnavailable(  # pragma: no cover - 500 lost races in a row
            f"presence channel {channel!r} kept changing; try again"
        )

    async def _channels_of(self, connection: str) -> list[str]:
        answer = await self._call(
            "GetItem", "get_item", Key=self._key("conn", connection), ConsistentRead=True
        )
        return sorted(answer.get("Item", {}).get("cs", {}).get("SS", []))

    # -- the contract --------------------------------------------------------------------

    async def join(
        self,
        channel: str,
        member: str,
        *,
        connection: str,
        info: Mapping[str, Any] | None = None,
        ttl: float | None = None,
    ) -> bool:
        """Join a connection of a member to a channel; see :meth:`Presence.join`."""
        seconds, text = check_join(
            channel, member, connection, info, ttl,
            default_ttl=self.ttl, max_info_size=self.max_info_size,
        )  # fmt: skip
        # First the connection's list of channels, so heartbeats find every membership.
        await self._call(
            "UpdateItem",
            "update_item",
            Key=self._key("conn", connection),
            UpdateExpression="ADD cs :c SET x = :x",
            ExpressionAttributeValues={
                ":c": {"SS": [channel]},
                ":x": ttl_of(None, self.clock.time() + seconds, self._grace),
            },
        )
        return await self._change(
            channel, lambda state, now: state.join(member, connection, text, now + seconds)
        )

    async def leave(self, channel: str, member: str, *, connection: str) -> bool:
        """Remove a connection of a member from a channel; see :meth:`Presence.leave`."""
        check_channel("leave", channel)
        check_name("leave", "member", member, limit=MAX_MEMBER)
        check_name("leave", "connection", connection, limit=MAX_CONNECTION)
        return await self._change(
            channel, lambda state, now: state.remove(member, connection, expired=False)
        )

    async def leave_all(self, connection: str) -> int:
        """Remove a connection from every channel; see :meth:`Presence.leave_all`."""
        check_name("leave_all", "connection", connection, limit=MAX_CONNECTION)
        channels = await self._channels_of(connection)

        def leave(state: ChannelState, now: float) -> int:
            return sum(
                state.remove(member, connection, expired=False)
                for member in state.holders(connection)
            )

        left = 0
        for channel in channels:
            left += await self._change(channel, leave)
        if channels:  # forget them (a channel joined meanwhile stays listed)
            await self._call(
                "UpdateItem",
                "update_item",
                Key=self._key("conn", connection),
                UpdateExpression="DELETE cs :c",
                ExpressionAttributeValues={":c": {"SS": channels}},
            )
        return left

    async def heartbeat(self, connection: str, *, ttl: float | None = None) -> int:
        """Extend a connection's memberships; see :meth:`Presence.heartbeat`."""
        check_name("heartbeat", "connection", connection, limit=MAX_CONNECTION)
        seconds = check_ttl(ttl, self.ttl)

        def extend(state: ChannelState, now: float) -> int:
            holders = state.holders(connection)
            for member in holders:
                state.members[member][connection][1] = now + seconds
            return len(holders)

        refreshed = 0
        for channel in await self._channels_of(connection):
            refreshed += await self._change(channel, extend)
        return refreshed

    async def members(self, channel: str) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Return who is present; see :meth:`Presence.members`."""
        check_channel("members", channel)

        def read(state: ChannelState, now: float) -> dict[str, dict[str, Mapping[str, Any]]]:
            return {
                member: {c: json.loads(entry[0]) for c, entry in connections.items()}
                for member, connections in state.members.items()
            }

        return await self._change(channel, read)

    async def count(self, channel: str) -> int:
        """Return how many members are present; see :meth:`Presence.count`."""
        check_channel("count", channel)
        return await self._change(channel, lambda state, now: len(state.members))

    async def expire(self) -> int:
        """Remove what is past its deadline, in every channel; see :meth:`Presence.expire`."""
        now = self.clock.time()
        start = len(f"{self.prefix}#ch#")
        total = 0
        page: dict[str, Any] = {}
        while True:
            answer = await self._call(
                "Query",
                "query",
                IndexName="due",
                KeyConditionExpression="dk = :k AND nd <= :now",
                ExpressionAttributeValues={":k": {"S": f"{self.prefix}#due"}, ":now": num(now)},
                Limit=SWEEP_PAGE,
                **page,
            )
            for item in answer.get("Items", []):
                channel = item["pk"]["S"][start:]
                total += await self._change(channel, _expired)
            if "LastEvaluatedKey" not in answer:
                return total
            page = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}

    def events(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[PresenceEvent]]:
        """Listen to a channel's join and leave events, polling its item.

        See :meth:`Presence.events`. Events arrive within about ``poll_interval``
        seconds, in order; a listener that falls more than the channel item's 100
        latest events behind gets ``EventsMissed`` (and then the events after the gap).
        """
        check_channel("events", channel)
        return _Listener(self, channel)


def _expired(state: ChannelState, now: float) -> int:
    return sum(1 for event in state.new if event.expired)


class _Listener:
    """One ``events(channel)`` context: the channel item's event number, then polls."""

    def __init__(self, owner: DynamoPresence, channel: str) -> None:
        self._owner = owner
        self.channel = channel
        self._seq = 0
        self._ready: list[PresenceEvent] = []
        self._scope: anyio.CancelScope | None = None
        self._stopped = False

    def stop(self) -> None:
        """End the iteration (the presence is closing)."""
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    async def __aenter__(self) -> AsyncIterator[PresenceEvent]:
        item = await self._owner._read(self.channel)  # live from here: BusClosed if closed
        self._seq = 0 if item is None else int(item["q"]["N"])
        self._owner._listeners.add(self)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._owner._listeners.discard(self)

    def __aiter__(self) -> AsyncIterator[PresenceEvent]:
        return self

    async def _poll(self, delay: float) -> dict[str, Any] | None:
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                await anyio.sleep(delay)
                return await self._owner._read(self.channel, consistent=False)
            except BusClosed:  # pragma: no cover - closed between the check and the read
                self._stopped = True
            finally:
                self._scope = None
        return None

    async def __anext__(self) -> PresenceEvent:
        delay = 0.0
        while not self._ready:
            if self._stopped:
                raise StopAsyncIteration
            item = await self._poll(delay)
            if self._stopped:  # pragma: no cover - closed while polling
                raise StopAsyncIteration
            delay = self._owner.poll_interval
            self._seq, missed, self._ready = events_after(self.channel, item, self._seq)
            if missed:
                raise EventsMissed(missed=missed, after=None)
        return self._ready.pop(0)
