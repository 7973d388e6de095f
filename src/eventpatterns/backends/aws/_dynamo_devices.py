"""The DynamoDB device registry: one item per device, one slot item per user, no transactions.

Items (the table's key is ``pk``; every key starts with the registry's ``prefix``):

===============================  ==================================================
``pk = <p>#dev#<id>``            ``u`` user, ``c`` created_at, ``r`` registered_at,
                                 ``s`` last_seen, ``j`` the registration (JSON),
                                 ``k`` topics (JSON), ``t`` the owner's slot value,
                                 ``v`` version, ``g`` the ``seen`` index key
``pk = <p>#user#<user>``         ``n`` slots held, and one attribute ``d<id>`` per
                                 slot: ``"<claimed at> <token>"``
===============================  ==================================================

A device's id is derived from its token, so the device item *is* the token index:
every change of a device is one conditional write on that item (a token moving to
another user is a write conditioned on the version read, so of 100 racing
registrations each lands whole, one after the other, and one owner remains).

The per-user limit needs a count that concurrent registrations agree on: before a
device becomes a user's, the registry claims a slot in the user's item (one
conditional update: ``n < max_devices``), and a device that leaves a user (moved,
unregistered, removed, pruned) frees its slot, if the slot still holds the value the
device recorded. A slot whose device is not the user's (a registration that lost its
race, or a process that died between the claim and the write) is reclaimed when the
user is full and the slot was claimed more than ``slot_grace`` seconds before (by
the ``now`` of the registrations, since the registry reads no clock).

Listing reads the user's item and then its devices, both strongly consistent; the
sparse global index ``seen`` (``g``, ``s``) finds the devices to prune, oldest first
(an index is eventually consistent: a device seen a moment ago may be pruned by its
older time, so prune with a margin of days, as FCM advises).
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable
from typing import Any

from ...errors import ConfigurationError
from ...push._devices import Device, Platform, Registration, check_topics
from ...push._devices_json import registration_key_json, topics_json
from ...push._registry import (
    DEFAULT_MAX_DEVICES,
    check_device_id,
    check_max_devices,
    check_prune_limit,
    check_registration,
    check_time,
    check_topic,
    check_user,
    too_many,
)
from ._bus_url import store_keywords, table_of
from ._client import ClientPool, aws_errors
from ._dynamo_tables import backoff, check_names, create_table, is_conflict, num

__all__ = ["DynamoDeviceRegistry"]

#: Most devices per user this registry allows: a user's slots live in one item,
#: about 60 bytes each, and DynamoDB items hold at most 400 KB.
MAX_SLOTS = 5000
_INDEXES = {"seen": ("g", "s", "N")}
_ATTEMPTS = 200


def _float(item: dict[str, Any], name: str) -> float:
    return float(item[name]["N"])


def _device(device_id: str, item: dict[str, Any]) -> Device:
    platform, token, p256dh, auth, apns_topic, environment, locale, zone, expires = json.loads(
        item["j"]["S"]
    )
    return Device(
        device_id, item["u"]["S"], Platform(platform), token, _float(item, "c"),
        _float(item, "s"), _float(item, "r"), p256dh, auth, apns_topic, environment,
        locale, zone, frozenset(json.loads(item["k"]["S"])), expires,
    )  # fmt: skip


def _old(exc: BaseException) -> dict[str, Any] | None:
    item: dict[str, Any] | None = getattr(exc, "response", {}).get("Item")
    return item


class DynamoDeviceRegistry:
    """A :class:`~eventpatterns.push.DeviceRegistry` on a DynamoDB table (extra ``aws``).

    Args:
        table: The table's name (key ``pk``, a string, and the index ``seen``: ``g``
            string, ``s`` number, keys only); ``create_table=True`` creates it with
            on-demand billing.
        prefix: Starts every key; registries with other prefixes share the table and
            never meet.
        max_devices: Most devices one user may hold (1 to 5,000 here: a user's slots
            share one item).
        slot_grace: Seconds (of registration times) after which a slot whose device
            never arrived may be reclaimed; longer than any registration takes.
        region: The AWS region.
        endpoint_url: Another endpoint (moto, LocalStack, DynamoDB Local).
        create_table: Create the table on first use if it does not exist.

    Raises:
        ConfigurationError: A bad table name, prefix or limit.

    Example:
        ```python
        from eventpatterns.backends.aws import DynamoDeviceRegistry

        registry = DynamoDeviceRegistry("devices", prefix="myapp", region="eu-west-1")
        assert registry.max_devices == 50
        ```
    """

    def __init__(
        self,
        table: str,
        *,
        prefix: str = "eventpatterns",
        max_devices: int = DEFAULT_MAX_DEVICES,
        slot_grace: float = 60.0,
        region: str | None = None,
        endpoint_url: str | None = None,
        create_table: bool = False,
    ) -> None:
        check_names(table, prefix)
        self.max_devices = check_max_devices(max_devices)
        if self.max_devices > MAX_SLOTS:
            raise ConfigurationError(
                f"max_devices is at most {MAX_SLOTS} on DynamoDB (a user's slots share one"
                f" item of at most 400 KB), got {max_devices}"
            )
        if isinstance(slot_grace, bool) or not isinstance(slot_grace, int | float):
            raise ConfigurationError(f"slot_grace must be seconds, got {slot_grace!r}")
        if not 0 < slot_grace < float("inf"):
            raise ConfigurationError(f"slot_grace must be > 0 seconds, got {slot_grace!r}")
        self.table = table
        self._p = prefix
        self._grace = float(slot_grace)
        self._pool = ClientPool(region=region, endpoint_url=endpoint_url)
        self._ready = not create_table

    @classmethod
    def from_url(cls, url: str, **options: Any) -> DynamoDeviceRegistry:
        """Build from ``aws://?region=eu-west-1&prefix=myapp&max_devices=20``.

        The query takes ``region``, ``prefix``, ``endpoint_url``, ``create`` (create
        the table on first use),
        ``devices_table`` and ``max_devices``; the other AWS stores' options (the bus's
        ``bus``, ``poll``...) are skipped, so one URL serves every store. The table is
        ``{prefix}-devices`` by default.
        Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not an ``aws://`` URL, or a bad or unknown option.
        """
        keywords = store_keywords(url, "DynamoDeviceRegistry", options)
        return cls(table_of(keywords, "devices"), **keywords)

    async def __aenter__(self) -> DynamoDeviceRegistry:
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
            await create_table(db, self.table, indexes=_INDEXES, ttl="x")
            self._ready = True
        return db

    def _dev(self, device_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"{self._p}#dev#{device_id}"}}

    def _user(self, user: str) -> dict[str, Any]:
        return {"pk": {"S": f"{self._p}#user#{user}"}}

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        """Run one DynamoDB operation on the table, errors mapped, conflicts passed through."""
        db = await self._db()
        method = getattr(db, _METHODS[operation])
        with aws_errors(operation, resource=self.table):
            try:
                return await method(TableName=self.table, **kwargs)
            except Exception as exc:
                if is_conflict(exc):
                    raise _Conflict(_old(exc)) from None
                raise

    async def _get(self, device_id: str) -> dict[str, Any] | None:
        answer = await self._call("GetItem", Key=self._dev(device_id), ConsistentRead=True)
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def _item(
        self, user: str, registration: Registration, *, c: float, r: float, s: float, t: str, v: int
    ) -> dict[str, Any]:
        return {
            **self._dev(registration.id),
            "u": {"S": user},
            "c": num(c),
            "r": num(r),
            "s": num(s),
            "j": {"S": registration_key_json(registration)},
            "k": {"S": topics_json(registration.topics)},
            "t": {"S": t},
            "v": {"N": str(v)},
            "g": {"S": f"{self._p}#seen"},
        }

    # -- slots -------------------------------------------------------------------------------

    async def _claim(self, user: str, device_id: str, now: float) -> str:
        """Take a slot of ``user`` for the device; return its value. Raise when full."""
        value = f"{now!r} {uuid.uuid4().hex}"
        names = {"#d": f"d{device_id}"}
        for _ in range(_ATTEMPTS):
            try:
                await self._call(
                    "UpdateItem",
                    Key=self._user(user),
                    UpdateExpression="SET #d = :val ADD n :one",
                    ConditionExpression=(
                        "attribute_not_exists(#d) AND (attribute_not_exists(n) OR n < :max)"
                    ),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={
                        ":val": {"S": value},
                        ":one": {"N": "1"},
                        ":max": {"N": str(self.max_devices)},
                    },
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
                return value
            except _Conflict as conflict:
                slots = conflict.item or {}
            if names["#d"] in slots:  # the user holds a slot for it already: renew it
                try:
                    await self._call(
                        "UpdateItem",
                        Key=self._user(user),
                        UpdateExpression="SET #d = :val",
                        ConditionExpression="attribute_exists(#d)",
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues={":val": {"S": value}},
                    )
                    return value
                except _Conflict:  # pragma: no cover - freed between the two writes
                    continue
            if not await self._reclaim(user, slots, now):
                raise too_many(user, self.max_devices)
        raise ConfigurationError(  # pragma: no cover - 200 lost races in a row
            f"register(): no slot for user {user!r} after retries"
        )

    async def _release(self, user: str, device_id: str, value: str) -> None:
        """Free the user's slot of the device if it still holds ``value``."""
        with contextlib.suppress(_Conflict):  # else renewed meanwhile: no longer the device's
            await self._call(
                "UpdateItem",
                Key=self._user(user),
                UpdateExpression="REMOVE #d ADD n :minus",
                ConditionExpression="#d = :val",
                ExpressionAttributeNames={"#d": f"d{device_id}"},
                ExpressionAttributeValues={":val": {"S": value}, ":minus": {"N": "-1"}},
            )

    async def _reclaim(self, user: str, slots: dict[str, Any], now: float) -> bool:
        """Free the slots whose device is not the user's and that are older than the grace."""
        held = {k[1:]: v["S"] for k, v in slots.items() if k.startswith("d") and "S" in v}
        items = await self._batch(list(held))
        freed = False
        for device_id, value in held.items():
            item = items.get(device_id)
            if item is not None and item["u"]["S"] == user:
                continue
            if float(value.partition(" ")[0]) >= now - self._grace:
                continue  # maybe a registration on its way: leave it be
            await self._release(user, device_id, value)
            freed = True
        return freed

    async def _batch(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        """Read devices by id (strongly consistent), 100 per request."""
        found: dict[str, dict[str, Any]] = {}
        start = len(f"{self._p}#dev#")
        for i in range(0, len(ids), 100):
            keys = [self._dev(device_id) for device_id in ids[i : i + 100]]
            request: dict[str, Any] = {self.table: {"Keys": keys, "ConsistentRead": True}}
            for attempt in range(_ATTEMPTS):  # pragma: no branch - throttled 200 times
                db = await self._db()
                with aws_errors("BatchGetItem", resource=self.table):
                    answer = await db.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.table, []):
                    found[item["pk"]["S"][start:]] = item
                request = answer.get("UnprocessedKeys") or {}
                if not request:
                    break
                await backoff(attempt)  # pragma: no cover - throttled
        return found

    # -- the contract --------------------------------------------------------------------

    async def register(self, user: str, registration: Registration, *, now: float) -> Device:
        """Register the device for ``user``; see :meth:`DeviceRegistry.register`."""
        check_user("register", user)
        check_registration("register", registration)
        at = check_time("register", "now", now)
        device_id = registration.id
        try:  # the usual case, an app registering its token again: one write
            answer = await self._call(
                "UpdateItem",
                Key=self._dev(device_id),
                UpdateExpression="SET j = :j, k = :k, r = :now, s = :now ADD v :one",
                ConditionExpression="u = :u AND r <= :now AND s <= :now",
                ExpressionAttributeValues={
                    ":j": {"S": registration_key_json(registration)},
                    ":k": {"S": topics_json(registration.topics)},
                    ":now": num(at),
                    ":one": {"N": "1"},
                    ":u": {"S": user},
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return _device(device_id, answer["Attributes"])
        except _Conflict as conflict:
            old = conflict.item
        for attempt in range(_ATTEMPTS):
            if old is not None and old["u"]["S"] == user:
                slot, created = old["t"]["S"], _float(old, "c")
            else:
                slot, created = await self._claim(user, device_id, at), at
            registered, seen = at, at
            if old is not None:  # times never move back
                registered, seen = max(_float(old, "r"), at), max(_float(old, "s"), at)
            item = self._item(
                user, registration, c=created, r=registered, s=seen, t=slot,
                v=1 if old is None else int(old["v"]["N"]) + 1,
            )  # fmt: skip
            if old is None:
                condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
            else:
                condition = {
                    "ConditionExpression": "v = :v",
                    "ExpressionAttributeValues": {":v": old["v"]},
                }
            try:
                await self._call(
                    "PutItem", Item=item, ReturnValuesOnConditionCheckFailure="ALL_OLD", **condition
                )
            except _Conflict as conflict:
                old = conflict.item
                await backoff(attempt)
                continue
            if old is not None and old["u"]["S"] != user:  # moved: free the old owner's slot
                await self._release(old["u"]["S"], device_id, old["t"]["S"])
            return Device.of(
                user, registration, created_at=created, registered_at=registered, last_seen=seen
            )
        raise ConfigurationError(  # pragma: no cover - 200 lost races in a row
            f"register(): device {device_id} kept changing; try again"
        )

    async def get(self, device_id: str) -> Device | None:
        """Return the device, or ``None``."""
        if not check_device_id("get", device_id):
            return None
        item = await self._get(device_id)
        return None if item is None else _device(device_id, item)

    async def devices(self, user: str, *, topic: str | None = None) -> list[Device]:
        """Return the user's devices, oldest first; see :meth:`DeviceRegistry.devices`."""
        check_user("devices", user)
        wanted = check_topic("devices", topic)
        answer = await self._call("GetItem", Key=self._user(user), ConsistentRead=True)
        slots = answer.get("Item", {})
        ids = [name[1:] for name in slots if name.startswith("d")]
        found = [
            _device(device_id, item)
            for device_id, item in (await self._batch(ids)).items()
            if item["u"]["S"] == user
        ]
        return sorted(
            (d for d in found if wanted is None or wanted in d.topics),
            key=lambda d: (d.created_at, d.id),
        )

    async def _delete(self, device_id: str, condition: str, values: dict[str, Any]) -> bool:
        """Delete the device if ``condition`` holds, and free its owner's slot."""
        try:
            answer = await self._call(
                "DeleteItem",
                Key=self._dev(device_id),
                ConditionExpression=condition,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_OLD",
            )
        except _Conflict:
            return False
        old = answer["Attributes"]
        await self._release(old["u"]["S"], device_id, old["t"]["S"])
        return True

    async def unregister(self, user: str, device_id: str) -> bool:
        """Remove the user's device; ``False`` if they hold no such device."""
        check_user("unregister", user)
        if not check_device_id("unregister", device_id):
            return False
        return await self._delete(device_id, "u = :u", {":u": {"S": user}})

    async def unregister_all(self, user: str) -> int:
        """Remove every device of the user; return how many."""
        check_user("unregister_all", user)
        answer = await self._call("GetItem", Key=self._user(user), ConsistentRead=True)
        ids = [name[1:] for name in answer.get("Item", {}) if name.startswith("d")]
        removed = 0
        for device_id in ids:
            removed += await self._delete(device_id, "u = :u", {":u": {"S": user}})
        return removed

    async def set_topics(self, user: str, device_id: str, topics: Iterable[str]) -> Device | None:
        """Replace a device's consented topics; ``None`` if the user holds no such device."""
        check_user("set_topics", user)
        valid = check_device_id("set_topics", device_id)
        checked = check_topics(topics)
        if not valid:
            return None
        try:
            answer = await self._call(
                "UpdateItem",
                Key=self._dev(device_id),
                UpdateExpression="SET k = :k ADD v :one",
                ConditionExpression="u = :u",
                ExpressionAttributeValues={
                    ":k": {"S": topics_json(checked)},
                    ":u": {"S": user},
                    ":one": {"N": "1"},
                },
                ReturnValues="ALL_NEW",
            )
        except _Conflict:
            return None
        return _device(device_id, answer["Attributes"])

    async def touch(self, device_id: str, now: float) -> bool:
        """Record that the device was seen at ``now``; ``False`` if it does not exist."""
        at = check_time("touch", "now", now)
        if not check_device_id("touch", device_id):
            return False
        try:
            await self._call(
                "UpdateItem",
                Key=self._dev(device_id),
                UpdateExpression="SET s = :now ADD v :one",
                ConditionExpression="s < :now",
                ExpressionAttributeValues={":now": num(at), ":one": {"N": "1"}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except _Conflict as conflict:
            return conflict.item is not None  # seen later already, or no such device
        return True

    async def remove_if_not_registered_since(self, device_id: str, timestamp: float) -> bool:
        """Remove the device unless registered after ``timestamp``; tell if removed."""
        at = check_time("remove_if_not_registered_since", "timestamp", timestamp)
        if not check_device_id("remove_if_not_registered_since", device_id):
            return False
        return await self._delete(device_id, "r <= :at", {":at": num(at)})

    async def prune(self, *, seen_before: float, limit: int = 1000) -> int:
        """Remove up to ``limit`` devices last seen before ``seen_before``, oldest first."""
        at = check_time("prune", "seen_before", seen_before)
        check_prune_limit(limit)
        start = len(f"{self._p}#dev#")
        removed = 0
        page: dict[str, Any] = {}
        while removed < limit:
            answer = await self._call(
                "Query",
                IndexName="seen",
                KeyConditionExpression="g = :g AND s < :at",
                ExpressionAttributeValues={":g": {"S": f"{self._p}#seen"}, ":at": num(at)},
                Limit=limit - removed,
                **page,
            )
            for item in answer.get("Items", []):
                removed += await self._delete(item["pk"]["S"][start:], "s < :at", {":at": num(at)})
            if "LastEvaluatedKey" not in answer:
                break
            page = {"ExclusiveStartKey": answer["LastEvaluatedKey"]}
        return removed


_METHODS = {
    "GetItem": "get_item",
    "PutItem": "put_item",
    "UpdateItem": "update_item",
    "DeleteItem": "delete_item",
    "Query": "query",
}


class _Conflict(Exception):
    """A condition failed; ``item`` is the item as it was (when DynamoDB returned it)."""

    def __init__(self, item: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.item = item
