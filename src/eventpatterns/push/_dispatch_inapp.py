"""In-app first, ack-or-escalate, and the jobs seam of the push dispatcher.

A user *connected* to the real-time gateway is present on the channel
``user:<id>`` (:func:`user_channel`; the gateway or the app joins each of the user's
connections there, member = the user id). For such a user the dispatcher publishes
the notification on the bus as an ``eventpatterns.push.inapp`` event whose
``data.userId`` is the user, so a gateway subscription narrowed by
``owner_only("data.userId")`` delivers it to that user only. The client shows it and
acks by publishing ``eventpatterns.push.ack`` with ``data: {"id": <notification id>,
"userId": <user>}`` (or the app's HTTP route calls :meth:`PushDispatcher.ack`). No ack
within ``ack_timeout`` and the notification is pushed to the devices after all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from ..bus import EventBus, Gap
from ..core import Clock, Event
from ..errors import EventPatternsError
from ._notification import Notification

if TYPE_CHECKING:
    from ..realtime import Presence

__all__ = [
    "ACK_TYPE",
    "INAPP_TYPE",
    "JOB_TYPES",
    "SOURCE",
    "InApp",
    "job_notification",
    "parse_ack",
    "user_channel",
]

logger = logging.getLogger("eventpatterns.push")

#: The type of the event an in-app notification is published as.
INAPP_TYPE = "eventpatterns.push.inapp"
#: The type of the event a client acks an in-app notification with.
ACK_TYPE = "eventpatterns.push.ack"
#: The ``source`` of the dispatcher's events.
SOURCE = "/eventpatterns/push"
#: The job events sent through the dispatcher by :meth:`PushDispatcher.notify_jobs`.
JOB_TYPES = ("eventpatterns.job.succeeded", "eventpatterns.job.failed")


def user_channel(user: str) -> str:
    """Return the presence channel that tells whether ``user`` is connected.

    Example:
        >>> user_channel("alice")
        'user:alice'
    """
    return f"user:{user}"


@dataclass(slots=True)
class _Waiting:
    user: str
    notification: Notification
    acked: anyio.Event = field(default_factory=anyio.Event)
    escalated: bool = False


class InApp:
    """The in-app half of the dispatcher: presence, publishing, acks, deadlines."""

    def __init__(
        self,
        bus: EventBus,
        presence: Presence,
        *,
        clock: Clock,
        channel: Callable[[str], str],
        ack_timeout: float,
        escalate: Callable[[str, Notification, str], Awaitable[object]],
    ) -> None:
        self.bus = bus
        self.presence = presence
        self._clock = clock
        self._channel = channel
        self._ack_timeout = ack_timeout
        self._escalate = escalate
        self.waiting: dict[str, _Waiting] = {}

    async def online(self, user: str) -> bool:
        """Tell whether ``user`` has a connection on their presence channel.

        A presence that cannot answer counts as offline: the notification is pushed
        rather than lost.
        """
        try:
            return await self.presence.count(self._channel(user)) > 0
        except EventPatternsError as exc:
            logger.warning("presence unavailable for %r, pushing instead: %s", user, exc)
            return False

    async def publish(
        self, tg: anyio.abc.TaskGroup, user: str, notification: Notification, nid: str
    ) -> bool:
        """Publish the in-app event and start its ack deadline; tell if it was published.

        A bus that cannot take it gives ``False`` (the caller pushes instead).
        """
        waiting = _Waiting(user, notification)
        self.waiting[nid] = waiting  # before publishing: an ack may come back at once
        try:
            await self.bus.publish(
                Event(
                    type=INAPP_TYPE,
                    source=SOURCE,
                    subject=nid,
                    data={
                        "id": nid,
                        "userId": user,
                        "title": notification.title,
                        "body": notification.body,
                        "data": dict(notification.data),
                        "topic": notification.topic,
                        "urgency": notification.urgency,
                    },
                )
            )
        except EventPatternsError as exc:
            del self.waiting[nid]
            logger.warning("cannot publish in-app notification %s, pushing: %s", nid, exc)
            return False
        # The deadline is fixed now, not when the task first runs.
        tg.start_soon(self._deadline, nid, waiting, self._clock.time() + self._ack_timeout)
        return True

    async def _deadline(self, nid: str, waiting: _Waiting, deadline: float) -> None:
        async with anyio.create_task_group() as tg:

            async def timer() -> None:
                await self._clock.sleep(max(0.0, deadline - self._clock.time()))
                tg.cancel_scope.cancel()

            tg.start_soon(timer)
            await waiting.acked.wait()
            tg.cancel_scope.cancel()
        if not waiting.acked.is_set():
            waiting.escalated = True  # an ack from now on is too late
            await self._escalate(waiting.user, waiting.notification, nid)
        # Not in a finally: cancelled (the dispatcher closing), it stays listed, and
        # the dispatcher dead-letters it.
        self.waiting.pop(nid, None)

    def apply_ack(self, user: str, nid: str) -> bool:
        """Mark ``nid`` acknowledged if it waits for ``user``'s ack; tell if it did."""
        waiting = self.waiting.get(nid)
        if waiting is None or waiting.user != user or waiting.escalated or waiting.acked.is_set():
            return False
        waiting.acked.set()
        return True

    async def listen(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Apply every ack published on the bus (by clients or other processes)."""
        async with self.bus.subscribe({"type": [ACK_TYPE]}) as sub:
            task_status.started()
            async for item in sub.items():
                if isinstance(item, Gap):
                    continue  # a missed ack only means a push after the deadline
                ack = parse_ack(item.data)
                if ack is not None:
                    self.apply_ack(*ack)

    async def publish_ack(self, user: str, nid: str) -> None:
        """Publish the ack, so that the dispatcher waiting for it (any process) sees it."""
        await self.bus.publish(
            Event(type=ACK_TYPE, source=SOURCE, subject=nid, data={"id": nid, "userId": user})
        )


def parse_ack(data: object) -> tuple[str, str] | None:
    """Return ``(user, notification id)`` from an ack event's data, or ``None``.

    The data comes from clients: anything but ``{"id": str, "userId": str}`` is ignored.

    Example:
        >>> parse_ack({"id": "n1", "userId": "alice"})
        ('alice', 'n1')
    """
    if not isinstance(data, dict):
        return None
    nid, user = data.get("id"), data.get("userId")
    if isinstance(nid, str) and isinstance(user, str) and nid and user:
        return user, nid
    return None


def job_notification(event: Event, *, topic: str | None = None) -> tuple[str, Notification] | None:
    """Return ``(owner, notification)`` for a job's completion event, else ``None``.

    The owner comes from the ``jobowner`` extension; the idempotency key is the
    event's id (``<job id>.<version>``), so a redelivered event notifies nobody twice.

    Args:
        event: A bus event (any: other types give ``None``).
        topic: The consent topic of the notification (``None``: every device; a job
            the user started is transactional).
    """
    if event.type not in JOB_TYPES:
        return None
    owner = event.extensions.get("jobowner")
    if not isinstance(owner, str) or not owner:
        return None
    view: Any = event.data if isinstance(event.data, dict) else {}
    kind = str(view.get("kind", "job"))
    succeeded = event.type == JOB_TYPES[0]
    error = view.get("error")
    body = "Done." if succeeded else (str(error)[:200] if error else "It failed.")
    return owner, Notification(
        title=f"{kind} {'succeeded' if succeeded else 'failed'}",
        body=body,
        data={
            "jobId": str(view.get("id", event.subject or "")),
            "state": "succeeded" if succeeded else "failed",
        },
        topic=topic,
        collapse_key=f"job:{view.get('id', event.id)}"[:255],
        idempotency_key=f"job-event:{event.id}"[:255],
    )
