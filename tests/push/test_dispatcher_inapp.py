"""In-app first and ack-or-escalate over a real bus and presence; the jobs seam.

Pushes go through the real WebPushProvider to the WebPushReceiver over sockets.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns import Event, EventBus
from eventpatterns.backends.memory import MemoryDeviceRegistry
from eventpatterns.errors import BackendUnavailable
from eventpatterns.jobs import Job, JobState
from eventpatterns.jobs._events import job_event
from eventpatterns.push import (
    ACK_TYPE,
    INAPP_TYPE,
    NOTIFICATION_ID,
    MemoryDispatchState,
    Notification,
    PushDispatcher,
    UserFatigue,
    WebPushProvider,
    job_notification,
    user_channel,
)
from eventpatterns.push._dispatch_inapp import JOB_TYPES, parse_ack
from eventpatterns.realtime import MemoryPresence
from eventpatterns.testing import ManualClock, WebPushReceiver, eventually

from .test_dispatcher import (
    NO_BUDGET,
    NOW,
    browser,
    clock,
    provider,
    receiver,
    registry,
    shown,
)

__all__ = ["clock", "provider", "receiver", "registry"]  # fixtures, used by name

pytestmark = pytest.mark.anyio
ACK_TIMEOUT = 30.0


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    async with EventBus.from_url("memory://") as bus:
        yield bus


@pytest.fixture
async def presence(clock: ManualClock) -> AsyncIterator[MemoryPresence]:
    async with MemoryPresence(ttl=3600, clock=clock) as presence:
        yield presence


@pytest.fixture
async def dispatcher(
    registry: MemoryDeviceRegistry,
    provider: WebPushProvider,
    clock: ManualClock,
    bus: EventBus,
    presence: MemoryPresence,
) -> AsyncIterator[PushDispatcher]:
    from eventpatterns.push import WebPushAdapter

    async with PushDispatcher(
        registry,
        {"webpush": WebPushAdapter(provider)},
        policy=NO_BUDGET,
        presence=presence,
        bus=bus,
        clock=clock,
        ack_timeout=ACK_TIMEOUT,
    ) as dispatcher:
        yield dispatcher


async def connect(presence: MemoryPresence, user: str) -> None:
    """What the gateway (or the app) does for each connection of ``user``."""
    await presence.join(user_channel(user), user, connection=f"{user}-tab-1")


async def test_offline_users_are_pushed(
    registry: MemoryDeviceRegistry, receiver: WebPushReceiver, dispatcher: PushDispatcher
) -> None:
    await browser(registry, receiver, "alice")
    result = await dispatcher.notify("alice", Notification(title="hi"))
    assert result.route == "push"
    assert [shown(m)["data"][NOTIFICATION_ID] for m in receiver.messages] == [result.id]


async def test_online_users_get_it_in_app_owner_scoped(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    presence: MemoryPresence,
    bus: EventBus,
) -> None:
    await browser(registry, receiver, "alice")
    await connect(presence, "alice")
    async with bus.subscribe({"type": [INAPP_TYPE], "data": {"userId": ["alice"]}}) as sub:
        result = await dispatcher.notify("alice", Notification(title="hi", data={"a": "1"}))
        assert (result.route, result.deliveries) == ("inapp", ())
        event = await sub.receive()
    assert event.subject == result.id
    assert event.data == {
        "id": result.id,
        "userId": "alice",
        "title": "hi",
        "body": "",
        "data": {"a": "1", NOTIFICATION_ID: result.id},
        "topic": None,
        "urgency": "normal",
    }
    assert receiver.messages == []


async def test_unacknowledged_in_app_is_pushed_after_the_deadline(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    presence: MemoryPresence,
    clock: ManualClock,
) -> None:
    await browser(registry, receiver, "alice")
    await connect(presence, "alice")
    result = await dispatcher.notify("alice", Notification(title="look"))
    assert result.route == "inapp"
    clock.advance(ACK_TIMEOUT)
    await eventually(lambda: len(receiver.messages) == 1)
    assert shown(receiver.messages[0])["data"][NOTIFICATION_ID] == result.id


async def pushed_after(
    dispatcher: PushDispatcher,
    receiver: WebPushReceiver,
    presence: MemoryPresence,
    clock: ManualClock,
) -> list[str]:
    """Pass the ack deadline, then push a marker while offline; return the titles pushed.

    By then no deadline is left (``awaiting_ack() == []``, and an escalation pushes
    before it is over), so the titles tell whether an acked notification was pushed.
    """
    clock.advance(ACK_TIMEOUT)
    await eventually(lambda: dispatcher.awaiting_ack() == [] and dispatcher.pending == 0)
    await presence.leave(user_channel("alice"), "alice", connection="alice-tab-1")
    marker = await dispatcher.notify("alice", Notification(title="marker"))
    assert marker.route == "push"
    return sorted(shown(m)["title"] for m in receiver.messages)


async def test_acknowledged_in_app_is_not_pushed(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    presence: MemoryPresence,
    clock: ManualClock,
) -> None:
    await browser(registry, receiver, "alice")
    await connect(presence, "alice")
    result = await dispatcher.notify("alice", Notification(title="seen"))
    assert dispatcher.awaiting_ack() == [result.id]
    assert await dispatcher.ack("bob", result.id) is False  # not bob's to ack
    assert await dispatcher.ack("alice", result.id) is True
    assert await dispatcher.ack("alice", result.id) is False  # once
    await eventually(lambda: dispatcher.awaiting_ack() == [])  # its deadline is over
    assert await pushed_after(dispatcher, receiver, presence, clock) == ["marker"]


async def test_an_ack_published_by_the_client_on_the_bus_counts(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    presence: MemoryPresence,
    clock: ManualClock,
    bus: EventBus,
) -> None:
    await browser(registry, receiver, "alice")
    await connect(presence, "alice")
    seen = await dispatcher.notify("alice", Notification(title="seen"))
    other = await dispatcher.notify("alice", Notification(title="missed"))
    for data in (
        {"id": other.id, "userId": "mallory"},  # another user's ack: ignored
        {"id": other.id},  # malformed: ignored
        "junk",
        {"id": seen.id, "userId": "alice"},
    ):
        await bus.publish(Event(type=ACK_TYPE, source="/app", data=data))
    await eventually(lambda: dispatcher.awaiting_ack() == [other.id])
    assert await pushed_after(dispatcher, receiver, presence, clock) == ["marker", "missed"]


async def test_closing_dead_letters_what_waits_for_an_ack(
    registry: MemoryDeviceRegistry,
    provider: WebPushProvider,
    clock: ManualClock,
    bus: EventBus,
    presence: MemoryPresence,
) -> None:
    from eventpatterns.push import WebPushAdapter

    await connect(presence, "alice")
    dispatcher = PushDispatcher(
        registry, {"webpush": WebPushAdapter(provider)}, presence=presence, bus=bus, clock=clock
    )
    async with dispatcher:
        result = await dispatcher.notify("alice", Notification(title="bye"))
    [letter] = await dispatcher.dead_letters.list()
    assert (letter.reason, letter.notification_id, letter.device_id) == (
        "dispatcher closed before ack",
        result.id,
        None,
    )


class _DownPresence(MemoryPresence):
    async def count(self, channel: str) -> int:
        raise BackendUnavailable("presence is down")


async def test_a_presence_that_cannot_answer_means_push(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    provider: WebPushProvider,
    clock: ManualClock,
    bus: EventBus,
) -> None:
    from eventpatterns.push import WebPushAdapter

    await browser(registry, receiver, "alice")
    async with PushDispatcher(
        registry,
        {"webpush": WebPushAdapter(provider)},
        presence=_DownPresence(clock=clock),
        bus=bus,
        clock=clock,
        policy=NO_BUDGET,
    ) as dispatcher:
        assert (await dispatcher.notify("alice", Notification(title="x"))).route == "push"
    assert len(receiver.messages) == 1


def finished(state: JobState, owner: str = "alice", job_id: str = "job-1", **fields: Any) -> Event:
    job = Job.new(job_id, "export", owner=owner, input={}, now=NOW)
    job = dataclasses.replace(job, state=state, version=4, **fields)
    return job_event(job, f"eventpatterns.job.{state.value}", source="/jobs")


def test_job_completions_become_notifications() -> None:
    made = job_notification(finished(JobState.SUCCEEDED))
    assert made is not None
    owner, note = made
    assert owner == "alice"
    assert (note.title, note.body, note.topic) == ("export succeeded", "Done.", None)
    assert note.data == {"jobId": "job-1", "state": "succeeded"}
    assert note.idempotency_key == "job-event:job-1.4"
    assert note.collapse_key == "job:job-1"
    made = job_notification(finished(JobState.FAILED, error="disk full"), topic="jobs")
    assert made is not None
    assert (made[1].title, made[1].body, made[1].topic) == ("export failed", "disk full", "jobs")
    assert job_notification(finished(JobState.RUNNING)) is None
    orphan = Event(type="eventpatterns.job.failed", source="/jobs", data={})
    assert job_notification(orphan) is None
    bare = Event(type="eventpatterns.job.failed", source="/j", extensions={"jobowner": "a"})
    made = job_notification(bare)
    assert made is not None
    assert made[1].body == "It failed."


async def test_job_completions_are_pushed_to_offline_owners_once(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    dispatcher: PushDispatcher,
    presence: MemoryPresence,
    bus: EventBus,
) -> None:
    await browser(registry, receiver, "alice")
    await browser(registry, receiver, "bob")
    await connect(presence, "bob")  # bob sees his job events in the gateway already
    consumer = await dispatcher.notify_jobs(bus)
    done = finished(JobState.SUCCEEDED)
    for event in (
        done,
        done,  # published twice: deduplicated by the bus or by the idempotency key
        finished(JobState.FAILED, owner="bob", job_id="job-2"),
        Event(type="eventpatterns.job.failed", source="/jobs"),  # no owner: skipped
    ):
        await bus.publish(event)
    await consumer.drain()
    # The same completion again (a redelivery): its idempotency key stops it.
    await dispatcher.notify("alice", job_notification(done)[1])  # type: ignore[index]
    titles = [(m.endpoint, shown(m)["title"]) for m in receiver.messages]
    assert [title for _, title in titles] == ["export succeeded"]


class _DownState(MemoryDispatchState):
    down = False

    async def fatigue(self, user: str) -> UserFatigue:
        if self.down:
            raise BackendUnavailable("the state store is down")
        return await super().fatigue(user)


async def test_an_escalation_the_state_store_refuses_is_dead_lettered(
    registry: MemoryDeviceRegistry,
    provider: WebPushProvider,
    clock: ManualClock,
    bus: EventBus,
    presence: MemoryPresence,
) -> None:
    from eventpatterns.push import WebPushAdapter

    state = _DownState()
    await connect(presence, "alice")
    async with PushDispatcher(
        registry,
        {"webpush": WebPushAdapter(provider)},
        presence=presence,
        bus=bus,
        clock=clock,
        state=state,
        ack_timeout=ACK_TIMEOUT,
    ) as dispatcher:
        result = await dispatcher.notify("alice", Notification(title="lost?"))
        state.down = True
        clock.advance(ACK_TIMEOUT)
        await eventually(lambda: dispatcher.awaiting_ack() == [])
        [letter] = await dispatcher.dead_letters.list()
    assert letter.notification_id == result.id
    assert letter.reason == "fan-out failed: BackendUnavailable: the state store is down"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    type_=st.sampled_from([*JOB_TYPES, "eventpatterns.job.running", "other"]),
    owner=st.none()
    | st.from_regex(r"[a-z0-9@.]{1,10}", fullmatch=True)
    | st.integers(-(2**31), 2**31 - 1),
    data=json_values
    | st.fixed_dictionaries(
        {"id": st.text(max_size=300), "kind": json_values, "error": json_values}
    ),
)
def test_job_notification_takes_any_event(type_: str, owner: object, data: object) -> None:
    extensions = {} if owner is None else {"jobowner": owner}
    event = Event(type=type_, source="/fuzz", data=data, extensions=extensions)  # type: ignore[arg-type]
    made = job_notification(event)
    if made is not None:  # only a completion with an owner makes one, and it is valid
        owner_id, note = made
        assert type_ in JOB_TYPES
        assert owner_id == owner
        assert note.idempotency_key == f"job-event:{event.id}"[:255]
        assert note.collapse_key is not None
        assert len(note.collapse_key) <= 255


@settings(max_examples=200, deadline=None)
@given(data=json_values | st.fixed_dictionaries({"id": json_values, "userId": json_values}))
def test_parse_ack_takes_any_data(data: object) -> None:
    ack = parse_ack(data)
    if ack is not None:
        assert isinstance(data, dict)
        assert ack == (data["userId"], data["id"])
        assert all(isinstance(part, str) and part for part in ack)
    assert parse_ack({"id": "n", "userId": "u"}) == ("u", "n")


class _RefusingBus(EventBus):
    async def publish(self, event: Any) -> Any:
        if event.type == INAPP_TYPE:
            raise BackendUnavailable("the bus is down")
        return await super().publish(event)


async def test_an_in_app_notification_the_bus_refuses_is_pushed(
    registry: MemoryDeviceRegistry,
    receiver: WebPushReceiver,
    provider: WebPushProvider,
    clock: ManualClock,
    presence: MemoryPresence,
) -> None:
    from eventpatterns.backends.memory import MemoryBusBackend
    from eventpatterns.push import WebPushAdapter

    await browser(registry, receiver, "alice")
    await connect(presence, "alice")
    async with (
        _RefusingBus(MemoryBusBackend()) as bus,
        PushDispatcher(
            registry,
            {"webpush": WebPushAdapter(provider)},
            presence=presence,
            bus=bus,
            clock=clock,
            policy=NO_BUDGET,
        ) as dispatcher,
    ):
        result = await dispatcher.notify("alice", Notification(title="fallback"))
        assert (result.route, dispatcher.awaiting_ack()) == ("push", [])
    assert [shown(m)["title"] for m in receiver.messages] == ["fallback"]
