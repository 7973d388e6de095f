"""The DynamoDB job store: one item per job, conditional writes on the version, sparse GSIs.

One table holds every store that shares it (items and index keys start with the
store's ``prefix``). Items:

=======================================  =================================================
``pk = <p>#job#<id>``                    ``v`` version, ``j`` the job's JSON, ``o`` owner,
                                         ``s`` state, ``cs`` created sort key, ``e``
                                         expires_at (final jobs), ``x`` DynamoDB TTL,
                                         and the sparse index keys below
``pk = <p>#key#<len>#<owner>#<key>``     idempotency key -> ``id`` of the owner's job
=======================================  =================================================

Global secondary indexes, each sparse (an item is in it only while the attribute is set):
``owner`` (``o``, ``cs``) and ``owner-state`` (``os`` = owner and state, ``cs``) for
listing newest first; ``leases`` (``lk``, ``lu`` = lease_until) while running; ``due``
(``dk``, ``ra`` = run_after) while pending or retrying with a ``run_after``; ``deadlines``
(``dlk``, ``dl``) while not final; ``expiry`` (``xk``, ``e``) once final. The last four
have one partition key value per store, so each is one hot partition: fine for the
reaper's small queries; shard it if one store runs thousands of jobs per second.

Expiry follows the store's clock: a final job past ``e`` reads as gone and its key is
free at once; :meth:`DynamoJobStore.purge` deletes it; DynamoDB's own TTL on ``x`` (the
expiry plus ``grace``) deletes what nothing purged — eventually (up to days), and never
on moto.
"""

from __future__ import annotations

import builtins
import math
from typing import Any

from ...core import Clock, SystemClock
from ...errors import ConfigurationError, JobConflict, JobNotFound
from ...jobs._codec import job_from_json, job_to_json
from ...jobs._model import Job, JobState
from ...jobs._store import DEFAULT_TTL, JobPage, check_limit, format_cursor, parse_cursor
from ._bus_url import store_keywords, table_of
from ._client import ClientPool, aws_errors, error_code

__all__ = ["DynamoJobStore"]

_WAITING = (JobState.PENDING, JobState.RETRYING)
_INDEXES = {  # name: (hash attribute, range attribute, range type, projection)
    "owner": ("o", "cs", "S", "ALL"),
    "owner-state": ("os", "cs", "S", "ALL"),
    "leases": ("lk", "lu", "N", "KEYS_ONLY"),
    "due": ("dk", "ra", "N", "KEYS_ONLY"),
    "deadlines": ("dlk", "dl", "N", "KEYS_ONLY"),
    "expiry": ("xk", "e", "N", "KEYS_ONLY"),
}


def _sort_key(created_at: float, job_id: str) -> str:
    # Fixed width, so comparing strings compares (created_at, id) as the contract orders.
    return f"{created_at:026.9f}#{job_id}"


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value))}


def _positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not (math.isfinite(value) and value > 0)
    ):
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class DynamoJobStore:
    """A :class:`~eventpatterns.jobs.JobStore` on a DynamoDB table (extra ``aws``).

    Args:
        table: The table's name (key ``pk``, a string, and the six indexes above; pass
            ``create_table=True`` to create it with on-demand billing and TTL on ``x``).
        prefix: Starts every key; stores with other prefixes share the table, never meet.
        region: The AWS region.
        endpoint_url: Another endpoint (moto, LocalStack, DynamoDB Local).
        default_ttl: Seconds a final job is kept when the job sets no ``ttl``.
        grace: Seconds DynamoDB's TTL waits after a job's expiry (a backstop).
        create_table: Create the table on first use if it does not exist.
        clock: Where expiry reads the time (pass the tracker's clock).
    """

    def __init__(
        self,
        table: str,
        *,
        prefix: str = "eventpatterns",
        region: str | None = None,
        endpoint_url: str | None = None,
        default_ttl: float = DEFAULT_TTL,
        grace: float = 3600.0,
        create_table: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(table, str) or not 3 <= len(table) <= 255:
            raise ConfigurationError(f"a DynamoDB table name has 3 to 255 characters: {table!r}")
        if not isinstance(prefix, str) or not prefix or "#" in prefix:
            raise ConfigurationError(f"prefix must be a non-empty string without '#': {prefix!r}")
        self.table = table
        self._p = prefix
        self._ttl = _positive("default_ttl", default_ttl)
        self._grace = _positive("grace", grace)
        self._clock = clock or SystemClock()
        self._pool = ClientPool(region=region, endpoint_url=endpoint_url)
        self._ready = not create_table

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DynamoJobStore:
        """Build from ``aws://?region=eu-west-1&prefix=myapp&jobs_table=myapp-jobs``.

        The query takes ``region``, ``prefix``, ``endpoint_url``, ``create`` (create
        the table on first use) and ``jobs_table``; the other AWS stores' options (the bus's
        ``bus``, ``poll``...) are skipped, so one URL serves every store. The table is
        ``{prefix}-jobs`` by default.
        Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not an ``aws://`` URL, or a bad or unknown option.
        """
        keywords = store_keywords(url, "DynamoJobStore", options)
        return cls(table_of(keywords, "jobs"), **keywords)

    async def __aenter__(self) -> DynamoJobStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the DynamoDB client."""
        await self._pool.aclose()

    # -- plumbing ----------------------------------------------------------------------------

    async def _db(self) -> Any:
        db = await self._pool.client("dynamodb")
        if not self._ready:
            await self._create_table(db)
            self._ready = True
        return db

    async def _create_table(self, db: Any) -> None:
        attributes = {"pk": "S"}
        indexes = []
        for name, (hash_key, range_key, range_type, projection) in _INDEXES.items():
            attributes[hash_key] = "S"
            attributes[range_key] = range_type
            indexes.append(
                {
                    "IndexName": name,
                    "KeySchema": [
                        {"AttributeName": hash_key, "KeyType": "HASH"},
                        {"AttributeName": range_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": projection},
                }
            )
        with aws_errors("CreateTable", resource=self.table):
            try:
                await db.create_table(
                    TableName=self.table,
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[
                        {"AttributeName": k, "AttributeType": t} for k, t in attributes.items()
                    ],
                    GlobalSecondaryIndexes=indexes,
                    BillingMode="PAY_PER_REQUEST",
                )
            except Exception as exc:
                if error_code(exc) != "ResourceInUseException":
                    raise
                return
            waiter = db.get_waiter("table_exists")
            await waiter.wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
            await db.update_time_to_live(
                TableName=self.table,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": "x"},
            )

    def _job_pk(self, job_id: str) -> str:
        return f"{self._p}#job#{job_id}"

    def _key_pk(self, owner: str, key: str) -> str:
        return f"{self._p}#key#{len(owner)}#{owner}#{key}"

    def _expires_at(self, job: Job) -> float | None:
        if job.finished_at is None:
            return None
        return job.finished_at + (job.ttl if job.ttl is not None else self._ttl)

    def _item(self, job: Job) -> dict[str, Any]:
        data = job_to_json(job)  # refuses what JSON cannot hold, before anything is written
        item: dict[str, Any] = {
            "pk": {"S": self._job_pk(job.id)},
            "v": {"N": str(job.version)},
            "j": {"S": data},
            "o": {"S": f"{self._p}#{job.owner}"},
            "os": {"S": f"{self._p}#{job.owner}#{job.state.value}"},
            "cs": {"S": _sort_key(job.created_at, job.id)},
            "s": {"S": job.state.value},
            "k": {"S": job.idempotency_key if job.idempotency_key is not None else ""},
        }
        if job.state is JobState.RUNNING and job.lease_until is not None:
            item["lk"], item["lu"] = {"S": f"{self._p}#lease"}, _n(job.lease_until)
        if job.state in _WAITING and job.run_after is not None:
            item["dk"], item["ra"] = {"S": f"{self._p}#due"}, _n(job.run_after)
        if not job.state.final and job.deadline is not None:
            item["dlk"], item["dl"] = {"S": f"{self._p}#deadline"}, _n(job.deadline)
        expires = self._expires_at(job)
        if expires is not None:
            item["xk"], item["e"] = {"S": f"{self._p}#expiry"}, _n(expires)
            item["x"] = {"N": str(math.ceil(expires + self._grace))}
        return item

    def _live(self, item: dict[str, Any] | None) -> Job | None:
        if not item or "j" not in item:
            return None
        expires = item.get("e")
        if expires is not None and float(expires["N"]) <= self._clock.time():
            return None
        return job_from_json(item["j"]["S"])

    async def _read(self, db: Any, job_id: str) -> dict[str, Any] | None:
        with aws_errors("GetItem", resource=self.table):
            answer = await db.get_item(
                TableName=self.table, Key={"pk": {"S": self._job_pk(job_id)}}, ConsistentRead=True
            )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    # -- the contract ------------------------------------------------------------------------

    async def create(self, job: Job) -> Job:
        """Store a new job, or return the owner's live job with the same idempotency key."""
        if job.version != 1:
            raise JobConflict(job.id, expected=None, actual=job.version)
        item = self._item(job)
        db = await self._db()
        now = _n(self._clock.time())
        fresh = "attribute_not_exists(pk) OR e <= :now"
        put_job = {
            "TableName": self.table,
            "Item": item,
            "ConditionExpression": fresh,
            "ExpressionAttributeValues": {":now": now},
        }
        if job.idempotency_key is None:
            with aws_errors("PutItem", resource=self.table):
                try:
                    await db.put_item(**put_job, ReturnValuesOnConditionCheckFailure="ALL_OLD")
                except Exception as exc:
                    if error_code(exc) != "ConditionalCheckFailedException":
                        raise
                    raise JobConflict(job.id, expected=None, actual=_version_of(exc)) from None
            return job
        key_pk = self._key_pk(job.owner, job.idempotency_key)
        previous: str | None = None
        for _ in range(5):  # the keyed job may expire between the write and the read
            if previous is None:
                claim: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:  # the key names a job that is gone: take it over, if nobody else did
                claim = {
                    "ConditionExpression": "id = :old",
                    "ExpressionAttributeValues": {":old": {"S": previous}},
                }
            put_key = {
                "TableName": self.table,
                "Item": {"pk": {"S": key_pk}, "id": {"S": job.id}},
                **claim,
            }
            with aws_errors("TransactWriteItems", resource=self.table):
                try:
                    await db.transact_write_items(
                        TransactItems=[{"Put": put_key}, {"Put": put_job}]
                    )
                    return job
                except Exception as exc:
                    if error_code(exc) != "TransactionCanceledException":
                        raise
                    reasons = [
                        r.get("Code")
                        for r in getattr(exc, "response", {}).get("CancellationReasons", [])
                    ]
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                stored = await self._read(db, job.id)
                actual = None if stored is None else int(stored["v"]["N"])
                raise JobConflict(job.id, expected=None, actual=actual)
            with aws_errors("GetItem", resource=self.table):
                answer = await db.get_item(
                    TableName=self.table, Key={"pk": {"S": key_pk}}, ConsistentRead=True
                )
            holder = answer.get("Item", {}).get("id", {}).get("S")
            if holder is None:
                previous = None
                continue
            existing = self._live(await self._read(db, holder))
            if existing is not None and existing.owner == job.owner:
                return existing
            previous = holder
        raise JobConflict(job.id, expected=None, actual=None)  # pragma: no cover - races x5

    async def get(self, job_id: str) -> Job | None:
        """Return the job, or ``None`` if never stored or expired."""
        return self._live(await self._read(await self._db(), job_id))

    async def replace(self, job: Job, *, expected_version: int) -> Job:
        """Write ``job`` if the stored version is ``expected_version`` (a conditional put)."""
        db = await self._db()
        if job.version != expected_version + 1:
            stored = self._live(await self._read(db, job.id))
            if stored is None:
                raise JobNotFound(job.id)
            raise JobConflict(job.id, expected=expected_version, actual=stored.version)
        item = self._item(job)
        with aws_errors("PutItem", resource=self.table):
            try:
                await db.put_item(
                    TableName=self.table,
                    Item=item,
                    ConditionExpression=(
                        "v = :v AND o = :o AND k = :k AND (attribute_not_exists(e) OR e > :now)"
                    ),
                    ExpressionAttributeValues={
                        ":v": {"N": str(expected_version)},
                        ":o": item["o"],
                        ":k": item["k"],
                        ":now": _n(self._clock.time()),
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
            except Exception as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old = getattr(exc, "response", {}).get("Item")
                if old is None:
                    old = await self._read(db, job.id)
                stored = self._live(old)
                if stored is None:
                    raise JobNotFound(job.id) from None
                if stored.version != expected_version:
                    raise JobConflict(
                        job.id, expected=expected_version, actual=stored.version
                    ) from None
                raise ConfigurationError(
                    f"job {job.id!r}: owner and idempotency key never change"
                ) from None
        return job

    async def list(
        self,
        owner: str,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Return the owner's live jobs, newest first, ``limit`` at a time."""
        check_limit(limit)
        after = parse_cursor(cursor)
        db = await self._db()
        if state is None:
            index, hash_attr, hash_value = "owner", "o", f"{self._p}#{owner}"
        else:
            index, hash_attr = "owner-state", "os"
            hash_value = f"{self._p}#{owner}#{JobState(state).value}"
        upper = None if after is None else _sort_key(*after)
        found: builtins.list[Job] = []
        while len(found) <= limit:
            condition = f"{hash_attr} = :h"
            values: dict[str, Any] = {":h": {"S": hash_value}}
            if upper is not None:
                condition += " AND cs < :u"
                values[":u"] = {"S": upper}
            with aws_errors("Query", resource=f"{self.table}/{index}"):
                answer = await db.query(
                    TableName=self.table,
                    IndexName=index,
                    KeyConditionExpression=condition,
                    ExpressionAttributeValues=values,
                    ScanIndexForward=False,
                    Limit=limit + 1 - len(found),
                )
            items = answer.get("Items", [])
            for item in items:
                live = self._live(item)
                if live is not None:
                    found.append(live)
            if not items or "LastEvaluatedKey" not in answer:
                break
            upper = items[-1]["cs"]["S"]
        if len(found) > limit:
            return JobPage(found[:limit], format_cursor(found[limit - 1]))
        return JobPage(found, None)

    async def _below(self, index: str, hash_key: str, now: float, limit: int) -> builtins.list[str]:
        hash_attr, range_attr, _, _ = _INDEXES[index]
        db = await self._db()
        with aws_errors("Query", resource=f"{self.table}/{index}"):
            answer = await db.query(
                TableName=self.table,
                IndexName=index,
                KeyConditionExpression=f"{hash_attr} = :h AND {range_attr} <= :now",
                ExpressionAttributeValues={":h": {"S": f"{self._p}#{hash_key}"}, ":now": _n(now)},
                Limit=limit,
            )
        start = len(f"{self._p}#job#")
        return [item["pk"]["S"][start:] for item in answer.get("Items", [])]

    async def expired_leases(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return running jobs whose lease ended by ``now``, oldest first."""
        return await self._below("leases", "lease", now, limit)

    async def due(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return waiting jobs (pending, retrying) whose ``run_after`` is by ``now``."""
        return await self._below("due", "due", now, limit)

    async def overdue(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return jobs not final whose deadline passed by ``now``, oldest first."""
        return await self._below("deadlines", "deadline", now, limit)

    async def purge(self) -> int:
        """Delete the final jobs whose TTL ended (and their idempotency keys)."""
        db = await self._db()
        removed = 0
        while True:
            expired = await self._below("expiry", "expiry", self._clock.time(), 100)
            if not expired:
                return removed
            for job_id in expired:
                item = await self._read(db, job_id)
                if item is None:
                    continue
                deletes: builtins.list[dict[str, Any]] = [
                    {
                        "Delete": {
                            "TableName": self.table,
                            "Key": {"pk": item["pk"]},
                            "ConditionExpression": "v = :v",
                            "ExpressionAttributeValues": {":v": item["v"]},
                        }
                    }
                ]
                key = item.get("k", {}).get("S", "")
                if key:
                    owner = item["o"]["S"][len(self._p) + 1 :]
                    deletes.append(
                        {
                            "Delete": {
                                "TableName": self.table,
                                "Key": {"pk": {"S": self._key_pk(owner, key)}},
                                "ConditionExpression": "attribute_not_exists(pk) OR id = :id",
                                "ExpressionAttributeValues": {":id": {"S": job_id}},
                            }
                        }
                    )
                with aws_errors("TransactWriteItems", resource=self.table):
                    try:
                        await db.transact_write_items(TransactItems=deletes)
                    except Exception as exc:
                        if error_code(exc) != "TransactionCanceledException":
                            raise
                        continue  # it changed meanwhile, or its key moved on
                removed += 1


def _version_of(exc: BaseException) -> int | None:
    item = getattr(exc, "response", {}).get("Item")
    try:
        return int(item["v"]["N"]) if item else None
    except (KeyError, TypeError, ValueError):
        return None
