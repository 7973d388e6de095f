"""Publishing to EventBridge: entries, request batching, per-entry retries, dedupe.

``PutEvents`` takes at most 10 entries and 256 KiB per request (EventBridge API
reference, ``PutEvents``); an entry carries the CloudEvent whole in ``Detail``, with
``Source`` and ``DetailType`` mirrored from it so that native rules match on them too,
and the bus position in ``Resources``. The response reports failures per entry:
throttled or internal ones are retried alone, with backoff.

EventBridge does not dedupe, and the contract does: :class:`DedupeTable` records each
event id with a DynamoDB conditional ``PutItem`` (one write request per event; the
record expires on the injected clock, and a TTL attribute lets DynamoDB delete it).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import anyio

from ...core import Clock, Event
from ...errors import EventTooLarge
from ._client import AWSUnavailable, ClientPool, aws_errors, error_code

__all__ = ["MAX_ENTRIES", "MAX_REQUEST", "DedupeTable", "Entry", "put_entries"]

MAX_ENTRIES = 10  #: entries per PutEvents request
MAX_REQUEST = 256 * 1024  #: bytes per PutEvents request, and so per entry

#: Per-entry error codes worth retrying (throttling, internal failures).
_RETRY_ENTRY = {"ThrottlingException", "InternalFailure", "InternalException", "ServiceUnavailable"}
_POSITION_MARK = "eventpatterns:position:"


class Entry:
    """One event ready for ``PutEvents``: its request entry and its size."""

    __slots__ = ("error", "event", "position", "request", "size")

    def __init__(self, event: Event, position: str, bus: str) -> None:
        detail = event.to_json().decode()
        self.event = event
        self.position = position
        self.error = ""  # why PutEvents refused it, once it did
        self.request: dict[str, Any] = {
            "Source": event.source,
            "DetailType": event.type,
            "Detail": detail,
            "Resources": [_POSITION_MARK + position],
            "EventBusName": bus,
        }
        # How EventBridge counts an entry's size (User Guide, "Calculating PutEvents
        # event entry size"): Source, DetailType, Detail and Resources in UTF-8.
        self.size = (
            len(event.source.encode())
            + len(event.type.encode())
            + len(detail.encode())
            + len(self.request["Resources"][0].encode())
        )


def check_size(event: Event, *, limit: int) -> None:
    """Raise :class:`EventTooLarge` when the event's JSON is over ``limit`` bytes."""
    size = len(event.to_json())
    if size > limit:
        raise EventTooLarge(event.id, size=size, limit=limit)


def position_of(envelope: dict[str, Any]) -> str:
    """Return the bus position an EventBridge envelope carries (``""`` if none)."""
    for resource in envelope.get("resources") or ():
        if isinstance(resource, str) and resource.startswith(_POSITION_MARK):
            return resource[len(_POSITION_MARK) :]
    return ""


def _requests(entries: Sequence[Entry]) -> list[list[Entry]]:
    """Split entries into requests of at most 10 entries and 256 KiB."""
    out: list[list[Entry]] = []
    current: list[Entry] = []
    size = 0
    for entry in entries:
        if current and (len(current) == MAX_ENTRIES or size + entry.size > MAX_REQUEST):
            out.append(current)
            current, size = [], 0
        current.append(entry)
        size += entry.size
    if current:
        out.append(current)
    return out


async def put_entries(
    pool: ClientPool, entries: Sequence[Entry], *, bus: str, attempts: int = 5
) -> list[Entry]:
    """Publish entries in as few requests as the limits allow; return those not sent.

    Entries failing with a transient code are retried alone, up to ``attempts`` times
    with exponential backoff; those failing otherwise, or still failing, are returned
    (in order) so the caller can undo their dedupe records.

    Raises:
        AWSUnavailable: A whole request failed after botocore's retries; the entries
            of requests not yet sent are in ``exc.unsent`` (a list of entries).
    """
    client = await pool.client("events")
    failed: list[Entry] = []
    batches = _requests(entries)
    for index, batch in enumerate(batches):
        pending = batch
        for attempt in range(attempts):
            try:
                with aws_errors("PutEvents", resource=f"event bus {bus!r}"):
                    response = await client.put_events(Entries=[e.request for e in pending])
            except AWSUnavailable as exc:
                exc.unsent = [e for b in batches[index:] for e in b] + failed  # type: ignore[attr-defined]
                raise
            retry: list[Entry] = []
            for entry, result in zip(pending, response["Entries"], strict=True):
                code = result.get("ErrorCode")
                if code is None:
                    continue
                if code in _RETRY_ENTRY and attempt + 1 < attempts:
                    retry.append(entry)
                else:
                    entry.error = f"{code}: {result.get('ErrorMessage', '')}"
                    failed.append(entry)
            if not retry:
                break
            pending = retry
            await anyio.sleep(min(0.05 * 2**attempt, 2.0))
    return failed


class DedupeTable:
    """Event ids seen within the dedupe window, in a DynamoDB table (created on first use).

    Each record holds the id, the position first assigned, ``expires`` on the
    backend's clock (checked by the condition) and ``ttl`` in epoch seconds for
    DynamoDB's own expiry (which may lag by days, hence the condition).

    Args:
        pool: The clients.
        table: The table's name.
        window: Seconds an id is remembered.
        clock: The backend's clock.
    """

    def __init__(self, pool: ClientPool, table: str, *, window: float, clock: Clock) -> None:
        self.pool = pool
        self.table = table
        self.window = window
        self.clock = clock
        self._ready = False
        self._lock = anyio.Lock()

    async def ensure(self) -> None:
        """Create the table (on-demand billing, TTL on ``ttl``) unless it exists."""
        if self._ready:
            return
        async with self._lock:
            if not self._ready:
                await self._ensure()

    async def _ensure(self) -> None:
        client = await self.pool.client("dynamodb")
        resource = f"dedupe table {self.table!r}"
        try:
            with aws_errors("DescribeTable", resource=resource):
                await client.describe_table(TableName=self.table)
        except Exception as exc:
            if error_code(exc.__cause__ or exc) != "ResourceNotFoundException":
                raise
            await self._create(client, resource)
        self._ready = True

    async def _create(self, client: Any, resource: str) -> None:
        try:
            with aws_errors("CreateTable", resource=resource):
                await client.create_table(
                    TableName=self.table,
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
        except Exception as exc:  # another process created it meanwhile
            if error_code(exc.__cause__ or exc) != "ResourceInUseException":
                raise
        with aws_errors("DescribeTable", resource=resource):
            await client.get_waiter("table_exists").wait(
                TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
            )
        with aws_errors("UpdateTimeToLive", resource=resource):
            await client.update_time_to_live(
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
            )

    async def claim(self, event_id: str, position: str) -> str | None:
        """Record ``event_id`` at ``position``; return the earlier position if it was seen."""
        client = await self.pool.client("dynamodb")
        now = self.clock.time()
        try:
            with aws_errors("PutItem", resource=f"dedupe table {self.table!r}"):
                await client.put_item(
                    TableName=self.table,
                    Item={
                        "id": {"S": event_id},
                        "position": {"S": position},
                        "expires": {"N": repr(now + self.window)},
                        "ttl": {"N": str(int(anyio_time() + self.window) + 1)},
                    },
                    ConditionExpression="attribute_not_exists(id) OR expires <= :now",
                    ExpressionAttributeValues={":now": {"N": repr(now)}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except Exception as exc:
            cause = exc.__cause__ or exc
            if error_code(cause) != "ConditionalCheckFailedException":
                raise
            # ReturnValuesOnConditionCheckFailure hands back the record: no extra read.
            item = getattr(cause, "response", {}).get("Item") or {}
            return str(item.get("position", {}).get("S", ""))
        return None

    async def forget(self, event_ids: Sequence[str]) -> None:
        """Delete records of events that were not published after all (best effort)."""
        client = await self.pool.client("dynamodb")
        for event_id in event_ids:
            with aws_errors("DeleteItem", resource=f"dedupe table {self.table!r}"):
                await client.delete_item(TableName=self.table, Key={"id": {"S": event_id}})


def anyio_time() -> float:
    """Wall-clock epoch seconds, for DynamoDB's TTL attribute (which AWS reads)."""
    import time

    return time.time()


def decode_envelope(body: str) -> tuple[dict[str, Any], Event]:
    """Parse an EventBridge envelope (an SQS message body) into it and its CloudEvent."""
    envelope = json.loads(body)
    return envelope, Event.from_dict(envelope["detail"])
