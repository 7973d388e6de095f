"""Shared DynamoDB plumbing of the device registry and presence: tables, items, retries."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import anyio

from ...errors import ConfigurationError
from ._client import aws_errors, error_code

__all__ = ["backoff", "check_names", "create_table", "is_conflict", "num"]


def check_names(table: object, prefix: object) -> None:
    """Refuse a table name or key prefix DynamoDB (or the key layout) cannot take."""
    if not isinstance(table, str) or not 3 <= len(table) <= 255:
        raise ConfigurationError(f"a DynamoDB table name has 3 to 255 characters: {table!r}")
    if not isinstance(prefix, str) or not prefix or "#" in prefix:
        raise ConfigurationError(f"prefix must be a non-empty string without '#': {prefix!r}")


def num(value: float) -> dict[str, str]:
    """A DynamoDB number that reads back as the same float."""
    return {"N": repr(float(value))}


def is_conflict(exc: BaseException) -> bool:
    """Tell whether ``exc`` is a failed condition (the caller re-reads and retries)."""
    return error_code(exc) == "ConditionalCheckFailedException"


async def backoff(attempt: int) -> None:
    """Sleep a little, randomly, before retrying a write that lost a race."""
    await anyio.sleep(random.uniform(0, 0.002 * min(attempt, 20)))  # noqa: S311


async def create_table(
    db: Any, table: str, *, indexes: Mapping[str, tuple[str, str, str]], ttl: str
) -> None:
    """Create ``table`` (key ``pk``, on-demand) with KEYS_ONLY ``indexes`` unless it exists.

    Args:
        db: The DynamoDB client.
        table: The table's name.
        indexes: Index name -> (hash attribute, range attribute, range type ``S``/``N``).
        ttl: The attribute DynamoDB's TTL reads.
    """
    attributes = {"pk": "S"}
    specs = []
    for name, (hash_key, range_key, range_type) in indexes.items():
        attributes[hash_key] = "S"
        attributes[range_key] = range_type
        specs.append(
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": hash_key, "KeyType": "HASH"},
                    {"AttributeName": range_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        )
    with aws_errors("CreateTable", resource=table):
        try:
            await db.create_table(
                TableName=table,
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[
                    {"AttributeName": k, "AttributeType": t} for k, t in attributes.items()
                ],
                GlobalSecondaryIndexes=specs,
                BillingMode="PAY_PER_REQUEST",
            )
        except Exception as exc:
            if error_code(exc) != "ResourceInUseException":
                raise
            return
        waiter = db.get_waiter("table_exists")
        await waiter.wait(TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        await db.update_time_to_live(
            TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl}
        )
