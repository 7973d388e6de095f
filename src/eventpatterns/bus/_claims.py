"""The claim check: large event data goes to a blob store, the event carries a reference.

Every transport has a size limit (EventBridge and SQS 256 KB, AppSync Events 240 KB, API
Gateway WebSocket frames 32 KB). With a :class:`ClaimCheck`, an event whose JSON is over
``threshold`` (or over the backend's ``max_message_size``) is published with its data in
the :class:`~eventpatterns.jobs.BlobStore` and a CloudEvents ``dataref`` attribute
(``urn:eventpatterns:blob:<key>``) instead; subscribers and consumers of the same bus get
the data back transparently, unless they opt out (``fetch_claims=False``) and read
``dataref`` themselves. Without a claim check, an event over the backend's limit is
refused at publish with :class:`~eventpatterns.errors.EventTooLarge`, never dropped later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..core import Event, is_json_content_type
from ..errors import BlobNotFound, ConfigurationError
from ._subscription import Subscription

if TYPE_CHECKING:
    from ..jobs import BlobStore

__all__ = ["DATAREF", "DATAREF_PREFIX", "ClaimCheck", "ClaimedSubscription"]

logger = logging.getLogger("eventpatterns.bus")

#: The CloudEvents extension attribute naming where the data is.
DATAREF = "dataref"
#: How a claim check's ``dataref`` starts; the blob's key follows.
DATAREF_PREFIX = "urn:eventpatterns:blob:"


class ClaimCheck:
    """Offload large event data to a blob store at publish, fetch it back on receipt.

    Args:
        blobs: Where the data goes (memory, filesystem, S3...).
        threshold: Events whose JSON is larger than this many bytes are offloaded.
        prefix: Prepended to the blobs' keys.
        ttl: Seconds a blob is kept: at least as long as the bus keeps its events
            (``None``: until deleted).

    Publishing measures each event's JSON once more (only on a bus with a claim check).
    """

    def __init__(
        self,
        blobs: BlobStore,
        *,
        threshold: int = 128 * 1024,
        prefix: str = "claims/",
        ttl: float | None = 7 * 24 * 3600.0,
    ) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ConfigurationError(f"threshold must be an int >= 1 byte, got {threshold!r}")
        if ttl is not None and not (
            isinstance(ttl, int | float)
            and not isinstance(ttl, bool)
            and math.isfinite(ttl)
            and ttl > 0
        ):
            raise ConfigurationError(f"ttl must be positive seconds or None, got {ttl!r}")
        self.blobs = blobs
        self.threshold = threshold
        self.prefix = prefix
        self.ttl = ttl
        #: Events offloaded and fetched back by this process (for tests and metrics).
        self.offloaded = 0
        self.fetched = 0

    def key(self, event: Event) -> str:
        """Return the blob key of an event's data (a digest: ids may hold any character)."""
        return self.prefix + hashlib.sha256(f"{event.source}\n{event.id}".encode()).hexdigest()

    async def offload(self, event: Event, *, limit: int | None) -> Event:
        """Return ``event``, or a copy with its data in the blob store if it is too large."""
        if event.data is None or DATAREF in event.extensions:
            return event
        size = len(event.to_json())
        if size <= self.threshold and (limit is None or size <= limit):
            return event
        data = event.data
        if isinstance(data, bytes):
            raw, content_type = data, event.datacontenttype or "application/octet-stream"
        elif isinstance(data, str) and not is_json_content_type(event.datacontenttype):
            raw, content_type = data.encode("utf-8"), event.datacontenttype or "text/plain"
        else:
            raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            content_type = event.datacontenttype or "application/json"
        key = self.key(event)
        await self.blobs.put(key, raw, content_type=content_type, ttl=self.ttl)
        self.offloaded += 1
        return event.model_copy(
            update={"data": None, "extensions": {**event.extensions, DATAREF: DATAREF_PREFIX + key}}
        )

    async def fetch(self, event: Event) -> Event:
        """Return ``event`` with its data fetched back, if it carries this check's ``dataref``.

        Raises:
            BlobNotFound: The blob is gone (it expired before the event was handled).
        """
        ref = event.extensions.get(DATAREF)
        if not isinstance(ref, str) or not ref.startswith(DATAREF_PREFIX):
            return event
        blob = await self.blobs.get(ref[len(DATAREF_PREFIX) :])
        data: Any
        if is_json_content_type(blob.content_type):
            data = json.loads(blob.data)
        elif blob.content_type.startswith("text/"):
            data = blob.data.decode("utf-8")
        else:
            data = blob.data
        self.fetched += 1
        return event.model_copy(update={"data": data})

    def wrap(self, handler: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        """Wrap a consumer's handler (of one event or a list) to get fetched events."""

        async def one(event: Event) -> Any:
            return await handler(await self.fetch(event))

        return one

    def wrap_batch(
        self, handler: Callable[[list[Event]], Awaitable[Any]]
    ) -> Callable[[list[Event]], Awaitable[Any]]:
        """Wrap a batch handler to get fetched events."""

        async def many(events: list[Event]) -> Any:
            return await handler([await self.fetch(e) for e in events])

        return many


class ClaimedSubscription(Subscription):
    """A subscription that fetches claim-checked data back before handing events out."""

    def __init__(self, *args: Any, claims: ClaimCheck, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._claims = claims

    async def _fetched(self, event: Event) -> Event:
        try:
            return await self._claims.fetch(event)
        except BlobNotFound:
            logger.warning(
                "event %s: its claim-checked data is gone (%s); delivered without it",
                event.id,
                event.extensions.get(DATAREF),
            )
            return event

    async def receive(self) -> Event:
        """Return the next matching event, its data fetched back (see :class:`Subscription`)."""
        return await self._fetched(await super().receive())

    async def __anext__(self) -> Event:
        return await self._fetched(await super().__anext__())
