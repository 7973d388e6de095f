"""Where the gateway's client subscriptions live: one pattern index for all of them.

Each distinct pattern (or filter) becomes one :class:`Group`, held once in a
:class:`~eventpatterns.filters.PatternIndex` under its key, however many connections
subscribe with it; every subscription is a :class:`Route` in its group. Routing an
event is one index match (its cost follows the event's partial matches, not the
number of patterns or subscriptions) plus one step per recipient.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..bus._replay import ReplayMerge
from ..filters import Limits as PatternLimits
from ..filters import Matcher, PatternIndex
from ..filters import compile as compile_pattern

if TYPE_CHECKING:
    from ._connection import Connection

__all__ = ["Group", "Route", "Routes"]


class Route:
    """One client subscription: its connection, id, group, and delivery state.

    Attributes:
        direct: Active and on the direct path (not replaying).
        position: The last position delivered to the client (resume point).
        merge: While the subscription replays history, the merge holding live entries;
            ``None`` once it is on the direct path.
        active: False once it was removed (a fan-out in progress skips it).
    """

    __slots__ = (
        "active", "conn", "dialect", "direct", "group", "id", "key", "merge", "out",
        "position", "presence", "profile", "transport", "watch",
    )  # fmt: skip

    def __init__(self, conn: Connection, sid: str, group: Group, position: str | None) -> None:
        self.conn = conn
        self.id = sid
        self.group = group
        self.position = position
        self.merge: ReplayMerge | None = None
        self.active = True
        #: Active and not replaying: the fan-out's one test per recipient.
        self.direct = True
        # Copied from the connection for the fan-out's hot loop.
        self.transport = conn.transport
        self.dialect = conn.dialect
        #: Pre-built WebSocket frames go there (bytes); ``None``: ``transport.send``.
        self.out = conn.frames
        #: Recipients with equal keys get the very same encoded frame: ``b<id>`` bytes
        #: of a whole WebSocket frame, ``w<id>`` its text, ``s`` an SSE message.
        if conn.dialect != "ws":
            self.key = "s"
        else:
            self.key = f"w{sid}" if self.out is None else f"b{sid}"
        shaper = conn.gateway.profiles
        #: The client profile its frames are shaped for (``None``: no profiles).
        self.profile: Any = None if shaper is None else shaper.profile_of(conn.principal)
        if self.profile is not None:
            self.key = f"{self.profile.name}|{self.key}"
        self.presence: str | None = None  # the presence channel joined with it
        self.watch = False  # whether it gets that channel's presence frames


class Group:
    """The subscriptions sharing one pattern."""

    __slots__ = ("_members", "key", "matcher", "routes")

    def __init__(self, key: str, matcher: Matcher | None) -> None:
        self.key = key
        self.matcher = matcher
        self.routes: dict[int, Route] = {}
        self._members: tuple[Route, ...] | None = ()

    def add(self, route: Route) -> None:
        """Add a route (a fan-out in progress does not see it)."""
        self.routes[id(route)] = route
        self._members = None

    def discard(self, route: Route) -> None:
        """Remove a route."""
        if self.routes.pop(id(route), None) is not None:
            self._members = None

    def members(self) -> tuple[Route, ...]:
        """The routes, as a snapshot that later changes leave alone."""
        members = self._members
        if members is None:
            members = self._members = tuple(self.routes.values())
        return members


def canonical(pattern: Mapping[str, Any] | None, spec: Mapping[str, Any] | None) -> str:
    """The key of a pattern or filter: equal ones share a group."""
    if spec is not None:
        return "f" + json.dumps(spec, sort_keys=True, separators=(",", ":"), default=str)
    if pattern is None:
        return "*"
    return "p" + json.dumps(pattern, sort_keys=True, separators=(",", ":"), default=str)


class Routes:
    """Every live client subscription of a gateway, grouped by pattern and indexed.

    Args:
        limits: Bounds on patterns (the filter engine's).
    """

    def __init__(self, limits: PatternLimits) -> None:
        self.limits = limits
        self.index: PatternIndex[str] = PatternIndex(limits=limits)
        self.groups: dict[str, Group] = {}
        #: The group of subscriptions without a pattern: every event (not indexed).
        self.everything = Group("*", None)
        self.count = 0

    def group_for(self, pattern: Mapping[str, Any] | None, spec: Mapping[str, Any] | None) -> Group:
        """Return the group of a pattern or filter, compiling and indexing it if new.

        Raises:
            InvalidPattern: It does not compile (the message names the path).
        """
        key = canonical(pattern, spec)
        if key == "*":
            return self.everything
        group = self.groups.get(key)
        if group is None:
            source = spec if spec is not None else pattern
            matcher = compile_pattern(dict(source or {}), limits=self.limits)
            group = Group(key, matcher)
            self.index.add(key, matcher)
            self.groups[key] = group
        return group

    def add(self, route: Route) -> None:
        """Start routing to ``route``."""
        route.group.add(route)
        self.count += 1

    def remove(self, route: Route) -> None:
        """Stop routing to ``route`` (idempotent); drop its group once empty."""
        if not route.active:
            return
        route.active = route.direct = False
        group = route.group
        group.discard(route)
        self.count -= 1
        if not group.routes and group is not self.everything:
            # A group being set up has no route yet; it is dropped with its first one.
            self.groups.pop(group.key, None)
            self.index.discard(group.key)

    def drop_if_unused(self, group: Group) -> None:
        """Forget a group created for a subscription that did not start."""
        if not group.routes and group is not self.everything:
            self.groups.pop(group.key, None)
            self.index.discard(group.key)
