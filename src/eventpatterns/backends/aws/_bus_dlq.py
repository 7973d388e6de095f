"""A consumer group's dead letters, kept in its SQS dead-letter queue.

SQS has no way to look at a queue without receiving from it: listing receives every
message of the DLQ (10 per request) with a short visibility timeout, then makes them
visible again. Listing, redriving and discarding of one group are serialized within
this backend object; two processes doing it at once hide messages from each other for
that time. A letter the façade dead-lettered carries its error, attempts and time in a
message attribute; one SQS moved there itself (``max_receives`` receives without a
settlement: a consumer crashing on it) says so in its error.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import anyio

from ...bus._contract import DeadLetter
from ...errors import DeadLetterNotFound
from ._bus_leases import Leases, change_visibility, delete_messages
from ._client import ClientPool, aws_errors
from ._eventbridge import decode_envelope, position_of

if TYPE_CHECKING:
    from ...core import Clock
    from ._sqs import GroupResources

__all__ = ["DeadLetterQueue"]

_ATTRIBUTE = "eventpatterns"


class DeadLetterQueue:
    """The DeadLetters role of :class:`~eventpatterns.backends.aws.AWSBusBackend`."""

    pool: ClientPool
    clock: Clock
    leases: Leases
    max_receives: int

    def __init__(self) -> None:
        self._dlq_locks: dict[str, anyio.Lock] = {}

    async def _group(self, group: str) -> GroupResources:
        raise NotImplementedError  # pragma: no cover - AWSBusBackend provides it

    async def dead_letter(self, group: str, receipt: str, *, error: str) -> DeadLetter:
        """Send the delivery's message to the DLQ with its error, then delete it.

        Two requests, not one transaction: a crash in between leaves the event both
        in the DLQ and pending (it is redelivered): at-least-once, never lost.

        Raises:
            LookupError: ``receipt`` is not a delivery this backend has pending.
        """
        resources = await self._group(group)
        lease = self.leases.pop(group, receipt)
        if lease is None:
            raise LookupError(f"no delivery {receipt!r} is pending in group {group!r}")
        envelope, event = decode_envelope(lease.body)
        failed_at = self.clock.time()
        note = {"error": error, "attempts": lease.attempt, "failed_at": failed_at}
        sqs = await self.pool.client("sqs")
        with aws_errors("SendMessage", resource=f"dead letters of group {group!r}"):
            sent = await sqs.send_message(
                QueueUrl=resources.dlq_url,
                MessageBody=lease.body,
                MessageAttributes={
                    _ATTRIBUTE: {"DataType": "String", "StringValue": json.dumps(note)}
                },
            )
        await delete_messages(
            self.pool, resources.queue_url, [receipt], resource=f"group {group!r}"
        )
        self.leases.last_error.pop((group, lease.message_id), None)
        return DeadLetter(
            id=sent["MessageId"],
            group=group,
            position=position_of(envelope),
            event=event,
            error=error,
            attempts=lease.attempt,
            failed_at=failed_at,
        )

    def _letter(self, group: str, message: dict[str, Any]) -> DeadLetter | None:
        try:
            envelope, event = decode_envelope(message["Body"])
        except Exception:
            return None
        raw = message.get("MessageAttributes", {}).get(_ATTRIBUTE, {}).get("StringValue")
        if raw is not None:
            note = json.loads(raw)
            error, attempts, failed_at = note["error"], note["attempts"], note["failed_at"]
        else:
            sent = int(message.get("Attributes", {}).get("SentTimestamp", "0"))
            attempts = self.max_receives
            error = (f"received {attempts} times without an ack, release or dead-letter "
                     "(a consumer crashing on it?): moved by the SQS redrive policy")  # fmt: skip
            failed_at = sent / 1000
        return DeadLetter(
            id=message["MessageId"],
            group=group,
            position=position_of(envelope),
            event=event,
            error=error,
            attempts=int(attempts),
            failed_at=float(failed_at),
        )

    async def _scan(self, resources: GroupResources) -> list[dict[str, Any]]:
        """Receive every DLQ message (hidden for 60 s); the caller makes them visible."""
        sqs = await self.pool.client("sqs")
        found: dict[str, dict[str, Any]] = {}
        while True:
            with aws_errors("ReceiveMessage", resource=f"dead letters of {resources.group!r}"):
                response = await sqs.receive_message(
                    QueueUrl=resources.dlq_url,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=60,
                    WaitTimeSeconds=0,
                    MessageSystemAttributeNames=["SentTimestamp"],
                    MessageAttributeNames=["All"],
                )
            batch = response.get("Messages", [])
            if not batch:
                return list(found.values())
            for message in batch:
                found[message["MessageId"]] = message

    async def _with_scan(
        self, group: str, ids: Sequence[str] | None, *, take: bool
    ) -> tuple[GroupResources, list[dict[str, Any]], list[DeadLetter]]:
        """Scan the DLQ, check ``ids`` and return the chosen messages (visible again after)."""
        resources = await self._group(group)
        messages = await self._scan(resources)
        chosen: list[dict[str, Any]] = []
        try:
            by_id = {m["MessageId"]: m for m in messages}
            if ids is not None:
                for wanted in ids:
                    if wanted not in by_id:
                        raise DeadLetterNotFound(group, wanted)
                chosen = [by_id[i] for i in dict.fromkeys(ids)]
            else:
                chosen = messages
            letters = [x for x in (self._letter(group, m) for m in messages) if x is not None]
            if not take:
                chosen = []
            return resources, chosen, letters
        finally:
            rest = [m for m in messages if m not in chosen]
            if rest:
                with anyio.CancelScope(shield=True):
                    await change_visibility(
                        self.pool, resources.dlq_url, [(m["ReceiptHandle"], 0) for m in rest],
                        resource=f"dead letters of {group!r}",
                    )  # fmt: skip

    def _lock(self, group: str) -> anyio.Lock:
        return self._dlq_locks.setdefault(group, anyio.Lock())

    async def dead_letters(self, group: str, *, limit: int) -> list[DeadLetter]:
        """List up to ``limit`` dead letters, oldest first (by when they failed)."""
        async with self._lock(group):
            _, _, letters = await self._with_scan(group, None, take=False)
        letters.sort(key=lambda letter: letter.failed_at)
        return letters[:limit]

    async def redrive(self, group: str, ids: Sequence[str] | None) -> int:
        """Send dead letters to the group's queue again (attempts start at 1)."""
        async with self._lock(group):
            resources, chosen, _ = await self._with_scan(group, ids, take=True)
            sqs = await self.pool.client("sqs")
            for message in chosen:
                with aws_errors("SendMessage", resource=f"group {group!r}"):
                    await sqs.send_message(
                        QueueUrl=resources.queue_url, MessageBody=message["Body"]
                    )
            await delete_messages(
                self.pool, resources.dlq_url, [m["ReceiptHandle"] for m in chosen],
                resource=f"dead letters of {group!r}",
            )  # fmt: skip
        return len(chosen)

    async def discard_dead_letters(self, group: str, ids: Sequence[str] | None) -> int:
        """Delete dead letters for good (``DeleteMessageBatch``)."""
        async with self._lock(group):
            resources, chosen, _ = await self._with_scan(group, ids, take=True)
            await delete_messages(
                self.pool, resources.dlq_url, [m["ReceiptHandle"] for m in chosen],
                resource=f"dead letters of {group!r}",
            )  # fmt: skip
        return len(chosen)
