"""Owner scoping end to end: the gateway delivers a user's job events to that user only."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from eventpatterns import EventBus
from eventpatterns.backends.memory import MemoryBusBackend, MemoryJobStore
from eventpatterns.errors import AuthenticationFailed
from eventpatterns.jobs import JobContext, JobTracker
from eventpatterns.jobs._events import JOB_EVENT_PREFIX, OWNER_ATTRIBUTE
from eventpatterns.realtime import (
    Connection,
    Credentials,
    Gateway,
    MemoryTransport,
    Principal,
    owner_only,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def token_user(credentials: Credentials) -> Principal:
    """``user:<id>`` is that user (a stand-in for a JWT authorizer)."""
    kind, _, user = (credentials.token or "").partition(":")
    if kind != "user" or not user:
        raise AuthenticationFailed("unknown token", reason="invalid")
    return Principal(user)


async def connect(gateway: Gateway, user: str, pattern: Any) -> tuple[Connection, MemoryTransport]:
    transport = MemoryTransport()
    conn = gateway.connect(transport, Credentials())
    await conn.receive(json.dumps({"type": "authenticate", "token": f"user:{user}"}))
    await conn.receive(json.dumps({"type": "subscribe", "id": "jobs", "pattern": pattern}))
    with anyio.fail_after(5):
        hello, answer = await transport.receive(), await transport.receive()
    assert (hello["type"], answer["type"]) == ("connected", "subscribed"), answer
    return conn, transport


async def render(ctx: JobContext[Any]) -> str:
    for step in (1, 2, 3):
        await ctx.progress(step / 4, f"step {step}")
    return "done"


async def test_each_user_gets_their_own_job_progress_and_nobody_elses() -> None:
    every_job_event = {"type": [{"prefix": JOB_EVENT_PREFIX}]}
    async with EventBus(MemoryBusBackend()) as bus:
        tracker = JobTracker(bus, MemoryJobStore(), reaper_interval=0.05)
        tracker.worker("render")(render)
        hook = owner_only(OWNER_ATTRIBUTE)  # narrow each subscription to jobowner = the user
        async with (
            tracker,
            Gateway(bus, authorizer=token_user, authorize_subscription=hook) as gateway,
        ):
            _, alice = await connect(gateway, "alice", every_job_event)
            _, bob = await connect(gateway, "bob", every_job_event)
            # Bob asks for Alice's events by name: narrowed, he still gets only his own.
            _, prying = await connect(gateway, "bob", {"jobowner": ["alice", "bob"]})
            mine = await tracker.submit("render", 1, owner="alice")
            theirs = await tracker.submit("render", 2, owner="bob")
            await tracker.wait(mine.id, timeout=10)
            await tracker.wait(theirs.id, timeout=10)

            async def frames(transport: MemoryTransport) -> list[dict[str, Any]]:
                got: list[dict[str, Any]] = []
                with anyio.fail_after(5):
                    while not got or got[-1]["event"]["type"] != JOB_EVENT_PREFIX + "succeeded":
                        got.append(await transport.receive())
                return [frame["event"] for frame in got]

            seen = {"alice": await frames(alice), "bob": await frames(bob)}
            pried = await frames(prying)
            assert alice.drain() == bob.drain() == prying.drain() == []  # nothing else came
    for user, job in (("alice", mine), ("bob", theirs)):
        events = seen[user]
        assert {e["subject"] for e in events} == {job.id}
        assert {e[OWNER_ATTRIBUTE] for e in events} == {user}
        assert [e["type"].removeprefix(JOB_EVENT_PREFIX) for e in events] == [
            *["pending", "running", "progress", "progress", "progress", "succeeded"]
        ]
        assert [e["data"]["progress"]["message"] for e in events[2:5]] == [
            *["step 1", "step 2", "step 3"]
        ]
    assert pried == seen["bob"]
