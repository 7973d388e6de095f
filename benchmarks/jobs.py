"""Benchmark: no-op jobs end to end — eventpatterns' JobTracker against arq, Celery and raw Redis.

Run: ``python benchmarks/jobs.py`` (a few minutes; ``--quick`` for a CI smoke run of
under a minute; ``--only arq,ep-redis`` for some rows)

Every row submits ``--jobs`` no-op jobs (the handler returns its input) keeping at most
``--inflight`` (100) in flight, and times each from just before the submit call to the
submitter seeing it succeed (its result in hand): jobs/s = jobs / (last completion -
first submit), p50/p99 of those latencies. Each row's worker and client run in
subprocesses of their own (``_jobs_peers.py``) against one Redis the benchmark starts for
itself (``redis-server`` on a free port, flushed between rows; ``--url`` to use another,
whose command counts then include everyone else's traffic):

* **arq** in a venv of its own (``benchmarks/.venv-arq``, built on first use: arq pins
  ``redis<6``), ``max_jobs`` = in flight, polling tuned (worker ``poll_delay`` 10 ms,
  ``job.result(poll_delay=5 ms)``) and arq's default polling (0.5 s both); ratios are
  to the tuned one. If the venv cannot be built its rows say "arq not available";
* **Celery** (Redis broker and result backend), worker ``--pool solo`` and ``--pool
  prefork --concurrency 2`` (gossip, mingle and heartbeats off); the client keeps every
  ``AsyncResult`` alive (Celery 5 hangs in ``delay()`` when one is collected mid-subscribe)
  and waits on the result backend's pub/sub;
* **raw Redis Streams**, the minimum such a job needs: ``XADD`` → worker ``XREADGROUP``
  (batches) → one pipeline of ``SET`` result + ``PUBLISH`` + ``XACK`` → the client's
  pub/sub resolves the job's future (redis-py asyncio);
* **eventpatterns** ``JobTracker``: on the memory backend (one process), and on Redis
  (``RedisBusBackend`` + ``RedisJobStore``; the worker tracker in another process, the
  submitter's tracker with ``run_workers=False, run_reaper=False`` calling ``wait`` or
  iterating ``watch``); the store's outbox (each change's event appended by the store's
  own script) is on by default there (bus and store on one Redis and prefix): the
  ``ep-redis-outbox`` row names it explicitly (``outbox=backend``), ``ep-redis-no-outbox``
  opts out (``outbox=False``: the tracker publishes each event itself);
* the weakest cases: 256-byte input and result, and 1,000 jobs in flight.

Per row it also reports Redis commands per job (``INFO commandstats`` deltas over the
timed part, ``info`` itself left out: idle polling counts), CPU per job (client, worker
and redis-server processes, from ``/proc``) and the cost over the raw round trip (µs per
job at the measured rates, and commands). Rounds are interleaved in a rotating order; the
table shows medians of the rounds, ratios taken within a round.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import queue
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import redis

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, write_results

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEERS = HERE / "_jobs_peers.py"
ARQ_VENV = HERE / ".venv-arq"
CLK_TCK = os.sysconf("SC_CLK_TCK")
WEAK_INFLIGHT = 1000


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    peer: str  # arq | celery | raw | ep
    client: str
    worker: str | None = None
    worker_args: tuple[str, ...] = ()
    client_args: tuple[str, ...] = ()
    size: int = 0  # bytes of input and result; 0 = {"i": n}
    src: str | None = None  # another eventpatterns tree's src/ (--baseline-src rows)
    weak_inflight: bool = False  # run at WEAK_INFLIGHT jobs in flight
    arq: str = "arq"  # the arq row of the same workload (for "x arq")
    raw: str = "raw"  # the raw row of the same workload (for the overheads)
    tags: tuple[str, ...] = field(default=())


TUNED = ("--poll", "0.01")
ROWS = [
    Row("arq", "arq, polling tuned (10 ms / 5 ms)", "arq", "arq-client", "arq-worker",
        TUNED, ("--poll", "0.005")),
    Row("arq-default", "arq, default polling (0.5 s)", "arq", "arq-client", "arq-worker",
        ("--poll", "0.5"), ("--poll", "0.5")),
    Row("celery-solo", "Celery, --pool solo", "celery", "celery-client", "celery-worker",
        ("--pool", "solo")),
    Row("celery-prefork2", "Celery, --pool prefork --concurrency 2", "celery", "celery-client",
        "celery-worker", ("--pool", "prefork", "--concurrency", "2")),
    Row("raw", "raw Streams: XADD/XREADGROUP/SET+PUBLISH+XACK", "raw", "raw-client",
        "raw-worker"),
    Row("ep-memory", "eventpatterns JobTracker, memory (1 process)", "ep", "ep-memory"),
    Row("ep-redis", "eventpatterns JobTracker, Redis, wait()", "ep", "ep-client", "ep-worker"),
    Row("ep-redis-watch", "eventpatterns JobTracker, Redis, watch()", "ep", "ep-client",
        "ep-worker", client_args=("--watch",)),
    Row("ep-redis-outbox", "eventpatterns JobTracker, Redis, wait(), store outbox", "ep",
        "ep-client", "ep-worker", ("--outbox",), ("--outbox",)),
    Row("ep-redis-no-outbox", "eventpatterns JobTracker, Redis, wait(), outbox=False", "ep",
        "ep-client", "ep-worker", ("--no-outbox",), ("--no-outbox",)),
    # the weakest cases
    Row("raw-256B", "raw Streams, 256 B input + result", "raw", "raw-client", "raw-worker",
        size=256, arq="arq-256B", raw="raw-256B"),
    Row("arq-256B", "arq tuned, 256 B input + result", "arq", "arq-client", "arq-worker",
        TUNED, ("--poll", "0.005"), size=256, arq="arq-256B", raw="raw-256B"),
    Row("ep-redis-256B", "eventpatterns Redis wait(), 256 B input + result", "ep", "ep-client",
        "ep-worker", size=256, arq="arq-256B", raw="raw-256B"),
    Row("arq-1000", "arq tuned, 1,000 in flight", "arq", "arq-client", "arq-worker",
        TUNED, ("--poll", "0.005"), weak_inflight=True, arq="arq-1000"),
    # redis-py 8 pools hold 100 connections and raise beyond: RedisJobStore's and
    # RedisBusBackend's defaults fail at 1,000 concurrent calls ("Too many connections"),
    # hence bigger pools here.
    Row("ep-redis-1000", "eventpatterns Redis wait(), 1,000 in flight (pool 1,100)", "ep",
        "ep-client", "ep-worker", ("--max-connections", "1100"), ("--max-connections", "1100"),
        weak_inflight=True, arq="arq-1000"),
]  # fmt: skip


# -- the benchmark's Redis ----------------------------------------------------------------


class PrivateRedis:
    """A ``redis-server`` of the benchmark's own: clean command counts, safe to flush."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not on PATH: pass --url redis://... instead")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--protected-mode", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"redis://127.0.0.1:{self.port}/0"
        client = redis.Redis.from_url(self.url)
        for _ in range(100):
            with contextlib.suppress(redis.ConnectionError):
                client.ping()
                break
            time.sleep(0.05)
        client.close()

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def command_calls(client: redis.Redis) -> dict[str, int]:
    stats: dict[str, Any] = client.info("commandstats")
    calls = {}
    for name, value in stats.items():
        command = name.removeprefix("cmdstat_")
        if command != "info":
            calls[command] = int(value["calls"])
    return calls


class Monitor(threading.Thread):
    """Counts the commands Redis runs while it is on: sent by clients, or run by scripts."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.sent = self.scripted = 0
        self.by_command: dict[str, int] = {}
        self.ready = threading.Event()
        self.stopping = False

    def run(self) -> None:
        client = redis.Redis.from_url(self.url)
        with client.monitor() as monitor:  # type: ignore[no-untyped-call]
            self.ready.set()
            while not self.stopping:
                try:
                    command = monitor.next_command()
                except redis.TimeoutError:  # a quiet spell: keep listening
                    continue
                if self.stopping:  # set by another thread meanwhile
                    break  # type: ignore[unreachable]
                if command.get("client_type") == "lua":
                    self.scripted += 1
                else:
                    self.sent += 1
                    name = str(command.get("command", "")).split(" ", 1)[0].lower()
                    self.by_command[name] = self.by_command.get(name, 0) + 1
        client.close()

    def finish(self) -> None:
        self.stopping = True
        redis.Redis.from_url(self.url).ping()  # wakes the listener up
        self.join(10)


# -- processes ----------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants (0 for a process gone)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (FileNotFoundError, ProcessLookupError, IndexError):
        pass
    return total


class Lines:
    """The JSON lines a client prints, read on a thread (so waits can time out)."""

    def __init__(self, stream: IO[str], worker: subprocess.Popen[Any] | None) -> None:
        self.worker = worker
        self.queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.queue.put(line)
        self.queue.put(None)

    def next(self, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"the worker exited ({self.worker.returncode}) before {what}")
            try:
                line = self.queue.get(timeout=min(max(deadline - time.monotonic(), 0.01), 0.5))
            except queue.Empty:
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"no {what} within {timeout:.0f} s") from None
                continue
            if line is None:
                raise RuntimeError(f"the process exited before {what}")
            with contextlib.suppress(ValueError):
                value: dict[str, Any] = json.loads(line)
                return value


def stop(process: subprocess.Popen[Any] | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def tail(path: Path, chars: int = 1500) -> str:
    return path.read_text(errors="replace")[-chars:] if path.exists() else ""


# -- arq's venv ---------------------------------------------------------------------------


def arq_python(venv: Path) -> tuple[str | None, str]:
    """The venv's python (building it if needed) and arq's version, or None and why not."""
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import arq, redis; print(arq.VERSION, redis.__version__)"]
    if not python.exists():
        made = subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        if made.returncode != 0:
            return None, f"arq not available (venv: {made.stderr.strip()[-200:]})"
    found = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    if found.returncode != 0:
        try:
            pip = subprocess.run([str(python), "-m", "pip", "install", "-q", "arq"],
                                 capture_output=True, text=True, timeout=300)  # fmt: skip
        except subprocess.TimeoutExpired:
            return None, "arq not available (pip install arq timed out)"
        if pip.returncode != 0:
            return None, f"arq not available (pip: {pip.stderr.strip()[-200:]})"
        found = subprocess.run(probe, capture_output=True, text=True, timeout=60)
        if found.returncode != 0:
            return None, f"arq not available ({found.stderr.strip()[-200:]})"
    arq_version, redis_version = found.stdout.split()
    return str(python), f"arq {arq_version} (redis-py {redis_version})"


def tracker_available(env: dict[str, str]) -> tuple[bool, str]:
    probe = "from eventpatterns.jobs import JobTracker"
    found = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    if found.returncode == 0:
        return True, "eventpatterns.jobs.JobTracker"
    return False, "skipped: eventpatterns.jobs.JobTracker is not on this branch yet"


# -- one row ------------------------------------------------------------------------------


class Harness:
    def __init__(self, args: argparse.Namespace, url: str, private: PrivateRedis | None) -> None:
        self.args = args
        self.url = url
        self.private = private
        self.client = redis.Redis.from_url(url)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        self.logs = Path(args.logs)
        self.logs.mkdir(parents=True, exist_ok=True)
        self.skipped: dict[str, str] = {}
        self.pythons = {"celery": sys.executable, "raw": sys.executable, "ep": sys.executable}
        self.versions: dict[str, str] = {}
        if any(row.peer == "arq" for row in args.rows):
            python, note = arq_python(Path(args.arq_venv))
            self.versions["arq"] = note
            if python is None:
                self.skipped["arq"] = note
            else:
                self.pythons["arq"] = python
        if any(row.peer == "ep" for row in args.rows):
            ok, note = tracker_available(self.env)
            self.versions["eventpatterns"] = note
            if not ok:
                self.skipped["ep"] = note

    def command(self, row: Row, role: str, extra: tuple[str, ...], name: str) -> list[str]:
        inflight = self.args.weak_inflight if row.weak_inflight else self.args.inflight
        base = [self.pythons[row.peer], str(PEERS), role, "--url", self.url, "--name", name]
        base += ["--jobs", str(self.args.jobs), "--inflight", str(inflight)]
        return [*base, "--size", str(row.size), *extra]

    def run_row(self, row: Row, number: int) -> dict[str, Any]:
        name = f"jobsbench{os.getpid()}r{number}{row.key}"
        if self.private is not None:
            self.client.flushall()
        env = self.env if row.peer != "arq" else {k: v for k, v in os.environ.items()
                                                   if k != "PYTHONPATH"}  # fmt: skip
        if row.src is not None:
            env = {**os.environ, "PYTHONPATH": row.src}
        worker_log = self.logs / f"{row.key}-r{number}-worker.log"
        client_log = self.logs / f"{row.key}-r{number}-client.log"
        worker = client = None
        try:
            if row.worker is not None:
                with worker_log.open("w") as err:
                    worker = subprocess.Popen(
                        self.command(row, row.worker, row.worker_args, name), env=env,
                        stdout=subprocess.PIPE if row.peer == "ep" else subprocess.DEVNULL,
                        stderr=err, text=True, cwd=HERE,
                    )  # fmt: skip
                if worker.stdout is not None:  # it says when its consumer group exists
                    Lines(worker.stdout, worker).next(self.args.warmup_timeout, "worker ready")
            with (client_log).open("w") as err:
                client = subprocess.Popen(
                    self.command(row, row.client, row.client_args, name), env=env,
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, cwd=HERE,
                )  # fmt: skip
            assert client.stdin is not None
            assert client.stdout is not None
            lines = Lines(client.stdout, worker)
            lines.next(self.args.warmup_timeout, "warm-up")
            pids = [client.pid] + ([worker.pid] if worker else [])
            redis_pid = self.private.process.pid if self.private else None
            cpu0 = [cpu_seconds(pid) for pid in pids]
            redis_cpu0 = cpu_seconds(redis_pid) if redis_pid else 0.0
            calls0 = command_calls(self.client)
            client.stdin.write("go\n")
            client.stdin.flush()
            timeout = max(60.0, self.args.jobs / 20)
            result = lines.next(timeout, "the figures")
            calls = command_calls(self.client)
            cpu = [cpu_seconds(pid) - c for pid, c in zip(pids, cpu0, strict=True)]
            redis_cpu = (cpu_seconds(redis_pid) - redis_cpu0) if redis_pid else 0.0
            account: dict[str, Any] = {}
            if row.client == "ep-memory":  # one process: nothing goes to Redis
                account = {"sent_per_job": 0.0, "scripted_per_job": 0.0, "sent": {}}
            if number == 0 and self.args.account > 0 and row.client != "ep-memory":
                monitor = Monitor(self.url)
                monitor.start()
                monitor.ready.wait(10)
                client.stdin.write(f"account {self.args.account}\n")
                client.stdin.flush()
                counted = lines.next(timeout, "the figures of the MONITOR pass")
                monitor.finish()
                done = max(counted["completed"], 1)
                account = {"sent_per_job": monitor.sent / done,
                           "scripted_per_job": monitor.scripted / done,
                           "sent": {c: v / done for c, v in sorted(
                               monitor.by_command.items(), key=lambda kv: -kv[1])}}  # fmt: skip
        except RuntimeError as exc:
            problem = tail(worker_log) if "worker" in str(exc) else tail(client_log)
            problem = problem or tail(client_log) or tail(worker_log)
            return {"complete": False, "error": f"{exc}: {problem}"}
        finally:
            stop(client)
            stop(worker)
        n = result["completed"]
        delta = {c: calls[c] - calls0.get(c, 0) for c in calls if calls[c] != calls0.get(c, 0)}
        return {
            **result,
            "complete": n == self.args.jobs == result["jobs"],
            "commands_per_job": sum(delta.values()) / max(n, 1),
            "commands": {c: v / max(n, 1) for c, v in sorted(delta.items(), key=lambda kv: -kv[1])},
            "cpu_us_per_job": (sum(cpu) + redis_cpu) / max(n, 1) * 1e6,
            "client_cpu_us_per_job": cpu[0] / max(n, 1) * 1e6,
            "worker_cpu_us_per_job": (cpu[1] if worker else 0.0) / max(n, 1) * 1e6,
            "redis_cpu_us_per_job": redis_cpu / max(n, 1) * 1e6,
            **account,
        }


# -- the table ----------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def summarize(rows: list[Row], rounds: list[dict[str, dict[str, Any]]],
              skipped: dict[str, str]) -> list[dict[str, Any]]:  # fmt: skip
    table = []
    for row in rows:
        if row.peer in skipped:
            table.append({"key": row.key, "contender": row.label, "complete": "skipped",
                          "note": skipped[row.peer]})  # fmt: skip
            continue
        runs = [r[row.key] for r in rounds if row.key in r]
        good = [run for run in runs if run.get("complete")]

        def within(fn: Any, base: str, key: str = row.key) -> float | str:
            values = []
            for r in rounds:
                mine, theirs = r.get(key, {}), r.get(base, {})
                if mine.get("complete") and theirs.get("complete"):
                    value = fn(mine, theirs)
                    if math.isfinite(value):
                        values.append(value)
            return median(values) if values else ""

        celery_ratios = []
        for r in rounds:
            mine = r.get(row.key, {})
            rates = [r[k]["jobs_per_s"] for k in ("celery-solo", "celery-prefork2")
                     if r.get(k, {}).get("complete")]  # fmt: skip
            if mine.get("complete") and rates:
                celery_ratios.append(mine["jobs_per_s"] / max(rates))
        # Commands sent = executed (timed run) - run by scripts (per job, MONITOR pass);
        # the raw round trip runs no script.
        scripted = median([g["scripted_per_job"] for g in runs if "scripted_per_job" in g])
        sent = [g["commands_per_job"] - scripted for g in good]
        line: dict[str, Any] = {
            "key": row.key,
            "contender": row.label,
            "jobs/s": median([g["jobs_per_s"] for g in good]),
            "x arq": within(lambda m, t: m["jobs_per_s"] / t["jobs_per_s"], row.arq),
            "x celery": median(celery_ratios) if celery_ratios else "",
            "p50 ms": median([g["p50_ms"] for g in good]),
            "p99 ms": median([g["p99_ms"] for g in good]),
            "cmds/job": median([g["commands_per_job"] for g in good]),
            "sent/job": median(sent),
            "sent over raw": within(
                lambda m, t, s=scripted: m["commands_per_job"] - s - t["commands_per_job"],
                row.raw,
            ),
            "us/job over raw": within(
                lambda m, t: 1e6 / m["jobs_per_s"] - 1e6 / t["jobs_per_s"], row.raw
            ),
            "CPU us/job": median([g["cpu_us_per_job"] for g in good]),
            "complete": bool(runs) and len(good) == len(runs),
            "rounds": runs,
        }
        if not line["complete"]:
            line["note"] = next((run.get("error", "") for run in runs if not run.get("complete")),
                                "")[:300]  # fmt: skip
        table.append(line)
    return table


def check_targets(table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by = {line["key"]: line for line in table}
    checks = []
    for key in (
        "ep-redis",
        "ep-redis-watch",
        "ep-redis-outbox",
        "ep-redis-no-outbox",
        "ep-redis-256B",
        "ep-redis-1000",
    ):
        line = by.get(key)
        if line is None:
            continue
        for column, bar, what in (("x arq", 1.0, "tuned arq"), ("x celery", 3.0, "Celery"),
                                  ("x arq", 2.0, "tuned arq (stretch)")):  # fmt: skip
            value = line.get(column, "")
            measured = value if isinstance(value, float) else "not measured"
            checks.append({"target": f"{key} >= {bar:g}x {what} (jobs/s)", "measured": measured,
                           "met": isinstance(value, float) and value >= bar})  # fmt: skip
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per row and round")
    parser.add_argument("--inflight", type=int, default=100, help="most jobs in flight")
    parser.add_argument("--weak-inflight", type=int, default=WEAK_INFLIGHT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated row keys")
    parser.add_argument("--url", help="an existing Redis (default: start a private one)")
    parser.add_argument("--arq-venv", default=str(ARQ_VENV), help="arq's venv (built if absent)")
    parser.add_argument(
        "--account", type=int, default=500, help="jobs under MONITOR (round 1); 0: none"
    )
    parser.add_argument("--warmup-timeout", type=float, default=60.0)
    parser.add_argument("--logs", default=str(HERE / "results" / "jobs-logs"))
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--quick", action="store_true", help="CI smoke: small and one round")
    parser.add_argument(
        "--baseline-src",
        help="also run the eventpatterns rows from this checkout, in the same rounds"
        " (an A/B: git worktree add /tmp/base <commit>)",
    )
    args = parser.parse_args()
    if args.quick:
        args.jobs = min(args.jobs, 100)
        args.inflight = min(args.inflight, 20)
        args.weak_inflight = min(args.weak_inflight, args.jobs)
        args.rounds = 1
        args.account = min(args.account, 20)
        args.warmup_timeout = min(args.warmup_timeout, 30.0)
    keys = set(args.only.split(",")) if args.only else None
    args.rows = [row for row in ROWS if keys is None or row.key in keys]
    if args.baseline_src:  # the same eventpatterns rows again, run from another tree
        src = str(Path(args.baseline_src).resolve() / "src")
        args.rows += [
            dataclasses.replace(row, key=f"{row.key}@base", label=f"{row.label} [base]", src=src)
            for row in args.rows
            if row.peer == "ep" and "outbox" not in row.key
        ]
    private = None if args.url else PrivateRedis()
    url = args.url or private.url  # type: ignore[union-attr]
    t0 = time.monotonic()
    rounds: list[dict[str, dict[str, Any]]] = []
    try:
        harness = Harness(args, url, private)
        runnable = [row for row in args.rows if row.peer not in harness.skipped]
        for note in sorted(set(harness.skipped.values())):
            print(note, flush=True)
        for number in range(args.rounds):
            shift = number % max(len(runnable), 1)
            results: dict[str, dict[str, Any]] = {}
            for row in runnable[shift:] + runnable[:shift]:
                result = harness.run_row(row, number)
                results[row.key] = result
                if result["complete"]:
                    print(f"round {number + 1} {row.key:16} {result['jobs_per_s']:>8,.0f} jobs/s  "
                          f"p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  "
                          f"{result['commands_per_job']:5.1f} cmds/job  "
                          f"CPU {result['cpu_us_per_job']:6.0f} us/job", flush=True)  # fmt: skip
                else:
                    print(f"round {number + 1} {row.key:16} INCOMPLETE {result.get('error', '')}",
                          flush=True)  # fmt: skip
            rounds.append(results)
    finally:
        if private is not None:
            private.close()
    table = summarize(args.rows, rounds, harness.skipped)
    print(f"\n{args.jobs:,} no-op jobs per row, at most {args.inflight} in flight "
          f"(1,000-in-flight rows: {args.weak_inflight}); medians of {args.rounds} round(s), "
          f"{time.monotonic() - t0:.0f} s; {'; '.join(harness.versions.values())}\n")  # fmt: skip
    columns = ["contender", "jobs/s", "x arq", "x celery", "p50 ms", "p99 ms", "cmds/job",
               "sent/job", "sent over raw", "us/job over raw", "CPU us/job",
               "complete"]  # fmt: skip
    print_table(table, columns)
    for line in table:
        if line.get("note"):
            print(f"  {line['key']}: {line['note']}")
    targets = check_targets(table)
    if targets:
        print()
        print_table(targets, ["target", "measured", "met"])
    extra = {"config": {k: str(v) for k, v in vars(args).items() if k != "rows"},
             "versions": harness.versions, "targets": targets}  # fmt: skip
    if args.output is not None:
        payload = {"benchmark": "jobs", "rows": table, **extra}
        args.output.write_text(json.dumps(payload, indent=2, default=str))
        print(f"\nwrote {args.output}")
    else:
        print(f"\nwrote {write_results('jobs', table, extra)}")
    return 0 if all(line["complete"] in (True, "skipped") for line in table) else 1


if __name__ == "__main__":
    sys.exit(main())
