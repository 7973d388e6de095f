"""Resume: replay the log after a client's position, then join the direct path.

The gateway's subscription with ``since`` gets a :class:`~eventpatterns.bus._replay.
ReplayMerge`: the live entries routed to it while it replays wait there (or are re-read
from the log when too many arrive), and it joins the shared direct path once the merge
is live and drained, with no await in between, so there is no gap and no duplicate.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import anyio

from ..bus import EARLIEST, LogEntry
from ..bus._replay import Gap, Need, ReplayMerge
from ..errors import (
    BackendUnavailable,
    BusClosed,
    InvalidPosition,
    PositionExpired,
    StalePosition,
)
from ._frames import ErrorCode, encode_event
from ._protocol import State
from ._routing import Group, Route

if TYPE_CHECKING:
    from ._connection import Connection
    from ._gateway import Gateway

__all__ = ["deliver", "read_page", "resume"]

logger = logging.getLogger("eventpatterns.realtime")
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


async def deliver(gateway: Gateway, route: Route, entry: LogEntry) -> bool:
    """Queue one replayed event for one route, paced by the client.

    History is pulled from the log, so a replay can wait for the client to read
    (live entries meanwhile wait in the merge, or are re-read from the log): it
    waits until the buffer is half empty, up to ``limits.send_timeout`` seconds,
    before the slow-client policy applies.
    """
    conn = route.conn
    shaper = gateway.profiles
    if shaper is None:
        raw = _DUMPS(entry.event.to_dict())
    else:
        shaped = shaper.encode(route.profile, entry.event)
        if shaped is None:  # not shown to this profile: nothing to send, not a failure
            return True
        raw = shaped
    frame = encode_event(conn.dialect, route.id, entry.position, raw)
    transport = conn.transport
    limit = gateway.limits.max_buffered
    if transport.buffered_amount() + len(frame) > limit:
        with anyio.move_on_after(gateway.limits.send_timeout):
            # Polled: the Transport seam has no drain notification (kept minimal:
            # three non-blocking methods); this runs only for a replay that is ahead.
            while transport.buffered_amount() > limit // 2 and route.active:  # noqa: ASYNC110
                await anyio.sleep(0.005)
        if not route.active:
            return False
    if transport.buffered_amount() + len(frame) > limit:
        gateway._counts["dropped"] += 1
        gateway._slow(route)
        return False
    transport.send(frame)
    route.position = entry.position
    gateway._counts["delivered"] += 1
    return True


async def resume(
    gateway: Gateway,
    conn: Connection,
    sid: str,
    group: Group,
    since: str,
    presence: str | None = None,
    *,
    watch: bool = False,
) -> None:
    """Replay the log after ``since`` to a new route, then put it on the direct path.

    Live entries routed to it meanwhile are held in a :class:`ReplayMerge`, which
    goes live only after a page read that began after the last one it dropped
    came back empty; it drops the held entries the replay already covered, so
    there is no gap and no duplicate (see ``eventpatterns.bus._replay``).
    """
    protocol = conn.protocol
    backend = gateway.bus.backend
    after = None if since == EARLIEST else since
    if after is not None:
        try:
            backend.sort_key(after)
        except StalePosition:
            refuse_position(gateway, conn, sid, "stale_position")
            return
        except InvalidPosition:
            refuse_position(gateway, conn, sid, "invalid_position")
            return
    merge = ReplayMerge(
        backend.sort_key, buffer=gateway.limits.replay_buffer, overflow="drop_oldest"
    )
    merge.start_replay(after)
    route = Route(conn, sid, group, after)
    route.merge = merge
    route.direct = False
    conn.routes[sid] = route
    gateway._routes.add(route)
    gateway._presence_join(route, presence, watch=watch)
    if not await read_page(gateway, route):
        return
    if not route.active or protocol.state is not State.OPEN:
        return
    protocol.confirm(sid, since)
    conn._flush()
    while route.active:
        item = merge.next()
        if isinstance(item, LogEntry):
            if not await deliver(gateway, route, item):
                return
        elif item is Need.PAGE:
            if not await read_page(gateway, route):
                return
        elif isinstance(item, Gap):  # pragma: no cover - the merge is drained at once
            gateway._end_route(route, "overflow")
            return
        elif caught_up(gateway, merge):
            # Live, every held entry handed out, and the bus's reader has routed past
            # what the replay read: join the direct path (no await in between).
            route.merge = None
            route.direct = route.active
            return
        else:
            # The replay read the log ahead of the bus's reader (it lags the log, e.g.
            # on Redis): entries it has yet to route were replayed already. Stay in the
            # merge, which drops those, until the reader has passed them.
            await anyio.sleep(0.005)


def caught_up(gateway: Gateway, merge: ReplayMerge) -> bool:
    """Tell whether the gateway's reader has routed every entry the replay read."""
    read = merge.position
    if read is None:  # nothing replayed or read: the reader's entries are all new
        return True
    head = gateway._head
    if head is None:
        return False
    key = gateway.bus.backend.sort_key
    return key(head) >= key(read)


def refuse_position(gateway: Gateway, conn: Connection, sid: str, reason: str) -> None:
    gateway._counts["resyncs"] += 1
    conn.protocol.resync_required(sid, reason, None)


async def read_page(gateway: Gateway, route: Route) -> bool:
    merge = route.merge
    assert merge is not None  # noqa: S101 - only replaying routes read pages
    after = merge.page_after()
    reason: str | None = None
    try:
        page = await gateway.bus.backend.read(after, limit=gateway.limits.replay_page)
    except PositionExpired:
        reason = "position_expired"
    except StalePosition:
        reason = "stale_position"
    except InvalidPosition:
        reason = "invalid_position"
    except (BackendUnavailable, BusClosed) as exc:
        logger.warning("resuming subscription %s failed: %s", route.id, exc)
        conn = route.conn
        gateway._routes.remove(route)
        gateway._presence_release(route)
        conn.routes.pop(route.id, None)
        merge.close()
        if conn.protocol.subscriptions.get(route.id) == "pending":
            conn.protocol.refuse(route.id, ErrorCode.INTERNAL_ERROR, "the event log is unavailable")
        else:
            gateway._counts["resyncs"] += 1
            conn.protocol.resync_required(route.id, "overflow", route.position)
        conn._flush()
        return False
    if reason is not None:
        route.position = None
        gateway._end_route(route, reason)
        return False
    if not route.active:
        return False
    matcher = route.group.matcher
    matched = page if matcher is None else [e for e in page if matcher.matches(e.event.to_dict())]
    merge.replayed(matched, page[-1].position if page else None)
    return True
