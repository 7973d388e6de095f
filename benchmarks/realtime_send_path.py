# ruff: noqa: ASYNC110, ASYNC240, E501 - a benchmark harness: it polls buffers, long literals
"""Send path of the websockets transport: broadcast() vs send_text loop vs pre-built frames.

Server and clients in separate processes; clients are raw RFC 6455 clients that count
bytes. Environment: N clients (1000), M frames (1000), R rounds (3), METHODS
(broadcast,send_text,transport,gateway), BURST=1 for 50 frames per loop iteration;
GW_BATCH (50): events per publish_batch in the gateway mode.
The time is until every server write buffer is empty. Ratios are to broadcast() in the
same run; see docs/realtime-transports.md ("The send path").
"""

from __future__ import annotations

import asyncio
import base64
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

N_CLIENTS = int(os.environ.get("N", 1000))
N_MSGS = int(os.environ.get("M", 1000))
PAYLOAD = json.dumps({"type": "event", "id": "s1", "position": "1-0", "event": {"x": "y" * 40}})


def client_proc(port: int, n: int, ready: Any, counts: Any) -> None:
    async def one(i: int, done: list[int]) -> None:
        r, w = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        w.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await r.readuntil(b"\r\n\r\n")
        if os.environ.get("MODE_GATEWAY"):
            payload = b'{"type":"subscribe","id":"s1","pattern":{"type":["order.created"],"data":{"n":[{"numeric":[">=",0]}]}}}'
            mask = os.urandom(4)
            w.write(
                bytes((0x81, 0x80 | 126))
                + len(payload).to_bytes(2, "big")
                + mask
                + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            )
        done.append(1)
        total = 0
        while True:
            data = await r.read(1 << 20)
            if not data:
                break
            total += len(data)
        counts.append(total)

    async def main() -> None:
        done: list[int] = []
        tasks = [asyncio.create_task(one(i, done)) for i in range(n)]
        while len(done) < n:
            await asyncio.sleep(0.01)
        ready.set()
        await asyncio.gather(*tasks, return_exceptions=True)

    asyncio.run(main())


async def server(method: str, port_q: Any, ready_evt: Any, result_q: Any) -> None:
    from websockets.asyncio.server import broadcast, serve

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from eventpatterns.realtime._websockets import WebSocketTransport
    from eventpatterns.realtime._wire import FrameWriter, text_frame

    conns: list[Any] = []

    async def handler(ws: Any) -> None:
        conns.append(ws)
        try:
            await ws.wait_closed()
        finally:
            pass

    async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None) as srv:
        port = next(iter(srv.sockets)).getsockname()[1]
        port_q.put(port)
        while len(conns) < N_CLIENTS:
            await asyncio.sleep(0.01)
        transports = [WebSocketTransport(c) for c in conns]
        writers: list[FrameWriter] = [t.frames for t in transports if t.frames is not None]
        msgs = [PAYLOAD.replace("1-0", f"{i}-0") for i in range(N_MSGS)]
        t0 = time.perf_counter()
        in_send = 0.0
        for k, m in enumerate(msgs):
            s0 = time.perf_counter()
            if method == "broadcast":
                broadcast(conns, m)
            elif method == "send_text":
                for c in conns:
                    c.protocol.send_text(m.encode())
                    c.send_data()
            elif method == "transport":
                # As the gateway does: one frame built, held by each writer, joined.
                data = text_frame(m.encode())
                for w in writers:
                    w.held.append(data)
                    w.held_size += len(data)
            in_send += time.perf_counter() - s0
            if os.environ.get("BURST") and (k + 1) % 50:
                continue  # 50 messages per loop iteration, as the gateway gets them
            for w in writers:
                w.flush()
            # let the loop write (like a real server between events)
            while any(
                t.buffered_amount() > 1 << 20 for t in transports[:: max(1, N_CLIENTS // 20)]
            ):
                await asyncio.sleep(0)
            await asyncio.sleep(0)
        # wait until all written
        while any(t.buffered_amount() for t in transports):
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - t0
        result_q.put((elapsed, in_send))
        for c in conns:
            c.transport.close()


async def gateway_server(port_q: Any, result_q: Any) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from eventpatterns import Event, EventBus
    from eventpatterns.realtime import Gateway, Limits, serve

    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(
            bus, limits=Limits(max_buffered=64 << 20, max_connections_per_principal=10**6)
        ) as gw,
        serve(gw, "127.0.0.1", 0, ping_interval=None) as srv,
    ):
        port_q.put(srv.port)
        while gw.stats().subscriptions < N_CLIENTS:
            await asyncio.sleep(0.01)
        events = [
            Event(type="order.created", source="/b", data={"n": i, "pad": "y" * 20})
            for i in range(N_MSGS)
        ]
        conns = list(gw._connections.values())
        t0 = time.perf_counter()
        batch = int(os.environ.get("GW_BATCH", 50))
        for i in range(0, N_MSGS, batch):
            await bus.publish_batch(events[i : i + batch])
            await asyncio.sleep(0)
        while gw.stats().delivered < N_CLIENTS * N_MSGS:
            await asyncio.sleep(0.001)
        while any(c.transport.buffered_amount() for c in conns):
            await asyncio.sleep(0.001)
        elapsed = time.perf_counter() - t0
        result_q.put((elapsed, elapsed))
        for c in conns:
            c.transport.connection.transport.close()  # type: ignore[attr-defined]


def run(method: str) -> tuple[float, float]:
    port_q: mp.Queue[int] = mp.Queue()
    result_q: mp.Queue[tuple[float, float]] = mp.Queue()
    ready = mp.Event()
    counts = mp.Manager().list()
    if method == "gateway":
        os.environ["MODE_GATEWAY"] = "1"
        sp = mp.Process(target=lambda: asyncio.run(gateway_server(port_q, result_q)))
    else:
        os.environ.pop("MODE_GATEWAY", None)
        sp = mp.Process(target=lambda: asyncio.run(server(method, port_q, ready, result_q)))
    sp.start()
    port = port_q.get()
    cp = mp.Process(target=client_proc, args=(port, N_CLIENTS, ready, counts))
    cp.start()
    elapsed, in_send = result_q.get()
    sp.join()
    cp.join()
    return N_CLIENTS * N_MSGS / elapsed, N_CLIENTS * N_MSGS / in_send


if __name__ == "__main__":
    mp.set_start_method("fork")
    res: dict[str, list[tuple[float, float]]] = {
        m: [] for m in os.environ.get("METHODS", "broadcast,send_text,transport,gateway").split(",")
    }
    for _ in range(int(os.environ.get("R", 3))):
        for m in res:
            res[m].append(run(m))
    for k, label in ((0, "end-to-end"), (1, "send call only")):
        base = statistics.median(x[k] for x in res["broadcast"])
        for m, v in res.items():
            med = statistics.median(x[k] for x in v)
            print(
                f"{label:15s} {m:10s} median {med / 1000:8.1f} K/s  ratio {med / base:.2f}x  runs {[round(x[k] / 1000) for x in v]}"
            )
