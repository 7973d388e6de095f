"""Presence: who is connected to each channel, with join and leave events (issue 9).

The contract is :class:`Presence`; ``MemoryPresence`` (in ``_presence_memory.py``)
implements it in one process, ``eventpatterns.backends.redis.RedisPresence`` across
gateway processes, and both pass
``eventpatterns.testing.PresenceSuite``. The checks on names, TTLs and info live here,
once, so that every implementation refuses the same input with the same error.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import anyio
import anyio.abc

from ..core import Clock
from ..errors import (
    ArgumentTypeError,
    BackendUnavailable,
    BusClosed,
    ConfigurationError,
    InvalidState,
    LimitExceeded,
)

__all__ = ["Presence", "PresenceEvent"]

logger = logging.getLogger("eventpatterns.realtime")

_CHANNEL = re.compile(r"[A-Za-z0-9_.:/@+=-]{1,200}")
MAX_MEMBER = 256
MAX_CONNECTION = 128
#: How many queued events a listener may fall behind before it misses some.
LISTENER_BUFFER = 1000


@dataclass(frozen=True, slots=True)
class PresenceEvent:
    """A member joined or left a channel.

    Attributes:
        type: ``"join"`` when the member's first connection joined the channel,
            ``"leave"`` when its last connection left (or expired).
        channel: The channel.
        member: The member (a principal id).
        connection: The connection whose join or leave changed the member's presence.
        info: That connection's info, as JSON gives it back (tuples become lists).
        expired: ``True`` for a leave because the connection stopped heartbeating
            (its TTL passed), ``False`` for an explicit :meth:`Presence.leave`.
    """

    type: Literal["join", "leave"]
    channel: str
    member: str
    connection: str
    info: Mapping[str, Any] = field(default_factory=dict)
    expired: bool = False


_P = TypeVar("_P", bound="Presence")


@runtime_checkable
class Presence(Protocol):
    """Who is present on each channel: members, their connections, join and leave events.

    A *member* (a principal id) is present on a channel while at least one of its
    *connections* is joined there: a user with two browser tabs stays present until
    the last tab leaves. Each connection's membership carries its own ``info`` (a small
    JSON object) and a deadline: it is removed, with a leave event if it was the
    member's last, once ``ttl`` seconds pass without a :meth:`join` or
    :meth:`heartbeat` of that connection. Deadlines follow the implementation's
    injected clock (``ManualClock`` in tests).

    Guarantees:

    * **Once per member.** A member's first join emits one ``"join"`` event and its
      last leave one ``"leave"`` event; connections in between emit nothing. Across
      processes sharing a backend, each change is applied (and its event emitted)
      exactly once, whichever process applies it; an expired connection is removed by
      exactly one sweep.
    * **State and events agree.** Every call first expires what is due, so
      :meth:`members` never lists a connection past its deadline, and the leave event
      of an expired member is emitted before any later change of the same channel.
    * **Events.** :meth:`events` is live once entered: it delivers every later event of
      its channel, in the order the changes were applied. A listener that falls more
      than ``LISTENER_BUFFER`` events behind gets ``EventsMissed`` from the iterator
      (memory) and continues, or loses its connection (Redis: ``BackendUnavailable``,
      then the iterator ends); every iterator ends when the presence is closed.

    Implementations are async context managers: inside ``async with``, a background
    task sweeps expired connections every ``sweep_interval`` seconds; without it, call
    :meth:`expire` to have leave events for expiries nobody looked at.

    Errors every method may raise:

    * ``ArgumentTypeError``: a name that is not a ``str``, or an ``info`` that is not
      a JSON-serialisable mapping.
    * ``ConfigurationError``: a channel that is not 1-200 characters of
      ``A-Z a-z 0-9 _ . : / @ + = -``; a member (1-256) or connection (1-128) that is
      empty, too long or not printable (``str.isprintable()``); a ``ttl`` that is not a
      finite number of seconds > 0.
    * ``LimitExceeded``: an ``info`` whose JSON is over ``max_info_size`` bytes
      (``limit="max_info_size"``).
    * ``BackendUnavailable``: the backend cannot be reached; the call may or may not
      have been applied (every call is idempotent: retry it).
    * ``BusClosed``: after ``aclose()``.

    A call that fails validation changes nothing.
    """

    async def join(
        self,
        channel: str,
        member: str,
        *,
        connection: str,
        info: Mapping[str, Any] | None = None,
        ttl: float | None = None,
    ) -> bool:
        """Join ``connection`` of ``member`` to ``channel`` until ``ttl`` seconds from now.

        Joining again with the same connection replaces its info and deadline and
        emits nothing.

        Args:
            channel: The channel.
            member: The member (a principal id).
            connection: The connection's id, unique across processes.
            info: This connection's info (a JSON object), ``{}`` by default.
            ttl: Seconds until it expires without a heartbeat; ``None`` for the
                implementation's default.

        Returns:
            ``True`` if this was the member's first connection on the channel (a
            ``"join"`` event was emitted).
        """
        ...

    async def leave(self, channel: str, member: str, *, connection: str) -> bool:
        """Remove ``connection`` of ``member`` from ``channel`` (no-op if it is not there).

        Returns:
            ``True`` if it was the member's last connection (a ``"leave"`` event was
            emitted); ``False`` if others remain or it was not joined (it may have
            expired already).
        """
        ...

    async def leave_all(self, connection: str) -> int:
        """Remove ``connection`` from every channel it joined (call it on disconnect).

        Returns:
            How many members left a channel because of it (leave events emitted).
        """
        ...

    async def heartbeat(self, connection: str, *, ttl: float | None = None) -> int:
        """Move the deadline of every membership of ``connection`` to ``ttl`` from now.

        Returns:
            How many memberships were refreshed: ``0`` means the connection has none
            (never joined, left, or expired already) and should join again.
        """
        ...

    async def members(self, channel: str) -> dict[str, dict[str, Mapping[str, Any]]]:
        """Return the members present on ``channel``: member -> {connection -> info}."""
        ...

    async def count(self, channel: str) -> int:
        """Return how many members (not connections) are present on ``channel``."""
        ...

    async def expire(self) -> int:
        """Remove every membership past its deadline, emitting leave events.

        Returns:
            How many members left a channel (leave events with ``expired=True``).
        """
        ...

    def events(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[PresenceEvent]]:
        """Listen to the join and leave events of ``channel``.

        Example:
            ``async with presence.events("room") as events: async for e in events: ...``
        """
        ...

    async def __aenter__(self: _P) -> _P:
        """Start the background sweeper; return the presence itself."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        """Stop the sweeper, then :meth:`aclose`."""
        ...

    async def aclose(self) -> None:
        """Stop the sweeper, end every listener's iteration, release connections."""
        ...


# -- the checks every implementation shares ------------------------------------------


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


def check_channel(function: str, channel: object) -> str:
    """Return ``channel`` if it is a valid channel name, else raise."""
    if not isinstance(channel, str):
        raise ArgumentTypeError(function, "channel", expected="a str", got=channel)
    if not _CHANNEL.fullmatch(channel):
        raise ConfigurationError(
            "presence channel must be 1-200 characters of A-Z, a-z, 0-9, '_', '.', ':',"
            f" '/', '@', '+', '=' or '-', got {_shown(channel)}"
        )
    return channel


def check_name(function: str, argument: str, value: object, *, limit: int) -> str:
    """Return ``value`` if it is a valid member or connection id, else raise."""
    if not isinstance(value, str):
        raise ArgumentTypeError(function, argument, expected="a str", got=value)
    if not 0 < len(value) <= limit or not value.isprintable():
        raise ConfigurationError(
            f"presence {argument} must be 1-{limit} printable characters,"
            f" got {_shown(value)} ({len(value)} characters)"
        )
    return value


def check_ttl(ttl: object, default: float) -> float:
    """Return the TTL to use: ``default`` for ``None``, else a checked ``ttl``."""
    if ttl is None:
        return default
    if isinstance(ttl, bool) or not isinstance(ttl, int | float):
        raise ArgumentTypeError("presence", "ttl", expected="a number of seconds", got=ttl)
    if not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"presence ttl must be a finite number of seconds > 0, got {ttl}")
    return float(ttl)


def encode_info(info: object, *, limit: int) -> str:
    """Return ``info`` as compact JSON, checked against the size limit."""
    if info is None:
        return "{}"
    if not isinstance(info, Mapping):
        raise ArgumentTypeError("join", "info", expected="a mapping (a JSON object)", got=info)
    try:
        text = json.dumps(info, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(
            "join", "info", expected=f"a JSON-serialisable mapping ({exc})", got=info
        ) from None
    size = len(text.encode())
    if size > limit:
        raise LimitExceeded(
            f"presence info is {size} bytes of JSON; at most {limit} are allowed",
            limit="max_info_size",
            value=limit,
        )
    return text


def check_join(
    channel: object,
    member: object,
    connection: object,
    info: object,
    ttl: object,
    *,
    default_ttl: float,
    max_info_size: int,
) -> tuple[float, str]:
    """Check :meth:`Presence.join`'s arguments (for implementations).

    Returns:
        The membership's TTL in seconds, and ``info`` as compact JSON.
    """
    check_channel("join", channel)
    check_name("join", "member", member, limit=MAX_MEMBER)
    check_name("join", "connection", connection, limit=MAX_CONNECTION)
    return check_ttl(ttl, default_ttl), encode_info(info, limit=max_info_size)


def check_settings(*, ttl: float, sweep_interval: float, max_info_size: int) -> None:
    """Check an implementation's constructor settings."""
    check_ttl(ttl, ttl)
    if not isinstance(sweep_interval, int | float) or not 0 < sweep_interval < math.inf:
        raise ConfigurationError(f"sweep_interval must be > 0 seconds, got {sweep_interval!r}")
    if isinstance(max_info_size, bool) or not isinstance(max_info_size, int) or max_info_size < 2:
        raise ConfigurationError(f"max_info_size must be an integer >= 2, got {max_info_size!r}")


async def sweep_forever(
    expire: Callable[[], Awaitable[int]], clock: Clock, interval: float
) -> None:
    """Call ``expire()`` every ``interval`` seconds on ``clock``, surviving outages."""
    while True:
        await clock.sleep(interval)
        try:
            await expire()
        except BackendUnavailable as exc:  # try again next round; the state is safe
            logger.warning("presence sweep failed, retrying in %ss: %s", interval, exc)
        except BusClosed:
            return


_S = TypeVar("_S", bound="SweeperLifecycle")


class SweeperLifecycle:
    """``async with`` for a presence: run :func:`sweep_forever` in a task group.

    Implementations set ``_task_group = None``, ``clock`` and ``sweep_interval``, and
    define ``expire()``, ``aclose()`` and ``_check_open()``. On exit the sweeper stops
    first, then ``aclose()`` runs (also when stopping it raised).
    """

    _task_group: anyio.abc.TaskGroup | None
    clock: Clock
    sweep_interval: float
    expire: Callable[[], Awaitable[int]]
    aclose: Callable[[], Awaitable[None]]
    _check_open: Callable[[], None]

    async def __aenter__(self: _S) -> _S:
        self._check_open()
        if self._task_group is not None:
            raise InvalidState("the presence is entered already", state="entered")
        self._task_group = anyio.create_task_group()
        await self._task_group.__aenter__()
        self._task_group.start_soon(sweep_forever, self.expire, self.clock, self.sweep_interval)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        task_group, self._task_group = self._task_group, None
        try:
            if task_group is None:
                return None
            task_group.cancel_scope.cancel()
            return await task_group.__aexit__(exc_type, exc, tb)
        finally:
            await self.aclose()
