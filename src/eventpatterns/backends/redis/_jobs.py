"""The Redis job store: a hash per job, owner and state indexes, CAS by Lua.

Keys (every one starts with the hash tag ``{prefix}``, so on Redis Cluster a store lives
in one slot):

==============================  =========  ==================================================
``{p}:job:<id>``                hash       ``v`` version, ``j`` the job's JSON, ``o`` owner,
                                           ``s`` state, ``c`` created_at, ``e`` expires_at
``{p}:jobs:o:<n>:<owner>``      zset       the owner's jobs by created_at (``n``: owner length)
``{p}:jobs:o:<n>:<owner>:<s>``  zset       the same, per state
``{p}:jobs:k:<n>:<owner>:<k>``  hash       idempotency key -> ``id``, ``e`` (the job's expiry)
``{p}:jobs:leases``             zset       running jobs by lease_until
``{p}:jobs:due``                zset       pending and retrying jobs by run_after
``{p}:jobs:deadlines``          zset       jobs not final by deadline
``{p}:jobs:expiry``             zset       final jobs by the end of their TTL
``{p}:jobs:cancels``            channel    the id of each running job whose cancellation is
                                           requested (published by the write that asks)
==============================  =========  ==================================================

Expiry follows the store's clock (the tracker's): a final job past its ``e`` reads as
gone, its key is free, and :meth:`RedisJobStore.purge` deletes it. As a backstop, a final
job's keys also get a Redis TTL of the remaining time plus ``grace`` seconds.
"""

from __future__ import annotations

import builtins
import inspect
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from importlib.resources import files
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus

from ...core import Clock, Event, SystemClock
from ...errors import BackendUnavailable, BusClosed, ConfigurationError, JobConflict, JobNotFound
from ...jobs._codec import job_from_json, job_to_json
from ...jobs._model import Job, JobState
from ...jobs._store import DEFAULT_TTL, JobPage, check_limit, format_cursor, parse_cursor
from ._connection import DEFAULT_MAX_CONNECTIONS, RawCalls, _import_redis, pack, waiting_client
from ._scripts import HELPERS, as_function, sha1, text_of
from ._url import connection_options, server_of, split_store_url

if TYPE_CHECKING:
    from ._bus import RedisBusBackend

__all__ = ["RedisJobStore"]

logger = logging.getLogger("eventpatterns.jobs")

T = TypeVar("T")
_STATES = ("pending", "running", "retrying", "succeeded", "failed", "cancelled")
_WAITING = (JobState.PENDING, JobState.RETRYING)


def _script(name: str) -> str:
    return (files(__package__) / "lua" / "jobs" / f"{name}.lua").read_text(encoding="utf-8")


def _outbox_script(name: str) -> str:
    """The job script ``name`` followed, when it wrote the job, by the bus's append."""
    return (
        HELPERS
        + as_function(text_of("append"), "bus_append")
        + as_function(_script(name), "job_script")
        + _script("outbox")
    )


def _batch_script(outbox: bool) -> str:
    """``create_batch.lua`` with create.lua (and, for the outbox, append.lua) embedded."""
    if outbox:
        head = HELPERS + as_function(text_of("append"), "bus_append")
    else:
        head = "local bus_append = nil\n"  # no job of a store without an outbox announces
    return head + as_function(_script("create"), "job_script") + _script("create_batch")


#: Most creates one batch takes (more wait for the next).
MAX_BATCH = 256
#: Loop iterations a batch waits for more creates to join, at most (while some do).
BATCH_ROUNDS = 3


class _Create:
    """One create waiting in a batch: its script's keys and arguments, then its reply."""

    __slots__ = ("announce", "args", "done", "error", "keys", "reply")

    def __init__(
        self,
        keys: list[str],
        args: list[Any],
        announce: tuple[list[str], list[Any]] | None,
    ) -> None:
        self.keys, self.args, self.announce = keys, args, announce
        self.reply: Any = None
        self.error: BaseException | None = None
        self.done = anyio.Event()


def _many_script() -> str:
    """``replace_many.lua`` with replace.lua and the bus's append.lua embedded."""
    return (
        HELPERS
        + as_function(text_of("append"), "bus_append")
        + as_function(_script("replace"), "job_script")
        + _script("replace_many")
    )


#: What one write of :meth:`RedisJobStore.replace_many` can come to, besides the job.
WriteOutcome = Job | JobConflict | JobNotFound | ConfigurationError


def _positive(name: str, value: object) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigurationError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _num(value: float | None) -> str:
    return "" if value is None else repr(float(value))


class _Script:
    """A Lua script's text and the SHA1 ``EVALSHA`` names it by."""

    __slots__ = ("sha", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = sha1(text)


class RedisJobStore:
    """A :class:`~eventpatterns.jobs.JobStore` on Redis (one server or a cluster slot).

    Args:
        url: A Redis URL (``redis://``, ``rediss://`` or ``unix://``).
        prefix: The keys' prefix (and hash tag); stores with other prefixes never meet.
        default_ttl: Seconds a final job is kept when the job sets no ``ttl``.
        grace: Seconds the server keeps a final job's keys after its TTL, in case no
            process purges it.
        clock: Where expiry reads the time (pass the tracker's clock).
        outbox: Where each job's event is appended in the same script as the change it
            announces (one round trip instead of two; the state and its event are
            stored together). By default (``None``) the tracker's bus backend, when it
            is a :class:`RedisBusBackend` on the same server and database (as spelled
            in the URLs), with the same ``prefix`` and no cluster (see
            :meth:`outbox_for`); else the tracker publishes each event itself after
            the change. ``False`` (or ``?outbox=false`` in the URL): never. A
            :class:`RedisBusBackend`: that one, which must use the same Redis server
            and the same ``prefix`` (so its keys share this store's hash tag).
        redis_options: redis-py client options (``password``, ``socket_timeout``...).

    Raises:
        ConfigurationError: A bad URL or option, or an ``outbox`` of another prefix.
        MissingDependency: redis-py is not installed (``pip install 'eventpatterns[redis]'``).

    Example::

        async with RedisJobStore("redis://127.0.0.1:6379/0", prefix="myapp") as store:
            job = await store.create(Job.new("j1", "render", owner="u1", input={}, now=0))
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "eventpatterns",
        default_ttl: float = DEFAULT_TTL,
        grace: float = 3600.0,
        clock: Clock | None = None,
        outbox: RedisBusBackend | bool | None = None,
        **redis_options: Any,
    ) -> None:
        if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "{}"):
            raise ConfigurationError(
                f"prefix must be a non-empty string without braces: {prefix!r}"
            )
        # None (or True, from a URL's outbox=true): the tracker's bus, when it fits.
        self._auto_outbox = outbox is None or outbox is True
        self._adopted = False
        if isinstance(outbox, bool):
            outbox = None
        if outbox is not None:
            from ._bus import RedisBusBackend

            if not isinstance(outbox, RedisBusBackend):
                raise ConfigurationError(
                    f"outbox must be a RedisBusBackend, got {type(outbox).__name__}"
                )
            if outbox.prefix != prefix:
                raise ConfigurationError(
                    f"outbox: the bus's prefix {outbox.prefix!r} is not the store's"
                    f" {prefix!r} (the outbox writes both in one script: one hash tag)"
                )
        #: The bus backend whose log job events are appended to with each change
        #: (``None``: the tracker publishes them itself, or, by default, this becomes
        #: the tracker's bus backend when it fits: see :meth:`outbox_for`).
        self.outbox = outbox
        self.prefix = prefix
        self._ttl = _positive("default_ttl", default_ttl)
        self._grace = _positive("grace", grace)
        self._clock = clock or SystemClock()
        redis = _import_redis()
        allowed = set(inspect.signature(redis.asyncio.Redis.__init__).parameters) - {"self"}
        options = connection_options(url, redis_options, cluster=False, allowed=allowed)
        self._server = server_of(options)
        self._client = waiting_client(redis, options)
        self._unavailable: tuple[type[BaseException], ...] = (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            OSError,
        )
        # The hot calls (create, replace, get) skip redis-py's command path.
        self._raw = RawCalls(
            redis,
            options,
            max_connections=options.get("max_connections") or DEFAULT_MAX_CONNECTIONS,
        )
        self._create = _Script(_script("create"))
        self._replace = _Script(_script("replace"))
        self._purge = self._client.register_script(_script("purge"))
        self._create_batch = _Script(_batch_script(False))
        self._batch: builtins.list[_Create] | None = None
        self._get_many = _Script(_script("get_many"))
        self._replace_many = _Script(_many_script())
        self._create_out: _Script | None = None
        self._replace_out: _Script | None = None
        if outbox is not None:
            self._load_outbox()
        self._tag = "{" + prefix + "}"
        self._leases = f"{self._tag}:jobs:leases"
        self._due = f"{self._tag}:jobs:due"
        self._deadlines = f"{self._tag}:jobs:deadlines"
        self._expiry = f"{self._tag}:jobs:expiry"
        #: The channel the ids of running jobs whose cancellation was requested go out on.
        self.cancel_channel = f"{self._tag}:jobs:cancels"
        self._closed = False

    def _load_outbox(self) -> None:
        self._create_out = _Script(_outbox_script("create"))
        self._replace_out = _Script(_outbox_script("replace"))
        self._create_batch = _Script(_batch_script(True))

    def outbox_for(self, backend: object, *, adopt: bool = True) -> bool:
        """Return whether this store appends ``backend``'s job events itself.

        The tracker asks it as it starts (with its bus's backend). A store given
        ``outbox=backend`` answers ``True``; one given ``outbox=False`` (or another
        tracker's backend, adopted before) answers ``False``; by default, with
        ``adopt``, it takes ``backend`` as its :attr:`outbox` when that is a
        :class:`RedisBusBackend` of the same ``prefix`` on the same server and
        database, spelled alike (``localhost`` is not ``127.0.0.1``), and not on a
        cluster.

        Raises:
            ConfigurationError: The store was given another backend as ``outbox``.
        """
        from ._bus import RedisBusBackend

        if self.outbox is not None:
            if self.outbox is backend:
                return True
            if self._adopted:
                return False  # another tracker's bus (a store shared by two): publish
            raise ConfigurationError(
                "the job store's outbox is not the tracker's bus backend: give the store"
                " outbox=<the bus's backend>, or none"
            )
        if (
            not (adopt and self._auto_outbox)
            or not isinstance(backend, RedisBusBackend)
            or backend.prefix != self.prefix
            or backend.server is None
            or backend.server != self._server
        ):
            return False
        self.outbox, self._adopted = backend, True
        self._load_outbox()
        return True

    # -- keys and plumbing ---------------------------------------------------------------

    def _job_key(self, job_id: str) -> str:
        return f"{self._tag}:job:{job_id}"

    def _owner_key(self, owner: str, state: str | None = None) -> str:
        base = f"{self._tag}:jobs:o:{len(owner)}:{owner}"
        return base if state is None else f"{base}:{state}"

    def _idem_key(self, job: Job) -> str:
        if job.idempotency_key is None:
            return self._job_key(job.id)
        return f"{self._tag}:jobs:k:{len(job.owner)}:{job.owner}:{job.idempotency_key}"

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self._closed:
            raise BusClosed("the job store is closed")
        try:
            return await operation()
        except self._unavailable as exc:
            raise BackendUnavailable(f"Redis job store unreachable: {exc}") from exc

    def _expires_at(self, job: Job) -> float | None:
        if job.finished_at is None:
            return None
        return job.finished_at + (job.ttl if job.ttl is not None else self._ttl)

    def _live(self, raw: Any, expires: Any) -> Job | None:
        if raw is None:
            return None
        if expires not in (None, b"") and float(expires) <= self._clock.time():
            return None
        return job_from_json(raw)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisJobStore:
        """Build from ``redis://host:port/db?prefix=myapp&default_ttl=86400``.

        ``prefix``, ``default_ttl``, ``grace`` and ``outbox`` (``false``: none) are read
        from the query string, with
        the redis-py connection options of ``docs/backends.md``; the other Redis
        stores' options (a bus URL's ``max_entries``...) are skipped, so one URL serves
        every store. Keyword ``options`` (``clock``, ``outbox``...) win over the URL.

        Raises:
            ConfigurationError: Not a Redis URL, or a malformed or unknown option.
        """
        return cls(split_store_url(url, options, "RedisJobStore"), **options)

    async def __aenter__(self) -> RedisJobStore:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connections (idempotent)."""
        if not self._closed:
            self._closed = True
            await self._raw.aclose()
            await self._client.aclose()

    # -- the contract --------------------------------------------------------------------

    async def create(self, job: Job) -> Job:
        """Store a new job, or return the owner's live job with the same idempotency key."""
        return await self._create_job(job, None)

    async def create_announced(self, job: Job, event: Event) -> Job:
        """:meth:`create`, appending ``event`` to the :attr:`outbox` bus's log with it.

        The event is appended only when the job is stored (not for an idempotency key
        already used).

        Raises:
            ConfigurationError: The store has no outbox.
            EventTooLarge: The event is over the bus's ``max_message_size`` (nothing
                is written).
        """
        return await self._create_job(job, self._outbox_request(event))

    def _outbox_request(self, event: Event) -> tuple[list[str], list[Any]]:
        if self.outbox is None:
            raise ConfigurationError("this RedisJobStore has no outbox (outbox=...)")
        # No dedupe: the script appends the event only with the version it writes,
        # and a version is written once (compare-and-swap), so its id is new.
        return self.outbox.append_request((event,), dedupe=False)

    async def _create_job(self, job: Job, announce: tuple[list[str], list[Any]] | None) -> Job:
        if job.version != 1:
            raise JobConflict(job.id, expected=None, actual=job.version)
        data = job_to_json(job)
        keyed = job.idempotency_key is not None
        keys = [
            self._job_key(job.id),
            self._owner_key(job.owner),
            self._owner_key(job.owner, "pending"),
            self._idem_key(job),
            self._deadlines,
            self._due,
        ]
        for attempt in range(5):  # the keyed job may expire between the script and the read
            args = [
                data,
                job.id,
                job.owner,
                _num(job.created_at),
                _num(job.deadline),
                "1" if keyed else "0",
                _num(self._clock.time()),
                _num(job.run_after),
            ]
            if attempt == 0:
                reply = await self._batched(keys, args, announce)
            else:
                reply = await self._run(self._create, self._create_out, keys, args, announce)
            status = reply[0]
            if status == b"OK":
                return job
            if status == b"EXISTS":
                raise JobConflict(job.id, expected=None, actual=int(reply[1]))
            existing = await self.get(reply[1].decode())
            if existing is not None:
                return existing
        raise JobConflict(job.id, expected=None, actual=None)  # pragma: no cover - a race x5

    async def _batched(
        self,
        keys: builtins.list[str],
        args: builtins.list[Any],
        announce: tuple[builtins.list[str], builtins.list[Any]] | None,
    ) -> Any:
        """Run create.lua in a batch with the other creates of this loop iteration.

        The first create of an iteration leads: it lets the loop run (up to
        :data:`BATCH_ROUNDS` times, while more creates join), then sends them all in
        one ``create_batch.lua`` and hands each its own reply (or the error of the
        round trip). Its round trip is shielded, as any command in flight is written
        whether or not its caller waits: a create cancelled meanwhile may be stored.
        """
        batch = self._batch
        entry = _Create(keys, args, announce)
        if batch is not None and len(batch) < MAX_BATCH:
            batch.append(entry)
            await entry.done.wait()
        else:
            batch = self._batch = [entry]
            try:
                with anyio.CancelScope(shield=True):
                    for _ in range(BATCH_ROUNDS):
                        joined = len(batch)
                        await anyio.lowlevel.checkpoint()
                        if len(batch) == joined:
                            break
                    if self._batch is batch:
                        self._batch = None
                    await self._flush(batch)
            finally:
                if self._batch is batch:  # pragma: no cover - _flush sets every entry
                    self._batch = None
        if entry.error is not None:
            raise entry.error
        return entry.reply

    async def _flush(self, batch: builtins.list[_Create]) -> None:
        """Send ``batch`` (one create: its own script), set each entry's reply or error."""
        try:
            if len(batch) == 1:
                only = batch[0]
                only.reply = await self._run(
                    self._create, self._create_out, only.keys, only.args, only.announce
                )
                return
            header: builtins.list[Any] = ["", "", "", "", ""]
            keys: builtins.list[str] = [f"{self._tag}:log", f"{self._tag}:meta"]
            args: builtins.list[Any] = [len(batch), *header]
            for entry in batch:
                announce = entry.announce
                args.append("0" if announce is None else "1")
                keys += entry.keys
                args += entry.args
                if announce is not None:
                    more_keys, more_args = announce
                    keys[0:2] = more_keys[0:2]
                    args[1:6] = more_args[0:5]
                    keys.append(more_keys[2])
                    args += more_args[5:7]
            script = self._create_batch
            raw = self._raw
            replies = await self._call(lambda: raw.script(script.sha, script.text, keys, args))
            if len(replies) > len(batch):
                assert self.outbox is not None  # noqa: S101 - only the outbox appends
                self.outbox.appended(replies[-1])
            for entry, reply in zip(batch, replies, strict=False):
                entry.reply = reply
        except Exception as exc:
            for entry in batch:
                entry.error = exc
        finally:
            for entry in batch:
                entry.done.set()

    async def _run(
        self,
        plain: _Script,
        announcing: _Script | None,
        keys: builtins.list[str],
        args: builtins.list[Any],
        announce: tuple[builtins.list[str], builtins.list[Any]] | None,
    ) -> Any:
        """Run a job script, or (``announce``: append.lua's keys and args) its outbox form."""
        raw = self._raw
        if announce is None:
            return await self._call(lambda: raw.script(plain.sha, plain.text, keys, args))
        assert announcing is not None  # noqa: S101 - announce came from the outbox
        more_keys, more_args = announce
        all_keys = [*keys, *more_keys]
        all_args = [len(keys), len(args), *args, *more_args]
        reply = await self._call(
            lambda: raw.script(announcing.sha, announcing.text, all_keys, all_args)
        )
        if reply[0] == b"OK":
            assert self.outbox is not None  # noqa: S101 - announce came from it
            self.outbox.appended(reply[-1])
        return reply

    async def get(self, job_id: str) -> Job | None:
        """Return the job, or ``None`` if never stored or expired."""
        packed = pack(("HMGET", self._job_key(job_id), "j", "e"))
        raw, expires = await self._call(lambda: self._raw.call(packed))
        return self._live(raw, expires)

    async def replace(self, job: Job, *, expected_version: int) -> Job:
        """Write ``job`` if the stored version is ``expected_version``."""
        return await self._replace_job(job, expected_version, None)

    async def replace_announced(self, job: Job, *, expected_version: int, event: Event) -> Job:
        """:meth:`replace`, appending ``event`` to the :attr:`outbox` bus's log with it.

        The event is appended only when the job is written (not on a conflict).

        Raises:
            ConfigurationError: The store has no outbox.
            EventTooLarge: The event is over the bus's ``max_message_size`` (nothing
                is written).
        """
        return await self._replace_job(job, expected_version, self._outbox_request(event))

    def _replace_request(
        self, job: Job, expected_version: int
    ) -> tuple[builtins.list[str], builtins.list[Any]]:
        """The keys and arguments of ``replace.lua`` writing ``job`` over ``expected_version``."""
        expires = self._expires_at(job)
        now = self._clock.time()
        backstop = 0 if expires is None else max(1, int((expires - now + self._grace) * 1000))
        keys = [
            self._job_key(job.id),
            *(self._owner_key(job.owner, s) for s in _STATES),
            self._idem_key(job),
            self._leases,
            self._due,
            self._deadlines,
            self._expiry,
        ]
        running = job.state is JobState.RUNNING
        args = [
            str(expected_version),
            str(job.version),
            job_to_json(job),
            job.state.value,
            _num(job.lease_until if running else None),
            _num(job.run_after if job.state in _WAITING else None),
            "-" if job.deadline is None else _num(None if job.state.final else job.deadline),
            _num(expires),
            _num(now),
            "1" if job.idempotency_key is not None else "0",
            job.id,
            job.owner,
            str(backstop),
            # Running with its cancellation requested: tell the workers at once.
            self.cancel_channel if running and job.cancel_requested else "",
        ]
        return keys, args

    @staticmethod
    def _outcome(job: Job, expected_version: int, status: bytes, detail: Any) -> WriteOutcome:
        if status == b"OK":
            return job
        if status == b"NOTFOUND":
            return JobNotFound(job.id)
        if status == b"CONFLICT":
            return JobConflict(job.id, expected=expected_version, actual=int(detail))
        return ConfigurationError(f"job {job.id!r}: owner and idempotency key never change")

    async def _replace_job(
        self,
        job: Job,
        expected_version: int,
        announce: tuple[builtins.list[str], builtins.list[Any]] | None,
    ) -> Job:
        if job.version != expected_version + 1:
            actual = await self._version(job.id)
            raise JobConflict(job.id, expected=expected_version, actual=actual)
        keys, args = self._replace_request(job, expected_version)
        reply = await self._run(self._replace, self._replace_out, keys, args, announce)
        detail = reply[1] if len(reply) > 1 else b""
        outcome = self._outcome(job, expected_version, reply[0], detail)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def get_many(self, job_ids: Sequence[str]) -> builtins.list[Job | None]:
        """Return each job (``None``: never stored, or expired) in one round trip."""
        if not job_ids:
            return []
        keys = [self._job_key(job_id) for job_id in job_ids]
        script = self._get_many
        raw = self._raw
        reply = await self._call(lambda: raw.script(script.sha, script.text, keys, ()))
        return [self._live(reply[i], reply[i + 1]) for i in range(0, len(reply), 2)]

    async def replace_many(
        self,
        writes: Sequence[tuple[Job, int]],
        *,
        events: Sequence[Event | None] | None = None,
    ) -> builtins.list[WriteOutcome]:
        """:meth:`replace` each ``(job, expected_version)`` in one round trip (one script).

        Each write is a compare-and-swap of its own: one refused leaves the others
        written. With ``events`` (one per write, ``None`` for none), the event of each
        job written is appended to the :attr:`outbox` bus's log in the same script.

        Returns:
            Per write, in order: the job as written, or why it was not (the error
            :meth:`replace` would raise: :class:`JobConflict`, :class:`JobNotFound`,
            :class:`ConfigurationError`).

        Raises:
            ConfigurationError: ``events`` given, but the store has no outbox.
            EventTooLarge: An event is over the bus's ``max_message_size`` (nothing
                is written).
            BackendUnavailable: The server could not be reached (nothing was written,
                or all of it).
        """
        outcomes: builtins.list[WriteOutcome | None] = [None] * len(writes)
        keys: builtins.list[str] = []
        args: builtins.list[Any] = []
        sent: builtins.list[int] = []
        for index, (job, expected) in enumerate(writes):
            if job.version != expected + 1:
                outcomes[index] = JobConflict(job.id, expected=expected, actual=None)
                continue
            more_keys, more_args = self._replace_request(job, expected)
            keys += more_keys
            args += more_args
            sent.append(index)
        if sent:
            per_keys, per_args = len(keys) // len(sent), len(args) // len(sent)
            head: builtins.list[Any] = [len(sent), per_keys, per_args, "0"]
            if events is not None:
                if self.outbox is None:
                    raise ConfigurationError("this RedisJobStore has no outbox (outbox=...)")
                # One append for them all: the events of the writes that happen.
                chosen = [events[i] for i in sent]
                present = [e for e in chosen if e is not None]
                log_keys, log_args = self.outbox.append_request(present, dedupe=False)
                head[3] = "1"
                keys += log_keys[:2]
                args += log_args[:5]
                found = iter(zip(log_keys[2:], log_args[5::2], log_args[6::2], strict=True))
                for event in chosen:
                    if event is None:
                        keys.append(log_keys[0])  # a placeholder: no event, no key used
                        args += ["", ""]
                    else:
                        dedupe_key, event_id, data = next(found)
                        keys.append(dedupe_key)
                        args += [event_id, data]
            script, raw = self._replace_many, self._raw
            all_args = [*head, *args]
            reply = await self._call(lambda: raw.script(script.sha, script.text, keys, all_args))
            for n, index in enumerate(sent):
                job, expected = writes[index]
                outcomes[index] = self._outcome(job, expected, reply[2 * n], reply[2 * n + 1])
            if len(reply) > 2 * len(sent):
                assert self.outbox is not None  # noqa: S101 - only an outbox appends
                self.outbox.appended(reply[-1])
        return [o for o in outcomes if o is not None]

    async def watch_cancels(
        self,
        on_cancel: Callable[[str], object],
        *,
        task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        """Call ``on_cancel(job_id)`` for each running job whose cancellation is requested.

        Listens on :attr:`cancel_channel` (Redis pub/sub: at most once, and only
        while subscribed) until cancelled; ready once subscribed, or once the first
        try failed (the server unreachable: it keeps trying, with backoff). A request
        missed meanwhile reaches the worker in its next heartbeat's answer.
        """
        started = False
        failures = 0
        while not self._closed:
            pubsub = self._client.pubsub()
            try:
                await pubsub.subscribe(self.cancel_channel)
                if not started:
                    started = True
                    task_status.started()
                failures = 0
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
                    if message is not None and message.get("type") == "message":
                        on_cancel(message["data"].decode())
            except self._unavailable as exc:
                failures += 1
                delay = min(0.05 * 2**failures, 5.0)
                logger.warning("job cancel channel: %s; listening again in %.2fs", exc, delay)
                if not started:
                    started = True
                    task_status.started()
                await anyio.sleep(delay)
            finally:
                with anyio.CancelScope(shield=True):
                    await pubsub.aclose()
        if not started:  # pragma: no cover - watched after the store closed
            task_status.started()

    async def _version(self, job_id: str) -> int | None:
        version = await self._call(lambda: self._client.hget(self._job_key(job_id), "v"))
        return None if version is None else int(version)

    async def list(
        self,
        owner: str,
        *,
        state: JobState | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> JobPage:
        """Return the owner's jobs, newest first, ``limit`` at a time."""
        check_limit(limit)
        after = parse_cursor(cursor)
        key = self._owner_key(owner, None if state is None else state.value)
        found: builtins.list[Job] = []
        top = "+inf" if after is None else f"({after[0]!r}"
        if after is not None:  # the same created_at as the cursor: ids below it
            ties = await self._call(
                lambda: self._client.zrange(key, after[0], after[0], byscore=True, desc=True)
            )
            ids = [t.decode() for t in ties if t.decode() < after[1]]
            found += await self._fetch(ids, owner, state)
        offset = 0
        while len(found) <= limit:
            batch = await self._call(
                lambda start=offset: self._client.zrange(  # type: ignore[misc]
                    key, top, "-inf", byscore=True, desc=True, offset=start, num=limit + 1
                )
            )
            if not batch:
                break
            offset += len(batch)
            found += await self._fetch([b.decode() for b in batch], owner, state)
        page = found[:limit]
        more = len(found) > limit
        return JobPage(page, format_cursor(page[-1]) if more else None)

    async def _fetch(
        self, ids: builtins.list[str], owner: str, state: JobState | None
    ) -> builtins.list[Job]:
        if not ids:
            return []

        async def read() -> Any:
            pipe = self._client.pipeline(transaction=False)
            for job_id in ids:
                pipe.hmget(self._job_key(job_id), "j", "e")
            return await pipe.execute()

        rows = await self._call(read)
        jobs = [self._live(raw, expires) for raw, expires in rows]
        return [
            j
            for j in jobs
            if j is not None and j.owner == owner and (state is None or j.state is state)
        ]

    async def _below(self, key: str, now: float, limit: int) -> builtins.list[str]:
        ids = await self._call(
            lambda: self._client.zrange(
                key, "-inf", repr(float(now)), byscore=True, offset=0, num=limit
            )
        )
        return [i.decode() for i in ids]

    async def expired_leases(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return running jobs whose lease ended by ``now``, oldest lease first."""
        return await self._below(self._leases, now, limit)

    async def due(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return waiting jobs (pending, retrying) whose ``run_after`` is by ``now``."""
        return await self._below(self._due, now, limit)

    async def overdue(self, now: float, *, limit: int = 100) -> builtins.list[str]:
        """Return jobs not final whose deadline passed by ``now``, oldest first."""
        return await self._below(self._deadlines, now, limit)

    async def purge(self) -> int:
        """Delete the final jobs whose TTL ended; return how many."""
        now = self._clock.time()
        deleted = 0
        while ids := await self._below(self._expiry, now, 500):
            for job_id in ids:
                deleted += await self._purge_one(job_id, now)
        return deleted

    async def _purge_one(self, job_id: str, now: float) -> int:
        key = self._job_key(job_id)
        raw = await self._call(lambda: self._client.hget(key, "j"))
        if raw is None:  # its keys are gone already (the backstop TTL): drop the entry
            keys, keyed = [key, key, key, key], "0"
        else:
            job = job_from_json(raw)
            keys = [
                key,
                self._owner_key(job.owner),
                self._owner_key(job.owner, job.state.value),
                self._idem_key(job),
            ]
            keyed = "0" if job.idempotency_key is None else "1"
        done = await self._call(
            lambda: self._purge(keys=[*keys, self._expiry], args=[job_id, _num(now), keyed])
        )
        return int(done)
