"""The state of one presence channel as DynamoDB stores it, and its changes (no I/O).

A channel is one item: its memberships, its sequence number and its latest events.
:class:`ChannelState` reads the item, applies changes (expiry first, as the contract
wants), and writes the item back; the caller puts it conditioned on the version read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from ...realtime._presence import PresenceEvent

__all__ = ["EVENTS_KEPT", "ChannelState", "events_after"]

#: Most events a channel item keeps for its listeners to read.
EVENTS_KEPT = 100
#: Most bytes of JSON those events take (older ones go first; the latest always stays).
EVENTS_BYTES = 64 * 1024


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@dataclass
class ChannelState:
    """One channel: member -> connection -> ``[info JSON, deadline]``, and its events."""

    channel: str
    version: int = 0
    seq: int = 0
    members: dict[str, dict[str, list[Any]]] = field(default_factory=dict)
    events: list[list[Any]] = field(default_factory=list)
    new: list[PresenceEvent] = field(default_factory=list)
    _before: str = "{}"

    @classmethod
    def of(cls, channel: str, item: dict[str, Any] | None) -> ChannelState:
        """Read the state from the channel's item (``None``: a channel never used)."""
        if not item:
            return cls(channel)
        members = item["m"]["S"]
        return cls(
            channel,
            version=int(item["v"]["N"]),
            seq=int(item["q"]["N"]),
            members=json.loads(members),
            events=json.loads(item["e"]["S"]),
            _before=members,
        )

    @property
    def changed(self) -> bool:
        """Whether anything was applied since it was read."""
        return bool(self.new) or _dumps(self.members) != self._before

    def _emit(self, event: PresenceEvent) -> None:
        self.seq += 1
        self.new.append(event)
        self.events.append(
            [self.seq, event.type, event.member, event.connection, _dumps(event.info),
             event.expired]
        )  # fmt: skip

    def expire(self, now: float) -> int:
        """Remove the memberships past their deadline; return how many members left."""
        due = sorted(
            (entry[1], member, connection)
            for member, connections in self.members.items()
            for connection, entry in connections.items()
            if entry[1] <= now
        )
        return sum(self.remove(member, connection, expired=True) for _, member, connection in due)

    def join(self, member: str, connection: str, info: str, deadline: float) -> bool:
        """Add or refresh a membership; ``True`` (and a join event) for a first connection."""
        connections = self.members.setdefault(member, {})
        first = not connections
        connections[connection] = [info, deadline]
        if first:
            self._emit(PresenceEvent("join", self.channel, member, connection, json.loads(info)))
        return first

    def remove(self, member: str, connection: str, *, expired: bool) -> bool:
        """Remove a membership; ``True`` (and a leave event) if it was the member's last."""
        connections = self.members.get(member, {})
        entry = connections.pop(connection, None)
        if entry is None or connections:
            return False
        del self.members[member]
        info = json.loads(entry[0])
        self._emit(PresenceEvent("leave", self.channel, member, connection, info, expired))
        return True

    def holders(self, connection: str) -> list[str]:
        """Return the members this connection is joined as."""
        return [m for m, connections in self.members.items() if connection in connections]

    def next_deadline(self) -> float | None:
        """The earliest deadline of a membership, or ``None`` when nobody is present."""
        deadlines = [e[1] for c in self.members.values() for e in c.values()]
        return min(deadlines) if deadlines else None

    def latest_deadline(self) -> float | None:
        """The latest deadline of a membership, or ``None`` when nobody is present."""
        deadlines = [e[1] for c in self.members.values() for e in c.values()]
        return max(deadlines) if deadlines else None

    def item_fields(self) -> dict[str, Any]:
        """The item's attributes that hold the state (the caller adds keys and version)."""
        kept = self.events[-EVENTS_KEPT:]
        while len(kept) > 1 and len(_dumps(kept).encode()) > EVENTS_BYTES:
            kept = kept[1:]
        self.events = kept
        return {
            "v": {"N": str(self.version + 1)},
            "q": {"N": str(self.seq)},
            "m": {"S": _dumps(self.members)},
            "e": {"S": _dumps(kept)},
        }


def events_after(
    channel: str, item: dict[str, Any] | None, seq: int
) -> tuple[int, int, list[PresenceEvent]]:
    """Return ``(last seq, how many were missed, events)`` of ``item`` after ``seq``."""
    if not item:
        return seq, 0, []
    latest = int(item["q"]["N"])
    if latest <= seq:  # nothing new (or a stale read of an older version)
        return seq, 0, []
    fresh = [e for e in json.loads(item["e"]["S"]) if e[0] > seq]
    missed = (fresh[0][0] - seq - 1) if fresh else latest - seq
    out = [
        PresenceEvent(kind, channel, member, connection, json.loads(info), bool(expired))
        for _, kind, member, connection, info, expired in fresh
    ]
    return latest, missed, out


def ttl_of(deadline: float | None, now: float, grace: float) -> dict[str, str]:
    """DynamoDB's TTL attribute: ``grace`` after the later of now and the last deadline."""
    end = now if deadline is None else max(now, deadline)
    return {"N": str(math.ceil(end + grace))}
