"""Hostile clients: probing other users' data, and floods of random frames."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import anyio
import pytest

from eventpatterns import Event, EventBus
from eventpatterns.filters import compile as compile_pattern
from eventpatterns.realtime import (
    CloseCode,
    ErrorCode,
    Gateway,
    Limits,
    MemoryTransport,
    Principal,
    SubscriptionRequest,
)
from eventpatterns.realtime._auth import narrow

from .conftest import client, frames_until, token_authorizer

pytestmark = pytest.mark.anyio


async def owner_only(principal: Principal, request: SubscriptionRequest) -> SubscriptionRequest:
    """The hook of the issue: force ``data.userId == principal.id``."""
    return narrow(request, {"data.userId": [principal.id]})


def probing_subscription(rnd: random.Random, me: str, users: list[str]) -> dict[str, Any]:
    other = rnd.choice(users)
    choices: list[dict[str, Any]] = [
        {},  # everything: narrowed to mine
        {"pattern": {"type": ["msg"]}},
        {"pattern": {"data": {"userId": [other]}}},  # another user's, directly
        {"pattern": {"data": {"userId": [{"prefix": ""}]}}},  # everyone's, by prefix
        {"pattern": {"data": {"userId": [{"anything-but": [me]}]}}},  # all but mine
        {"pattern": {"$or": [{"data": {"userId": [other]}}, {"type": ["msg"]}]}},
        {"pattern": {"data": {"userId": [{"exists": False}]}}},
        {
            "filter": {
                "filterGroup": [
                    {"filters": [{"fieldName": "data.userId", "operator": "ne", "value": me}]}
                ]
            }
        },
        {
            "filter": {
                "filterGroup": [
                    {"filters": [{"fieldName": "type", "operator": "eq", "value": "msg"}]}
                ]
            }
        },
    ]
    return rnd.choice(choices)


@pytest.mark.parametrize("seed", [1, 2])
async def test_randomized_authorization_leaks_nothing(seed: int) -> None:
    rnd = random.Random(seed)
    users = [f"p{n}" for n in range(300)]
    limits = Limits(max_connections_per_principal=3)
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(
            bus, authorizer=token_authorizer, authorize_subscription=owner_only, limits=limits
        ) as gw,
    ):
        conns: list[tuple[str, MemoryTransport]] = []
        accepted: list[list[SubscriptionRequest]] = []
        answers: Counter[str] = Counter()
        for user in users:
            for _ in range(rnd.randint(1, 2)):
                conn, t = await client(gw, f"user:{user}")
                mine: list[SubscriptionRequest] = []
                for n in range(rnd.randint(1, 3)):
                    spec = probing_subscription(rnd, user, users)
                    await conn.receive(json.dumps({"type": "subscribe", "id": f"s{n}", **spec}))
                    [answer] = await frames_until(t, 1)
                    answers[answer.get("code", answer["type"])] += 1
                    if answer["type"] == "subscribed":
                        request = SubscriptionRequest(
                            f"s{n}", spec.get("pattern"), spec.get("filter")
                        )
                        mine.append(await owner_only(Principal(user), request))
                conns.append((user, t))
                accepted.append(mine)
        assert answers["subscribed"] > 300, answers
        assert answers["forbidden"] > 50, answers
        published = [
            Event(
                type=rnd.choice(["msg", "other"]),
                source="/chat",
                data={"userId": rnd.choice(users), "n": n},
            )
            for n in range(2000)
        ] + [Event(type="msg", source="/chat", data={"n": -1})]  # no userId: nobody's
        positions = await bus.publish_batch(published)
        await routed(gw, positions[-1])
        leaked = delivered = 0
        docs = [event.to_dict() for event in published]
        for index, (user, t) in enumerate(conns):
            frames = t.drain()
            for frame in frames:
                assert frame["type"] == "event"
                delivered += 1
                leaked += frame["event"]["data"].get("userId") != user
            if index < 60:  # and each got exactly what its narrowed subscriptions match
                matchers = [
                    compile_pattern(dict(r.filter or r.pattern or {})) for r in accepted[index]
                ]
                expected = sum(m.matches(doc) for m in matchers for doc in docs)
                assert len(frames) == expected
        print(f"\n{len(conns)} connections, {answers}, {delivered} delivered, {leaked} leaked")
        assert leaked == 0
        assert delivered == gw.stats().delivered > 500


async def routed(gw: Gateway, position: str) -> None:
    with anyio.fail_after(10):
        while gw.stats().position != position:  # noqa: ASYNC110 - polls what the reader routed
            await anyio.sleep(0.005)


def random_frame(rnd: random.Random) -> str | bytes:
    kind = rnd.randrange(10)
    if kind == 0:
        return bytes(rnd.randrange(256) for _ in range(rnd.randrange(40)))
    if kind == 1:
        return "".join(chr(rnd.randrange(0x20, 0x2FFF)) for _ in range(rnd.randrange(60)))
    if kind == 2:
        return "{" * rnd.randrange(1, 300)
    if kind == 3:
        return json.dumps(rnd.choice([[], 1, "x", None, {"type": 5}, {"type": "subscribe"}]))
    if kind == 4:
        return json.dumps({"type": rnd.choice(["nope", "SUBSCRIBE", "event", ""])})
    if kind == 5:
        return json.dumps({"type": "unsubscribe", "id": rnd.choice(["a", "b", "zz", "", 3])})
    if kind == 6:
        return json.dumps({"type": "authenticate", "token": rnd.choice(["user:x", "bad", ""])})
    if kind == 7:
        return "x" * rnd.choice([10, 70_000])
    pattern = rnd.choice([
        {"type": ["t"]}, {"data": {"n": [{"numeric": [">", "x"]}]}}, {"a": "not-a-list"},
        {"b": [{"wildcard": "*" * 30}]}, {"$or": []}, {"c": [{"cidr": "bad"}]}, {},
    ])  # fmt: skip
    return json.dumps(
        {
            "type": "subscribe",
            "id": rnd.choice(["a", "b", "c"]),
            "pattern": pattern,
            "since": rnd.choice([None, "earliest", "garbage", "x:1"]),
        }
    )


DOCUMENTED_CLOSES = {int(code) for code in CloseCode}


async def test_thousands_of_random_frames_leave_a_good_client_whole() -> None:
    rnd = random.Random(7)
    async with (
        EventBus.from_url("memory://") as bus,
        Gateway(bus, authorizer=token_authorizer) as gw,
    ):
        good, gt = await client(gw, "user:good")
        await good.receive('{"type":"subscribe","id":"g","pattern":{"type":["t"]}}')
        await frames_until(gt, 1)
        codes: Counter[str] = Counter()
        closes: Counter[int] = Counter()
        attacker = None
        sent = 0
        for n in range(5000):
            if attacker is None or attacker[0].closed:
                if attacker is not None:
                    closes[attacker[1].close_code or 0] += 1
                t = MemoryTransport()
                conn = gw.connect(t)
                if rnd.random() < 0.7:
                    await conn.receive('{"type":"authenticate","token":"user:evil"}')
                attacker = (conn, t)
            await attacker[0].receive(random_frame(rnd))
            sent += 1
            for frame in attacker[1].drain():
                assert frame["type"] in {
                    "connected", "subscribed", "unsubscribed", "error", "pong",
                    "resync-required", "event",
                }  # fmt: skip
                if frame["type"] == "error":
                    codes[ErrorCode(frame["code"]).value] += 1
            if n % 25 == 0:
                await bus.publish(Event(type="t", source="/t", data={"n": n // 25}))
        print(f"\n{sent} random frames: errors {dict(codes)}, closes {dict(closes)}")
        assert set(closes) <= DOCUMENTED_CLOSES
        assert sum(closes.values()) > 0
        assert len(codes) >= 6
        got = await frames_until(gt, 200)
        assert [f["event"]["data"]["n"] for f in got] == list(range(200))
        assert not good.closed
