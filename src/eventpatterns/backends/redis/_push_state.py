"""The push dispatcher's state on Redis: idempotency keys, fatigue state, dead letters.

Shared by every process with the same prefix, so a restarted dispatcher, or a second
one, neither notifies twice nor loses what was dead-lettered. Keys (all in the slot
of ``{prefix}``):

================================  ======  =============================================
``{p}:pushstate:k:<n>:<user><k>``  string  ``"<deadline> <notification id>"``, with a PX
                                          expiry (``<n>`` is the user's length)
``{p}:pushstate:f:<user>``         string  the user's fatigue state (JSON)
``{p}:pushdl:all``                 zset    dead letter ids by arrival
``{p}:pushdl:u:<user>``            zset    the user's dead letter ids by arrival
``{p}:pushdl:json``                hash    id -> the dead letter (JSON)
``{p}:pushdl:seq``                 string  the arrival counter
================================  ======  =============================================

A claim is one script (``lua/push/state_claim.lua``): SET NX's check and write, with
the deadline on the caller's clock. A fatigue update reads the state, applies the
pure ``admit`` / ``release`` and stores the result only if the state is still the
one read (``lua/push/state_cas.lua``), retrying otherwise: two dispatchers never
spend one token twice nor lose a held notification.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Sequence
from importlib.resources import files
from typing import Any, TypeVar

from ...errors import BackendUnavailable, ConfigurationError
from ...push._dispatch_codec import decode_fatigue, decode_letter, encode_fatigue, encode_letter
from ...push._dispatch_state import PushDeadLetter
from ...push._fatigue import Release, UserFatigue
from ._connection import RedisConnection
from ._url import split_store_url

__all__ = ["RedisDispatchState", "RedisPushDeadLetters"]

#: Compare-and-set rounds of one fatigue update before it gives up (contention).
CAS_ROUNDS = 100


def _script(name: str) -> str:
    return (files(__package__) / "lua" / "push" / f"{name}.lua").read_text(encoding="utf-8")


def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix or "{" in prefix or "}" in prefix:
        raise ConfigurationError(f"prefix must be non-empty without braces, got {prefix!r}")
    return prefix


S = TypeVar("S", bound="_RedisStore")


class _RedisStore:
    """A connection and scripts, as an async context manager."""

    _names: tuple[str, ...] = ()

    def __init__(self, url: str, prefix: str, route: str, redis_options: dict[str, Any]) -> None:
        self.prefix = _check_prefix(prefix)
        self._base = "{" + self.prefix + "}:" + route
        self._conn = RedisConnection(
            url, cluster=False, route_key=self._base, redis_options=redis_options
        )
        client = self._conn.client
        self._scripts = {name: client.register_script(_script(name)) for name in self._names}

    @classmethod
    def from_url(cls: type[S], url: str, **options: Any) -> S:
        """Build from ``redis://host:port/db?prefix=myapp`` (and the store's options).

        ``prefix`` (and ``key_ttl`` for :class:`RedisDispatchState`) is read from the
        query string, with the redis-py connection options of ``docs/backends.md``; the
        other Redis stores' options (a bus URL's ``max_entries``...) are skipped, so
        one URL serves every store. Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not a Redis URL, or a malformed or unknown option.
        """
        return cls(split_store_url(url, options, cls.__name__), **options)

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (idempotent); later calls raise ``BusClosed``."""
        await self._conn.aclose()

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        with self._conn.mapped():
            return await self._scripts[name](keys=keys, args=args)


class RedisDispatchState(_RedisStore):
    """A :class:`~eventpatterns.push.DispatchState` on Redis, shared by every dispatcher.

    Args:
        url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://...`` or
            ``unix:///path``, with redis-py connection options in the query.
        prefix: Key namespace (keys are ``{prefix}:pushstate:...``); it may be the
            prefix of a bus or device registry: the keys do not collide.
        key_ttl: Seconds an idempotency key is remembered (one day by default).
        **redis_options: redis-py client options (``password``, ``socket_timeout``...).

    Raises:
        ConfigurationError: A bad URL, prefix or ``key_ttl``.
        MissingDependency: redis-py is not installed (``pip install 'eventpatterns[redis]'``).
    """

    _names = ("state_claim", "state_cas")

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventpatterns",
        key_ttl: float = 24 * 3600.0,
        **redis_options: Any,
    ) -> None:
        if isinstance(key_ttl, bool) or not isinstance(key_ttl, int | float):
            raise ConfigurationError(f"key_ttl must be seconds, got {key_ttl!r}")
        if not (math.isfinite(key_ttl) and key_ttl > 0):
            raise ConfigurationError(f"key_ttl must be positive seconds, got {key_ttl!r}")
        self.key_ttl = float(key_ttl)
        super().__init__(url, prefix, "pushstate:", redis_options)

    async def claim(self, user: str, key: str, notification_id: str, *, now: float) -> str | None:
        """Claim ``key`` for ``user`` atomically; see :meth:`DispatchState.claim`."""
        name = f"{self._base}k:{len(user)}:{user}{key}"
        ttl_ms = max(1, math.ceil(self.key_ttl * 1000))
        args = [notification_id, repr(float(now)), repr(float(now) + self.key_ttl), ttl_ms]
        held = await self._run("state_claim", [name], args)
        return None if held is None else held.decode()

    async def _read(self, user: str) -> bytes | None:
        with self._conn.mapped():
            value = await self._conn.client.get(self._base + "f:" + user)
        return value.encode() if isinstance(value, str) else value

    async def fatigue(self, user: str) -> UserFatigue:
        """Return the user's fatigue state (a fresh one for a new user)."""
        raw = await self._read(user)
        return UserFatigue() if raw is None else decode_fatigue(raw)

    async def update_fatigue(self, user: str, change: Callable[[UserFatigue], Release]) -> Release:
        """Apply ``change`` with a compare-and-set; see :meth:`DispatchState.update_fatigue`.

        Raises:
            BackendUnavailable: Redis is unreachable, the stored state is malformed, or
                it changed under every one of ``CAS_ROUNDS`` attempts.
        """
        name = self._base + "f:" + user
        for _ in range(CAS_ROUNDS):
            raw = await self._read(user)
            decided = change(UserFatigue() if raw is None else decode_fatigue(raw))
            new = "" if decided.state == UserFatigue() else encode_fatigue(decided.state)
            expected = b"" if raw is None else raw
            if await self._run("state_cas", [name], [expected, new]):
                return decided
        raise BackendUnavailable(
            f"the fatigue state of user {user!r} changed under {CAS_ROUNDS} updates in a row"
        )


class RedisPushDeadLetters(_RedisStore):
    """A :class:`~eventpatterns.push.PushDeadLetters` store on Redis, oldest first.

    Args:
        url: ``redis://...``, ``rediss://...`` or ``unix:///path``.
        prefix: Key namespace (keys are ``{prefix}:pushdl:...``).
        **redis_options: redis-py client options.

    Raises:
        ConfigurationError: A bad URL or prefix.
        MissingDependency: redis-py is not installed.
    """

    _names = ("dead_letter_add", "dead_letter_list", "dead_letter_discard")

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventpatterns",
        **redis_options: Any,
    ) -> None:
        super().__init__(url, prefix, "pushdl:", redis_options)
        self._all = self._base + "all"
        self._json = self._base + "json"

    def new_id(self) -> str:
        """Return a fresh dead letter id (unique across processes)."""
        return f"pdl-{uuid.uuid4().hex}"

    async def add(self, letter: PushDeadLetter) -> None:
        """Store ``letter``."""
        keys = [self._all, self._json, self._base + "seq", self._base + "u:" + letter.user]
        await self._run("dead_letter_add", keys, [letter.id, encode_letter(letter)])

    async def list(self, *, user: str | None = None, limit: int = 100) -> list[PushDeadLetter]:
        """Return up to ``limit`` dead letters, oldest first (only ``user``'s if given)."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ConfigurationError(f"limit must be an int >= 1, got {limit!r}")
        index = self._all if user is None else self._base + "u:" + user
        found = await self._run("dead_letter_list", [index, self._json], [limit])
        return [decode_letter(raw) for raw in found if raw is not None]

    async def get(self, letter_id: str) -> PushDeadLetter | None:
        """Return one dead letter, or ``None``."""
        with self._conn.mapped():
            raw = await self._conn.client.hget(self._json, letter_id)
        return None if raw is None else decode_letter(raw)

    async def discard(self, letter_ids: Sequence[str]) -> int:
        """Remove these dead letters; return how many existed."""
        if not letter_ids:
            return 0
        args = [self._base + "u:", *letter_ids]
        removed: int = await self._run("dead_letter_discard", [self._all, self._json], args)
        return removed
