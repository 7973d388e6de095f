"""SQS receive, with visibility that also follows the backend's injected clock.

SQS keeps a delivery invisible for its visibility timeout in real time, across every
process. The contract also wants visibility timeouts and retry delays to follow the
backend's clock (so that tests drive them with a manual clock): each delivery this
backend object hands out is a :class:`Lease` with a due time on that clock, and when
the clock passes it *before* SQS's own timer would fire, the backend makes the
message visible again itself (``ChangeMessageVisibility`` to 0). With the system
clock both timers agree and no extra call is made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from ._client import ClientPool, aws_errors

__all__ = ["Lease", "Leases", "MAX_VISIBILITY", "change_visibility", "delete_messages"]

MAX_VISIBILITY = 43200  #: SQS's largest visibility timeout (12 hours)


@dataclass(slots=True)
class Lease:
    """One delivery handed out: where, which message, until when."""

    group: str
    queue_url: str
    message_id: str
    body: str
    attempt: int
    due: float  # on the backend's clock
    real_due: float  # anyio.current_time() when SQS itself makes it visible


class Leases:
    """The deliveries this backend object handed out and has not settled yet."""

    def __init__(self) -> None:
        self.by_receipt: dict[str, Lease] = {}
        self.last_error: dict[tuple[str, str], str] = {}
        self._receipt_of: dict[tuple[str, str], str] = {}  # (group, message id) -> receipt

    def add(self, receipt: str, lease: Lease) -> None:
        """Record a delivery; an older receipt of the same message is forgotten."""
        key = (lease.group, lease.message_id)
        old = self._receipt_of.get(key)
        if old is not None and old != receipt:
            self.by_receipt.pop(old, None)
        self._receipt_of[key] = receipt
        self.by_receipt[receipt] = lease

    def _drop(self, receipt: str) -> Lease:
        lease = self.by_receipt.pop(receipt)
        key = (lease.group, lease.message_id)
        if self._receipt_of.get(key) == receipt:
            del self._receipt_of[key]
        return lease

    def pop(self, group: str, receipt: str) -> Lease | None:
        """Settle a delivery of ``group``: return it, or ``None`` if unknown."""
        lease = self.by_receipt.get(receipt)
        if lease is None or lease.group != group:
            return None
        return self._drop(receipt)

    def due(self, group: str, now: float) -> list[tuple[str, Lease]]:
        """Take the leases the clock ended before SQS will (``now`` on the clock).

        Leases SQS already ended in real time are dropped (their message is visible).
        """
        real_now = anyio.current_time()
        out: list[tuple[str, Lease]] = []
        for receipt, lease in list(self.by_receipt.items()):
            if lease.group != group:
                continue
            if lease.real_due <= real_now:
                if lease.real_due + 3600 <= real_now:
                    self._drop(receipt)  # long over: nobody will settle it
                continue
            if lease.due <= now:
                out.append((receipt, self._drop(receipt)))
        return out

    def forget_group(self, group: str) -> None:
        """Drop every lease and note of ``group`` (it was torn down)."""
        for receipt, lease in list(self.by_receipt.items()):
            if lease.group == group:
                self._drop(receipt)
        for key in [k for k in self.last_error if k[0] == group]:
            del self.last_error[key]


def seconds(value: float) -> int:
    """Round a delay up to SQS's whole seconds, within 0..12 hours."""
    return max(0, min(MAX_VISIBILITY, math.ceil(value)))


async def change_visibility(
    pool: ClientPool, queue_url: str, changes: Sequence[tuple[str, int]], *, resource: str
) -> None:
    """Set visibility timeouts, 10 per ``ChangeMessageVisibilityBatch`` request.

    Entries that fail (a receipt SQS no longer honours) are ignored: the message is
    visible again or already deleted either way.
    """
    sqs = await pool.client("sqs")
    for start in range(0, len(changes), 10):
        chunk = changes[start : start + 10]
        with aws_errors("ChangeMessageVisibilityBatch", resource=resource):
            await sqs.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": v}
                    for i, (r, v) in enumerate(chunk)
                ],
            )


async def delete_messages(
    pool: ClientPool, queue_url: str, receipts: Sequence[str], *, resource: str
) -> None:
    """Delete messages, 10 per ``DeleteMessageBatch`` request (unknown ones ignored)."""
    sqs = await pool.client("sqs")
    for start in range(0, len(receipts), 10):
        chunk = receipts[start : start + 10]
        with aws_errors("DeleteMessageBatch", resource=resource):
            await sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": r} for i, r in enumerate(chunk)],
            )


async def receive_slice(
    pool: ClientPool,
    queue_url: str,
    *,
    max_count: int,
    visibility: int,
    wait: int,
    resource: str,
) -> list[dict[str, Any]]:
    """One ``ReceiveMessage`` long poll, finished even if the caller is cancelled.

    SQS cannot take back what it handed to a request that went away, so the request
    is shielded; when the caller was cancelled meanwhile, what it got is made
    visible again before the cancellation goes on: a cancelled wait takes nothing.
    """
    sqs = await pool.client("sqs")
    with anyio.CancelScope(shield=True):
        with aws_errors("ReceiveMessage", resource=resource):
            response = await sqs.receive_message(
                QueueUrl=queue_url,
                MaxNumberOfMessages=max(1, min(10, max_count)),
                VisibilityTimeout=visibility,
                WaitTimeSeconds=wait,
                MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                MessageAttributeNames=["All"],
            )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    # A long poll returns as soon as one message is there; publishers' batches land a
    # message at a time, so top up without waiting while messages keep coming.
    while messages and len(messages) < max_count:
        with anyio.CancelScope(shield=True):
            with aws_errors("ReceiveMessage", resource=resource):
                more = await sqs.receive_message(
                    QueueUrl=queue_url,
                    MaxNumberOfMessages=max(1, min(10, max_count - len(messages))),
                    VisibilityTimeout=visibility,
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
                    MessageAttributeNames=["All"],
                )
        if not more.get("Messages"):
            break
        messages.extend(more["Messages"])
    try:
        await anyio.lowlevel.checkpoint_if_cancelled()
    except anyio.get_cancelled_exc_class():
        if messages:
            with anyio.CancelScope(shield=True), anyio.move_on_after(10):
                await change_visibility(
                    pool, queue_url, [(m["ReceiptHandle"], 0) for m in messages], resource=resource
                )
        raise
    return messages
