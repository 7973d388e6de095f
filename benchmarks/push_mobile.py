"""FCMProvider / APNsProvider sends per second against their fakes, beside raw httpx.

The fake runs in a subprocess (so its CPU is not the sender's). Each row sends the same
messages over the same kind of client twice: through the provider (message validation,
encoding, TokenAuth's cached credential, the deadline, the result table) and as raw
httpx posts of a pre-encoded body with a pre-minted credential (the floor). The ratio
is provider / raw; the weakest case is one send at a time, where per-send overhead is
not hidden behind concurrency.

    PYTHONPATH=src python benchmarks/push_mobile.py --sends 2000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import anyio
import httpx
from _common import now, print_table, write_results

from eventpatterns.push import APNsMessage, APNsProvider, Delivered, FCMMessage, FCMProvider
from eventpatterns.testing import FakeAPNs, FakeFCM
from eventpatterns.testing._fake_server import client_ssl_context


async def serve(kind: str) -> None:
    """Run one fake and print how to reach it (one JSON line), until stdin closes."""
    fake: Any = FakeFCM() if kind == "fcm" else FakeAPNs()
    async with fake:
        if kind == "fcm":
            info = {"base_url": fake.base_url, "account": fake.service_account}
        else:
            info = {
                "base_url": fake.base_url,
                "certificate": fake.certificate.decode(),
                "key": fake.private_key,
                "team_id": fake.team_id,
                "key_id": fake.key_id,
            }
        print(json.dumps(info), flush=True)
        await anyio.to_thread.run_sync(sys.stdin.read)


async def run_sends(send: Any, count: int, concurrency: int) -> float:
    """Send ``count`` messages, ``concurrency`` at a time; return sends per second."""
    sent = iter(range(count))

    async def worker() -> None:
        for n in sent:
            await send(n)

    start = now()
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return count / (now() - start)


async def bench_fcm(info: dict[str, Any], count: int, concurrency: int) -> dict[str, Any]:
    async with httpx.AsyncClient(http2=True) as client:
        provider = FCMProvider(info["account"], client=client, base_url=info["base_url"])

        async def via_provider(n: int) -> None:
            message = FCMMessage(token=f"device-{n}", title="Shipped", data={"order": str(n)})
            result = await provider.send(message)
            assert isinstance(result, Delivered), result

        warm = await provider.send(FCMMessage(token="warm", title="x"))
        assert isinstance(warm, Delivered)
        header = (await provider.auth._value(client.build_request("POST", "/"))).encode()
        url = f"{info['base_url']}/v1/projects/{provider.project_id}/messages:send"
        body = FCMMessage(token="device-0", title="Shipped", data={"order": "0"}).encode()

        async def raw(n: int) -> None:
            response = await client.post(
                url,
                content=body,
                headers={"authorization": str(header), "content-type": "application/json"},
            )
            assert response.status_code == 200, response.text

        return await measure("fcm", via_provider, raw, count, concurrency)


async def bench_apns(info: dict[str, Any], count: int, concurrency: int) -> dict[str, Any]:
    verify = client_ssl_context(info["certificate"].encode())
    async with httpx.AsyncClient(http2=True, verify=verify) as client:
        provider = APNsProvider(
            team_id=info["team_id"],
            key_id=info["key_id"],
            private_key=info["key"],
            client=client,
            production_url=info["base_url"],
        )

        async def via_provider(n: int) -> None:
            message = APNsMessage(
                token=f"{n % 256:02x}" * 32, topic="com.example", alert="Shipped", data={"n": n}
            )
            result = await provider.send(message)
            assert isinstance(result, Delivered), result

        template = APNsMessage(token="ab" * 32, topic="com.example", alert="Shipped", data={"n": 0})
        warm = await provider.send(template)
        assert isinstance(warm, Delivered), warm
        header = await provider.auth._value(client.build_request("POST", "/"))
        headers = {
            **template.headers(),
            "authorization": header,
            "content-type": "application/json",
        }
        body = template.encode()
        url = f"{info['base_url']}/3/device/{'ab' * 32}"

        async def raw(n: int) -> None:
            response = await client.post(url, content=body, headers=headers)
            assert response.status_code == 200, response.text

        return await measure("apns", via_provider, raw, count, concurrency)


async def measure(
    name: str, provider: Any, raw: Any, count: int, concurrency: int
) -> dict[str, Any]:
    # Alternate twice and keep each side's best, so a busy moment hurts neither alone.
    raw_rates, provider_rates = [], []
    for _ in range(2):
        raw_rates.append(await run_sends(raw, count, concurrency))
        provider_rates.append(await run_sends(provider, count, concurrency))
    best_raw, best_provider = max(raw_rates), max(provider_rates)
    return {
        "provider": name,
        "concurrency": concurrency,
        "raw httpx/s": best_raw,
        "provider/s": best_provider,
        "ratio": best_provider / best_raw,
    }


def bench_build(rounds: int) -> list[dict[str, Any]]:
    """Validate + encode a message, beside json.dumps of the same payload (the floor)."""
    import timeit

    big = {f"key{n:02d}": "v" * 28 for n in range(100)}  # the weakest case: 100 keys, ~4 KB
    cases: list[tuple[str, Callable[[], FCMMessage | APNsMessage]]] = [
        ("fcm small", lambda: FCMMessage(token="t", title="Shipped", data={"order": "42"})),
        ("fcm 100 keys", lambda: FCMMessage(token="t", title="Shipped", data=big)),
        ("apns small", lambda: APNsMessage(token="ab" * 32, topic="com.x", alert="Shipped")),
        ("apns 100 keys", lambda: APNsMessage(token="ab" * 32, topic="com.x", alert="x", data=big)),
    ]
    rows = []
    for name, build in cases:
        payload = build().payload()

        def floor_once(payload: dict[str, Any] = payload) -> bytes:
            return json.dumps(payload).encode()

        def ours_once(build: Any = build) -> bytes:
            return bytes(build().encode())

        floor = min(timeit.repeat(floor_once, number=rounds, repeat=3))
        ours = min(timeit.repeat(ours_once, number=rounds, repeat=3))
        rows.append(
            {
                "message": name,
                "json.dumps us": floor / rounds * 1e6,
                "build+encode us": ours / rounds * 1e6,
                "ratio": ours / floor,
            }
        )
    return rows


def start_fake(kind: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve", kind],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, json.loads(process.stdout.readline())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sends", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 50])
    parser.add_argument("--serve", choices=["fcm", "apns"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        anyio.run(serve, args.serve)
        return
    rows = []
    for kind, bench in (("fcm", bench_fcm), ("apns", bench_apns)):
        for concurrency in args.concurrency:
            # A fresh fake per row: APNs refuses a second provider token within 20 minutes.
            process, info = start_fake(kind)
            try:
                rows.append(anyio.run(bench, info, args.sends, concurrency))
            finally:
                assert process.stdin is not None
                process.stdin.close()
                process.wait(timeout=30)
    print_table(rows, ["provider", "concurrency", "raw httpx/s", "provider/s", "ratio"])
    build = bench_build(2000)
    print()
    print_table(build, ["message", "json.dumps us", "build+encode us", "ratio"])
    extra = {"sends": args.sends, "build": build}
    print(f"results: {write_results('push_mobile', rows, extra)}")


if __name__ == "__main__":
    main()
