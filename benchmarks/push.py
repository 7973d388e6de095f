"""Benchmark: Web Push notifications/s, eventpatterns' WebPushProvider beside pywebpush.

Run: ``python benchmarks/push.py`` (10,000 subscriptions, about a minute and a half;
``--quick`` for a CI smoke run of under 20 s)

The push service is :class:`eventpatterns.testing.WebPushReceiver` in a process of its
own (so its work is not measured in the sender's): it checks every VAPID token (ES256
signature, ``aud``, ``exp``, ``sub``; a token it verified before is not verified
again) and decrypts every body with ``http_ece``. The benchmark then asks it how many
messages decrypted to exactly the payload sent to that subscription: a row is
complete only if every one did.

Every contender sends one ~207-byte JSON notification to each subscription,
encryption included:

* ``pywebpush``: ``webpush(...)`` per message as its README shows (it signs a new
  VAPID token and opens a new connection per message);
* ``pywebpush-session``: the same with one shared ``requests.Session``;
* ``pywebpush-threads``: 8 threads, a session each;
* ``pywebpush-async``: ``webpush_async`` with one aiohttp session, 64 in flight;
* ``eventpatterns``: one ``WebPushProvider`` (one VAPID token per origin, an httpx
  connection pool), 4 sends in flight (``--inflight``);
* ``eventpatterns-serial``: one send at a time (latency-bound);
* ``eventpatterns-64``: 64 in flight over 64 connections, the weakest case: httpcore's
  pool checks every connection on each request, so more connections cost more CPU.

With ``--http2`` the receiver's ASGI app is served by hypercorn instead of uvicorn
(every row then talks to hypercorn), and two rows are added: ``eventpatterns-h2``
(``inflight`` streams on one HTTP/2 connection, h2c by prior knowledge:
``httpx.AsyncClient(http1=False, http2=True)``) and ``eventpatterns-h2-64`` (64 streams);
each is also reported as a ratio to its HTTP/1.1 row on the same server.

Ratios are to ``pywebpush`` in the same round: it runs first, after every second
contender and last, and each contender is divided by the mean of the pywebpush runs
just before and after it (the machine may be shared, its load changing by the
minute); rounds (3, ``--rounds``) rotate the contenders' order, and the table shows
medians. The load average at the start and end is printed and saved.
Each row has three ratios to pywebpush: notifications/s, sender CPU per message, and
both processes' CPU per message; the receiver shares the machine, so when no core is
spare the rate ratio tends to the last, and the receiver's share is printed.
``--decrypt after`` makes the receiver answer once the VAPID token and headers are
checked and decrypt every body after the run (the default: a push service never
decrypts; the row is complete only if every body then decrypts to its payload);
``--decrypt inline`` decrypts before answering (the earlier design, where the
receiver's decryption competes with the sender for the two cores). ``--baseline-src
DIR`` adds A/B rows sent from child processes, one on this tree and one on
``DIR/src``, in the same rounds.
Where our time goes is measured in the sender process: VAPID signing (per token, and
per message as sent), P-256 ECDH (an ephemeral key pair and the exchange), the whole
encryption (ECDH, HKDF, AES-GCM), and what is left of the sender's CPU per message:
HTTP and the scheduling around it; and again against a server that answers without
reading (the sender's floor, with no receiver's work beside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _common import print_table, write_results

SUBJECT = "mailto:bench@example.com"


def payload_for(index: int) -> bytes:
    body = {
        "title": "Your order has shipped",
        "body": "Order #1042 left the warehouse and arrives on Thursday.",
        "url": "/orders/1042",
        "tag": f"order-{index:06d}",
    }
    text = json.dumps(body, separators=(",", ":"))
    return (text + " " * max(0, 207 - len(text))).encode()


# -- the push service process --------------------------------------------------------------


def serve_hypercorn(app: Any, sock: Any, stop: threading.Event) -> None:
    """Serve ``app`` on ``sock`` with hypercorn (HTTP/1.1, and h2c by prior knowledge)."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.errorlog = config.accesslog = None
    config.keep_alive_max_requests = 2**31
    config.h2_max_concurrent_streams = 1000

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while (await receive())["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    async def stopped() -> None:
        while not stop.is_set():  # noqa: ASYNC110 - a thread's event
            await asyncio.sleep(0.05)

    asyncio.run(hypercorn_serve(wrapped, config, shutdown_trigger=stopped))


@contextmanager
def receiver_on(server: str, *, defer: bool = False) -> Iterator[Any]:
    """A WebPushReceiver on uvicorn (its own), or its ASGI app on hypercorn (for HTTP/2)."""
    from eventpatterns.testing import WebPushReceiver

    if server == "uvicorn":
        with WebPushReceiver(defer_decryption=defer) as receiver:
            yield receiver
        return
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    receiver = WebPushReceiver(port=sock.getsockname()[1], defer_decryption=defer)
    stop = threading.Event()
    thread = threading.Thread(target=serve_hypercorn, args=(receiver._app, sock, stop))
    thread.start()
    try:
        yield receiver
    finally:
        stop.set()
        thread.join(10)


def serve(count: int, pipe: Pipe, server: str = "uvicorn", defer: bool = False) -> None:
    with receiver_on(server, defer=defer) as receiver:
        subs = [receiver.subscribe() for _ in range(count)]
        index = {sub.endpoint: i for i, sub in enumerate(subs)}
        pipe.send({"origin": receiver.origin, "subscriptions": [s.to_json() for s in subs]})
        while True:
            command = pipe.recv()
            if command == "quit":
                break
            if command == "reset":
                receiver.clear()
                start = time.process_time()
                pipe.send("ok")
                continue
            cpu_s = time.process_time() - start  # answering (decrypting too, unless deferred)
            messages = receiver.messages  # a deferred receiver decrypts them here
            decrypt_s = time.process_time() - start - cpu_s
            verified = sum(payload_for(index[m.endpoint]) == m.payload for m in messages)
            pipe.send(
                {
                    "messages": len(messages),
                    "verified": verified,
                    "distinct": len({m.endpoint for m in messages}),
                    "rejections": len(receiver.rejections),
                    "cpu_s": cpu_s,
                    "decrypt_after_s": decrypt_s if defer else 0.0,
                }
            )


# -- the senders -----------------------------------------------------------------------------


def run_pywebpush(subs: list[dict[str, Any]], raw_key: str, *, session: bool) -> None:
    import requests
    from pywebpush import webpush

    shared = requests.Session() if session else None
    for i, sub in enumerate(subs):
        webpush(
            sub,
            payload_for(i).decode(),
            vapid_private_key=raw_key,
            vapid_claims={"sub": SUBJECT},
            requests_session=shared,
        )


def run_pywebpush_threads(subs: list[dict[str, Any]], raw_key: str, *, threads: int) -> None:
    import requests
    from pywebpush import webpush

    local = threading.local()

    def send(i: int) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        webpush(
            subs[i],
            payload_for(i).decode(),
            vapid_private_key=raw_key,
            vapid_claims={"sub": SUBJECT},
            requests_session=local.session,
        )

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(send, range(len(subs))))


async def run_pywebpush_async(subs: list[dict[str, Any]], raw_key: str, *, inflight: int) -> None:
    import aiohttp
    from pywebpush import webpush_async

    limit = asyncio.Semaphore(inflight)
    async with aiohttp.ClientSession() as session:

        async def send(i: int) -> None:
            async with limit:
                await webpush_async(
                    subs[i],
                    payload_for(i).decode(),
                    vapid_private_key=raw_key,
                    vapid_claims={"sub": SUBJECT},
                    aiohttp_session=session,
                )

        await asyncio.gather(*(send(i) for i in range(len(subs))))


async def run_ours(
    subs: list[dict[str, Any]],
    raw_key: str,
    *,
    inflight: int,
    http2: bool = False,
    client: str = "own",
) -> dict[str, Any]:
    """Send to every subscription, ``inflight`` at a time.

    ``client``: ``own`` (the provider's default: its PushTransport, written to
    directly), ``transport`` (an ``httpx.AsyncClient`` over a PushTransport, passed
    in) or ``httpx`` (a stock ``httpx.AsyncClient``: httpcore's pool; HTTP/2 too).
    """
    import anyio
    import httpx

    from eventpatterns.push import (
        Delivered,
        PushTransport,
        Vapid,
        VapidKeys,
        WebPushProvider,
        WebPushSubscription,
    )

    vapid = Vapid(VapidKeys.from_raw(raw_key), subject=SUBJECT)
    parsed = [WebPushSubscription.from_json(s) for s in subs]
    limits = httpx.Limits(max_connections=inflight, max_keepalive_connections=inflight)
    if http2:  # one connection, ``inflight`` streams on it (h2c by prior knowledge)
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    failures = 0
    if http2 or client == "httpx":  # httpx's own transport (httpcore's pool)
        passed = httpx.AsyncClient(limits=limits, http1=not http2, http2=http2)
    else:
        passed = httpx.AsyncClient(transport=PushTransport(max_connections=inflight))
    async with (
        passed,
        WebPushProvider(
            vapid, client=None if client == "own" and not http2 else passed
        ) as provider,
    ):
        queue = iter(range(len(parsed)))

        async def worker() -> None:
            nonlocal failures
            for i in queue:
                result = await provider.send(parsed[i], payload_for(i))
                failures += not isinstance(result, Delivered)

        async with anyio.create_task_group() as tg:
            for _ in range(min(inflight, len(parsed))):
                tg.start_soon(worker)
    return {"failures": failures, "mints": provider.auth.mints}


def sender_child(src: str, subs: list[dict[str, Any]], raw_key: str, pipe: Pipe) -> None:
    """Send from another process on the eventpatterns of ``src`` (``--baseline-src``).

    Started once and warmed up before the rounds; each command ``(n, inflight)`` runs
    :func:`run_ours` on the first ``n`` subscriptions, and the answer carries this
    process's own wall time and CPU, so it is measured as an in-process row is.
    """
    sys.path.insert(0, src)
    import eventpatterns

    asyncio.run(run_ours(subs[:20], raw_key, inflight=4))
    pipe.send(str(Path(eventpatterns.__file__).parent))
    while (command := pipe.recv()) is not None:
        count, inflight = command
        start_cpu = time.process_time()
        start = time.perf_counter()
        extra = asyncio.run(run_ours(subs[:count], raw_key, inflight=inflight))
        seconds = time.perf_counter() - start
        pipe.send({"seconds": seconds, "cpu_s": time.process_time() - start_cpu, **extra})


# -- where the time goes ------------------------------------------------------------------


def serve_noop(pipe: Pipe) -> None:
    """An HTTP/1.1 server that answers every request ``201`` unread: the sender's floor."""

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport, self.buffer = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                head = self.buffer[:end].lower()
                at = head.find(b"content-length:")
                size = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
                if len(self.buffer) < end + 4 + size:
                    return
                self.buffer = self.buffer[end + 4 + size :]
                self.transport.write(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n")

    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", 0)
        pipe.send(server.sockets[0].getsockname()[1])
        await asyncio.get_running_loop().run_in_executor(None, pipe.recv)

    asyncio.run(run())


def sender_floor(subs: list[dict[str, Any]], raw_key: str, origin: str) -> float:
    """Our sender's CPU per message (4 in flight) against :func:`serve_noop`.

    The receiver checks and decrypts nothing there, so its CPU takes (almost) none
    from the sender's: what is left is the sender's own cost, HTTP included.
    """
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=serve_noop, args=(theirs,), daemon=True)
    server.start()
    try:
        noop = f"http://127.0.0.1:{ours.recv()}"
        moved = [{**s, "endpoint": s["endpoint"].replace(origin, noop, 1)} for s in subs]
        asyncio.run(run_ours(moved[:100], raw_key, inflight=4))
        start = time.process_time()
        asyncio.run(run_ours(moved, raw_key, inflight=4))
        return (time.process_time() - start) / len(moved) * 1e6
    finally:
        ours.send("quit")
        server.join(10)


def breakdown(subs: list[dict[str, Any]], raw_key: str, repeat: int) -> dict[str, float]:
    from cryptography.hazmat.primitives.asymmetric import ec

    from eventpatterns.push import Vapid, VapidKeys, WebPushSubscription
    from eventpatterns.push._ece import encrypt

    vapid = Vapid(VapidKeys.from_raw(raw_key), subject=SUBJECT)
    sub = WebPushSubscription.from_json(subs[0])
    payload = payload_for(0)

    def per_call(fn: Any) -> float:
        start = time.perf_counter()
        for _ in range(repeat):
            fn()
        return (time.perf_counter() - start) / repeat * 1e6

    def ecdh() -> None:
        ec.generate_private_key(ec.SECP256R1()).exchange(ec.ECDH(), sub.public_key)

    return {
        "vapid_sign_us": per_call(lambda: vapid.authorization("https://push.example", now=1e9)),
        "ecdh_us": per_call(ecdh),
        "encrypt_us": per_call(
            lambda: encrypt(payload, sub.public_key, auth_secret=sub.auth, ua_point=sub.p256dh)
        ),
    }


# -- the harness --------------------------------------------------------------------------


def measure(pipe: Pipe, count: int, fn: Any) -> dict[str, Any]:
    pipe.send("reset")
    pipe.recv()
    start_cpu = time.process_time()
    start = time.perf_counter()
    extra = dict(fn() or {})
    seconds = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    if "cpu_s" in extra:  # sent from a child process (--baseline-src): its own figures
        seconds, cpu = extra.pop("seconds"), extra.pop("cpu_s")
    pipe.send("stats")
    stats = pipe.recv()
    return {
        "notifications": count,
        "seconds": seconds,
        "rate": count / seconds,
        "sender_cpu_us": cpu / count * 1e6,
        "receiver_cpu_us": stats["cpu_s"] / count * 1e6,
        "decrypt_after_us": stats["decrypt_after_s"] / count * 1e6,
        "sender_busy": round(cpu / seconds, 2),
        "receiver_busy": round(stats["cpu_s"] / seconds, 2),
        "verified": stats["verified"],
        "undecrypted": count - stats["verified"],
        "rejections": stats["rejections"],
        "complete": stats["verified"] == count == stats["distinct"] and not stats["rejections"],
        **extra,
    }


def both_cpu(result: dict[str, Any]) -> float:
    """CPU per message of the two processes: the sender's and the receiver's."""
    return float(result["sender_cpu_us"] + result["receiver_cpu_us"])


def settle(
    number: int,
    references: list[dict[str, Any]],
    pending: list[tuple[str, dict[str, Any]]],
    peer: dict[str, Any],
) -> None:
    """A pywebpush run ended: rate the contenders run since the one before.

    Each gets three ratios to the mean of the pywebpush runs around it: notifications/s
    (the target's), sender CPU per message (what a sender process alone would reach
    with a push service elsewhere), and both processes' CPU per message (what the
    rate tends to when the two share a busy machine).
    """
    references.append(peer)
    around = references[-2:]
    for key, result in pending:
        result["x pywebpush"] = result["rate"] / statistics.mean(r["rate"] for r in around)
        result["x sender cpu"] = (
            statistics.mean(r["sender_cpu_us"] for r in around) / result["sender_cpu_us"]
        )
        result["x both cpu"] = statistics.mean(both_cpu(r) for r in around) / both_cpu(result)
        flag = "" if result["complete"] else "  INCOMPLETE"
        print(f"round {number + 1} {key:22} {result['rate']:>8,.0f} notifications/s"
              f" ({result['notifications']:,}; {result['x pywebpush']:.2f}x;"
              f" sender CPU {result['sender_cpu_us']:,.0f} us, {result['x sender cpu']:.2f}x;"
              f" receiver {result['receiver_cpu_us']:,.0f} us){flag}",
              flush=True)  # fmt: skip
    pending.clear()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subscriptions", type=int, default=10_000)
    parser.add_argument("--peer-subscriptions", type=int, default=0,
                        help="how many the pywebpush rows send (default: all)")  # fmt: skip
    parser.add_argument("--inflight", type=int, default=4, help="our sends in flight")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="rounds (medians are shown)")
    parser.add_argument("--output", type=Path, help="JSON path (default benchmarks/results/)")
    parser.add_argument("--quick", action="store_true", help="CI smoke: 500 to ours, 150 to peers")
    parser.add_argument("--http2", action="store_true",
                        help="serve on hypercorn; add rows over one HTTP/2 connection")  # fmt: skip
    parser.add_argument("--baseline-src",
                        help="an A/B: also send from this eventpatterns checkout (and from"
                             " this one) in child processes, in the same rounds")  # fmt: skip
    parser.add_argument("--decrypt", choices=("inline", "after"), default="after",
                        help="the receiver decrypts each body before answering (inline), or"
                             " answers once the VAPID token and headers are checked and"
                             " decrypts every body after the run (after: as a push service"
                             " does, which never decrypts)")  # fmt: skip
    args = parser.parse_args()
    if args.quick:
        args.subscriptions = min(args.subscriptions, 500)
        args.peer_subscriptions = args.peer_subscriptions or 150
        args.rounds = 1
    peers_n = min(args.peer_subscriptions or args.subscriptions, args.subscriptions)

    from eventpatterns.push import VapidKeys

    raw_key = VapidKeys.generate().private_raw()
    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    context = multiprocessing.get_context("spawn")
    ours_end, theirs_end = context.Pipe()
    where = "hypercorn" if args.http2 else "uvicorn"
    server = context.Process(
        target=serve,
        args=(args.subscriptions, theirs_end, where, args.decrypt == "after"),
        daemon=True,
    )
    server.start()
    t0 = time.monotonic()
    children: list[tuple[Any, Pipe]] = []
    try:
        hello = ours_end.recv()
        subs: list[dict[str, Any]] = hello["subscriptions"]
        peer_subs = subs[:peers_n]
        inflight, threads = args.inflight, args.threads

        def ours_run(
            targets: list[dict[str, Any]], n: int, *, http2: bool = False, client: str = "own"
        ) -> Any:
            return lambda: asyncio.run(
                run_ours(targets, raw_key, inflight=n, http2=http2, client=client)
            )

        runs: list[tuple[str, str, int, Any]] = [
            ("pywebpush", "pywebpush webpush() per message (README)", peers_n,
             lambda: run_pywebpush(peer_subs, raw_key, session=False)),
            ("pywebpush-session", "pywebpush, one requests.Session", peers_n,
             lambda: run_pywebpush(peer_subs, raw_key, session=True)),
            ("pywebpush-threads", f"pywebpush, {threads} threads with a session each", peers_n,
             lambda: run_pywebpush_threads(peer_subs, raw_key, threads=threads)),
            ("pywebpush-async", "pywebpush webpush_async, aiohttp, 64 in flight", peers_n,
             lambda: asyncio.run(run_pywebpush_async(peer_subs, raw_key, inflight=64))),
            ("eventpatterns", f"WebPushProvider, {inflight} in flight", len(subs),
             ours_run(subs, inflight)),
            ("eventpatterns-serial", "WebPushProvider, one at a time", peers_n,
             ours_run(peer_subs, 1)),
            ("eventpatterns-16", "WebPushProvider, 16 in flight", peers_n,
             ours_run(peer_subs, 16)),
            ("eventpatterns-64", "WebPushProvider, 64 in flight (64 connections)", peers_n,
             ours_run(peer_subs, 64)),
            ("eventpatterns-httpx-64", "WebPushProvider on httpx's own pool, 64 in flight",
             peers_n, ours_run(peer_subs, 64, client="httpx")),
            ("eventpatterns-client-16", "WebPushProvider, client=httpx.AsyncClient over"
             " PushTransport, 16 in flight", peers_n, ours_run(peer_subs, 16, client="transport")),
        ]  # fmt: skip
        if args.http2:
            runs += [
                ("eventpatterns-h2", f"WebPushProvider, HTTP/2, {inflight} streams, 1 connection",
                 len(subs), ours_run(subs, inflight, http2=True)),
                ("eventpatterns-h2-64", "WebPushProvider, HTTP/2, 64 streams, 1 connection",
                 peers_n, ours_run(peer_subs, 64, http2=True)),
            ]  # fmt: skip
        if args.baseline_src:  # the same rows from two trees, each in a child process
            here = str(Path(__file__).resolve().parents[1] / "src")
            base = str(Path(args.baseline_src).resolve() / "src")
            for tag, src in (("this", here), ("base", base)):
                parent_end, child_end = context.Pipe()
                child = context.Process(
                    target=sender_child, args=(src, subs, raw_key, child_end), daemon=True
                )
                child.start()
                children.append((child, parent_end))
                print(f"A/B sender {tag}: {parent_end.recv()}", flush=True)

                def in_child(end: Pipe, n: int, k: int) -> Any:
                    def run() -> Any:
                        end.send((n, k))
                        return end.recv()

                    return run

                runs += [
                    (f"ab-{tag}", f"WebPushProvider, {inflight} in flight [{tag}: {src}]",
                     len(subs), in_child(parent_end, len(subs), inflight)),
                    (f"ab-{tag}-16", f"WebPushProvider, 16 in flight [{tag}]",
                     peers_n, in_child(parent_end, peers_n, 16)),
                ]  # fmt: skip
        # Warm up (imports, first connections, the token): not measured.
        run_pywebpush(peer_subs[:20], raw_key, session=False)
        asyncio.run(run_ours(subs[:20], raw_key, inflight=4))
        rounds: list[dict[str, dict[str, Any]]] = []
        for number in range(args.rounds):
            # pywebpush (the reference) runs first, after every second contender and
            # last; each contender is compared with the mean of the pywebpush runs just
            # before and after it, so a machine that gets busier or quieter during the
            # round skews no ratio. The contenders' order rotates from round to round.
            others = runs[1:]
            shift = number % len(others)
            order = [*others[shift:], *others[:shift]]
            reference = runs[0]
            results: dict[str, dict[str, Any]] = {}
            references: list[dict[str, Any]] = []
            pending: list[tuple[str, dict[str, Any]]] = []

            peer_runs: list[dict[str, Any]] = []
            for index, (key, label, count, fn) in enumerate(order):
                if index % 2 == 0:
                    peer_runs.append(measure(ours_end, reference[2], reference[3]))
                    settle(number, references, pending, peer_runs[-1])
                result = measure(ours_end, count, fn)
                results[key] = {"contender": label, **result}
                pending.append((key, results[key]))
            peer_runs.append(measure(ours_end, reference[2], reference[3]))
            settle(number, references, pending, peer_runs[-1])
            peer = dict(peer_runs[0])
            peer["rate"] = statistics.mean(r["rate"] for r in peer_runs)
            peer["complete"] = all(r["complete"] for r in peer_runs)
            peer["undecrypted"] = sum(r["undecrypted"] for r in peer_runs)
            peer["sender_cpu_us"] = statistics.mean(r["sender_cpu_us"] for r in peer_runs)
            peer["receiver_cpu_us"] = statistics.mean(r["receiver_cpu_us"] for r in peer_runs)
            peer["x pywebpush"] = peer["x sender cpu"] = peer["x both cpu"] = 1.0
            results[reference[0]] = {"contender": reference[1], **peer}
            print(f"round {number + 1} {reference[0]:22} {peer['rate']:>8,.0f} notifications/s"
                  f" (mean of {len(peer_runs)} runs: "
                  f"{', '.join(format(r['rate'], ',.0f') for r in peer_runs)})",
                  flush=True)  # fmt: skip
            rounds.append(results)
        ours_end.send("quit")
    finally:
        for child, end in children:
            end.send(None)
            child.join(10)
        server.join(10)
        if server.is_alive():
            server.kill()
    rows = []
    for key, _, _, _ in runs:
        each = [r[key] for r in rounds]
        row = dict(each[len(each) // 2])  # a real run's figures; rate and ratio as medians
        row["key"] = key
        row["rate"] = statistics.median(r["rate"] for r in each)
        for ratio in ("x pywebpush", "x sender cpu", "x both cpu"):
            row[ratio] = round(statistics.median(r[ratio] for r in each), 2)
        row["sender_cpu_us"] = statistics.median(r["sender_cpu_us"] for r in each)
        row["receiver_cpu_us"] = statistics.median(r["receiver_cpu_us"] for r in each)
        row["receiver_busy"] = statistics.median(r["receiver_busy"] for r in each)
        row["sender_busy"] = statistics.median(r["sender_busy"] for r in each)
        row["undecrypted"] = sum(r["undecrypted"] for r in each)
        row["complete"] = all(r["complete"] for r in each)
        row["rounds"] = [round(r["rate"]) for r in each]
        rows.append(row)
    load_after = os.getloadavg()[0]
    costs = breakdown(subs, raw_key, repeat=200 if args.quick else 2000)
    costs["hkdf_aes_us"] = max(costs["encrypt_us"] - costs["ecdh_us"], 0.0)
    ours = next(row for row in rows if row["key"] == "eventpatterns")
    per_message = 1e6 / ours["rate"]
    costs["vapid_per_message_us"] = costs["vapid_sign_us"] * ours["mints"] / ours["notifications"]
    costs["http_and_rest_us"] = max(
        ours["sender_cpu_us"] - costs["encrypt_us"] - costs["vapid_per_message_us"], 0.0
    )
    # The same sender against a server that does nothing: its own cost, measured
    # beside no receiver's work (the figure above is measured beside the receiver's).
    costs["floor_sender_cpu_us"] = sender_floor(
        subs[: min(len(subs), 5000)], raw_key, hello["origin"]
    )
    costs["floor_http_and_rest_us"] = max(
        costs["floor_sender_cpu_us"] - costs["encrypt_us"] - costs["vapid_per_message_us"], 0.0
    )
    costs["wall_us_per_message"] = per_message
    print(f"\n{args.subscriptions:,} subscriptions ({peers_n:,} for the peers), "
          f"{len(payload_for(0))}-byte payload, medians of {args.rounds} round(s), "
          f"{time.monotonic() - t0:.0f} s, load average {load_before:.1f}"
          f" -> {load_after:.1f}\n")  # fmt: skip
    columns = ["contender", "notifications", "rate", "x pywebpush", "x sender cpu",
               "x both cpu", "sender_cpu_us", "receiver_cpu_us", "sender_busy",
               "receiver_busy", "undecrypted", "complete", "rounds"]  # fmt: skip
    print_table(rows, columns)
    print("\nwhere eventpatterns' sender time goes (us per message unless noted):")
    vapid_line = f"{costs['vapid_per_message_us']:.3f} per message ({ours['mints']} token(s))"
    print(f"  VAPID signing       {costs['vapid_sign_us']:8.1f} per token, {vapid_line}")
    print(f"  ECDH (keygen+exch.) {costs['ecdh_us']:8.1f}  (part of the encryption)")
    print(f"  HKDF + AES-128-GCM  {costs['hkdf_aes_us']:8.1f}  (the encryption less ECDH)")
    print(f"  encryption in all   {costs['encrypt_us']:8.1f}  (ECDH, HKDF, AES-128-GCM, padding)")
    print(f"  HTTP and the rest   {costs['http_and_rest_us']:8.1f}  (sender CPU less the above)")
    print(f"  sender CPU          {ours['sender_cpu_us']:8.1f}; wall {per_message:.1f} per message")
    print(f"  against a no-op server: sender CPU {costs['floor_sender_cpu_us']:.1f}, of which"
          f" HTTP and the rest {costs['floor_http_and_rest_us']:.1f}"
          " (no receiver beside it)")  # fmt: skip
    target = {"target": "eventpatterns >= 5x pywebpush, all verified",
              "measured": f"{ours['x pywebpush']}x",
              "met": ours["x pywebpush"] >= 5 and all(r["complete"] for r in rows)}  # fmt: skip
    # The receiver shares the machine: how much of each message's CPU is its?
    peer_row = rows[0]
    ceiling = both_cpu(peer_row) / ours["receiver_cpu_us"]
    print(f"\nthe receiver's share: {ours['receiver_cpu_us']:,.0f} us of each of our messages"
          f" against our sender's {ours['sender_cpu_us']:,.0f} (pywebpush:"
          f" {peer_row['receiver_cpu_us']:,.0f} against {peer_row['sender_cpu_us']:,.0f});"
          f" on a machine with no core to spare, the ratio tends to both processes' CPU"
          f" ({ours['x both cpu']}x), at most {ceiling:.1f}x with a sender costing"
          " nothing")  # fmt: skip
    costs["receiver_bound_ceiling_x"] = round(ceiling, 2)
    if args.http2:
        by_key = {row["key"]: row for row in rows}
        for h2, h1 in (
            ("eventpatterns-h2", "eventpatterns"),
            ("eventpatterns-h2-64", "eventpatterns-64"),
        ):
            ratio = by_key[h2]["rate"] / by_key[h1]["rate"]
            costs[f"{h2} x {h1}"] = round(ratio, 2)
            print(f"  {h2} / {h1} (HTTP/1.1), same hypercorn server: {ratio:.2f}x")
    print()
    print_table([target], ["target", "measured", "met"])
    config = {k: str(v) for k, v in vars(args).items()}
    config["load_average"] = f"{load_before:.2f} -> {load_after:.2f}"
    extra = {"config": config, "costs": costs,
             "targets": [target]}  # fmt: skip
    if args.output is not None:
        args.output.write_text(json.dumps({"benchmark": "push", "rows": rows, **extra}, indent=2))
    else:
        write_results("push", rows, extra)
    return 0 if all(row["complete"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
