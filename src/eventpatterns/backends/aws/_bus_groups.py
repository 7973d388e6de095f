"""The ConsumerGroups role of the AWS bus: a rule, a queue and a DLQ per group.

Each group is an EventBridge rule (its pattern translated by ``_patterns``) targeting
the group's SQS queue; ``receive`` long-polls it, ``ack`` deletes in batches,
``release`` changes visibility, ``attempt`` is ``ApproximateReceiveCount``. Each
delivery is also a :class:`~._bus_leases.Lease` on the backend's clock.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import anyio

from ...bus._contract import Delivery, GroupStats, check_group_name
from ...errors import ConfigurationError
from ._bus_leases import Lease, Leases, change_visibility, delete_messages, receive_slice, seconds
from ._client import ClientPool, aws_errors
from ._eventbridge import decode_envelope, position_of
from ._patterns import to_eventbridge
from ._sqs import GroupResources

if TYPE_CHECKING:
    from ...core import Clock

__all__ = ["SQSGroups"]

logger = logging.getLogger("eventpatterns.bus.aws")


class SQSGroups:
    """The ConsumerGroups role of :class:`~eventpatterns.backends.aws.AWSBusBackend`."""

    pool: ClientPool
    clock: Clock
    leases: Leases
    prefix: str
    bus: str
    max_receives: int
    poll: int
    _groups: dict[str, GroupResources]
    _inflight: int

    def _check_open(self) -> None:
        raise NotImplementedError  # pragma: no cover - AWSBusBackend provides it

    async def _ensure_bus(self) -> None:
        raise NotImplementedError  # pragma: no cover - AWSBusBackend provides it

    def _slice(self, remaining: float) -> int:
        if remaining <= 0:
            return 0
        return int(min(self.poll, max(1, remaining)))

    async def _group(self, group: str) -> GroupResources:
        self._check_open()
        found = self._groups.get(group)
        if found is None:
            found = GroupResources.named(self.prefix, check_group_name(group))
            await found.require(self.pool)
            self._groups[group] = found
        return found

    async def create_group(
        self,
        group: str,
        *,
        start: Literal["earliest", "latest"],
        pattern: object = None,
    ) -> bool:
        """Create the group's rule, queue, DLQ and queue policy unless it exists.

        ``"earliest"`` is ``"latest"`` here: there is no history to start from.

        Args:
            group: The group's name.
            start: ``"earliest"`` or ``"latest"``.
            pattern: A filter pattern the rule applies (EventBridge filters before
                the queue, so unwanted events cost no SQS requests); ``None``: all.

        Raises:
            ConfigurationError: A bad name or ``start``.
            InvalidPattern: ``pattern`` cannot be expressed as an EventBridge rule.
        """
        self._check_open()
        check_group_name(group)
        if start not in ("earliest", "latest"):
            raise ConfigurationError(f"start must be 'earliest' or 'latest', got {start!r}")
        rule = to_eventbridge(pattern)
        resources = GroupResources.named(self.prefix, group)
        if await resources.lookup(self.pool):
            if not await resources.complete(self.pool, bus=self.bus):
                await self._ensure_bus()  # half created (a crash): mend its rule, target
                await resources.create(
                    self.pool, bus=self.bus, pattern=rule, max_receives=self.max_receives
                )
            self._groups[group] = resources
            return False
        await self._ensure_bus()
        await resources.create(
            self.pool, bus=self.bus, pattern=rule, max_receives=self.max_receives
        )
        self._groups[group] = resources
        return True

    async def delete_group(self, group: str) -> None:
        """Tear down the group: its rule, target, queue and DLQ (dead letters too)."""
        self._check_open()
        resources = GroupResources.named(self.prefix, check_group_name(group))
        await resources.delete(self.pool, bus=self.bus)
        self._groups.pop(group, None)
        self.leases.forget_group(group)

    async def receive(
        self,
        group: str,
        consumer: str,
        *,
        max_count: int,
        visibility_timeout: float,
        wait: float,
    ) -> list[Delivery]:
        """Long-poll the group's queue (at most 10 messages per call, SQS's limit)."""
        resources = await self._group(group)
        where = f"group {group!r}"
        deadline = anyio.current_time() + wait
        visibility = max(1, seconds(visibility_timeout))
        self._inflight += 1
        try:
            while True:
                self._check_open()
                await self._expire(resources)
                remaining = deadline - anyio.current_time()
                messages = await receive_slice(
                    self.pool, resources.queue_url, max_count=max_count,
                    visibility=visibility, wait=self._slice(remaining),
                    resource=where,
                )  # fmt: skip
                if messages or anyio.current_time() >= deadline:
                    break
        finally:
            self._inflight -= 1
        return self._deliveries(resources, messages, visibility_timeout, visibility)

    def _deliveries(
        self, resources: GroupResources, messages: list[dict[str, Any]], timeout: float, vis: int
    ) -> list[Delivery]:
        now, real_now = self.clock.time(), anyio.current_time()
        out = []
        for message in messages:
            try:
                envelope, event = decode_envelope(message["Body"])
            except Exception:
                logger.warning(
                    "aws:// group %r: a message is not a CloudEvent envelope", resources.group
                )
                continue
            attempt = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            receipt, message_id = message["ReceiptHandle"], message["MessageId"]
            self.leases.add(
                receipt,
                Lease(resources.group, resources.queue_url, message_id, message["Body"],
                      attempt, due=now + timeout, real_due=real_now + vis),
            )  # fmt: skip
            out.append(
                Delivery(
                    receipt=receipt,
                    position=position_of(envelope),
                    event=event,
                    attempt=attempt,
                    last_error=self.leases.last_error.get((resources.group, message_id)),
                )
            )
        return out

    async def _expire(self, resources: GroupResources) -> None:
        due = self.leases.due(resources.group, self.clock.time())
        if due:
            await change_visibility(
                self.pool, resources.queue_url, [(r, 0) for r, _ in due],
                resource=f"group {resources.group!r}",
            )  # fmt: skip

    async def ack(self, group: str, receipts: Sequence[str]) -> None:
        """Delete acknowledged messages (``DeleteMessageBatch``, 10 per request)."""
        resources = await self._group(group)
        known = []
        for receipt in receipts:
            lease = self.leases.pop(group, receipt)
            if lease is not None:
                known.append(receipt)
                self.leases.last_error.pop((group, lease.message_id), None)
        if known:
            await delete_messages(
                self.pool, resources.queue_url, known, resource=f"group {group!r}"
            )

    async def release(self, group: str, receipt: str, *, delay: float, error: str) -> None:
        """Hide the message for ``delay`` (``ChangeMessageVisibility``), noting ``error``."""
        resources = await self._group(group)
        lease = self.leases.pop(group, receipt)
        if lease is None:
            return
        hide = seconds(delay)
        await change_visibility(
            self.pool, resources.queue_url, [(receipt, hide)], resource=f"group {group!r}"
        )
        lease.due, lease.real_due = self.clock.time() + delay, anyio.current_time() + hide
        self.leases.add(receipt, lease)
        self.leases.last_error[(group, lease.message_id)] = error

    async def group_stats(self, group: str) -> GroupStats:
        """Counters from ``GetQueueAttributes`` of the queue and its DLQ (approximate).

        An idle reading (nothing visible, delayed or in flight) is taken twice: SQS
        counts a message whose visibility timeout ends during the request in neither
        number (seen on moto, where the two counts are computed a moment apart), and
        ``Consumer.drain()`` must not take that moment for the end of the work. A
        message that really is in the queue shows in the second reading, as visible
        or, once received, as in flight.
        """
        resources = await self._group(group)
        sqs = await self.pool.client("sqs")
        with aws_errors("GetQueueAttributes", resource=f"group {group!r}"):
            pending, lag = await _queue_counts(sqs, resources.queue_url)
            if pending == 0 and lag == 0:
                pending, lag = await _queue_counts(sqs, resources.queue_url)
            dead = (await sqs.get_queue_attributes(
                QueueUrl=resources.dlq_url, AttributeNames=_COUNTS))["Attributes"]  # fmt: skip
        return GroupStats(
            pending=pending,
            lag=lag,
            dead_letters=int(dead[_COUNTS[0]]) + int(dead[_COUNTS[1]]),
        )


_COUNTS = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
           "ApproximateNumberOfMessagesDelayed"]  # fmt: skip


async def _queue_counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    """``(in flight, visible + delayed)`` of one queue, from one ``GetQueueAttributes``."""
    found = (await sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=_COUNTS))[
        "Attributes"
    ]
    return int(found[_COUNTS[1]]), int(found[_COUNTS[0]]) + int(found[_COUNTS[2]])
