"""The names of a bus's keys, built in one place.

What each key holds, and every field of the hashes, is documented once, in
``docs/backends.md`` ("Data layout"); ``tests/backends/redis/test_redis_layout.py`` checks
that the page, these names and a real bus agree. Every key starts with the hash tag
``{prefix}``, so on Redis Cluster a bus lives in one slot.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BusKeys", "GroupKeys"]


@dataclass(frozen=True, slots=True)
class GroupKeys:
    """The keys of one consumer group, in the order the group scripts take them."""

    log: str
    groups: str
    due: str
    att: str
    held: str
    dlq: str
    meta: str


@dataclass(frozen=True, slots=True)
class BusKeys:
    """The keys of one bus (prefix ``p``): ``{p}:log``, ``{p}:meta``, ``{p}:groups``..."""

    tag: str
    log: str
    meta: str
    groups: str

    @classmethod
    def of(cls, prefix: str) -> BusKeys:
        """Return the keys of the bus with this prefix (without braces)."""
        tag = "{" + prefix + "}"
        return cls(tag, f"{tag}:log", f"{tag}:meta", f"{tag}:groups")

    def dedupe(self, event_id: str) -> str:
        """Return the dedupe record's key of an event id."""
        return f"{self.tag}:dd:{event_id}"

    def group(self, name: str) -> GroupKeys:
        """Return the keys of group ``name`` (a checked group name: no ``:`` in it)."""
        base = f"{self.tag}:g:{name}"
        return GroupKeys(
            self.log, self.groups, f"{base}:due", f"{base}:att", f"{base}:held",
            f"{base}:dlq", self.meta,
        )  # fmt: skip
