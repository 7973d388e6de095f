"""Webhook targets against a local receiver that verifies signatures and injects failures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from email.utils import formatdate
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.bff import (
    Profile,
    Projection,
    WebhookDestination,
    deliver,
    new_secret,
    sign,
    verify,
)
from eventpatterns.bff._webhooks import _retry_after
from eventpatterns.bus import Backoff, EventBus
from eventpatterns.core import Event
from eventpatterns.errors import AuthenticationFailed, ConfigurationError, WebhookFailed
from eventpatterns.push import Budget
from eventpatterns.testing import ManualClock, eventually
from eventpatterns.testing._fake_server import (
    Receive,
    Scope,
    Send,
    read_request,
    respond,
    serve_asgi,
)

pytestmark = pytest.mark.anyio

SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
FAST = Backoff(initial=0.01, maximum=0.02, jitter=0)


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Receiver:
    """Verifies every request's signature; answers from a script, then 200."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str]]] = []
        self.accepted: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self.types: list[str] = []
        self.calls = 0
        self.forged = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = await read_request(scope, receive)
        self.calls += 1
        try:
            msg_id = verify(SECRET, request.headers, request.body, now=time.time())
        except AuthenticationFailed:
            self.forged += 1
            await respond(send, 401, {"error": "bad signature"})
            return
        self.ids.append(msg_id)
        self.types.append(request.headers["content-type"])
        if self.script:
            status, headers = self.script.pop(0)
            await respond(send, status, {"error": status}, headers)
            return
        self.accepted.append(json.loads(request.body))
        await respond(send, 204)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    app = Receiver()
    async with serve_asgi(app) as port:
        yield app, f"http://127.0.0.1:{port}/hook"


def destination(url: str, **options: Any) -> WebhookDestination:
    return WebhookDestination(url, SECRET, backoff=FAST, timeout=5, **options)


def order(n: int, kind: str = "shop.order.created") -> Event:
    return Event(type=kind, source="/shop", id=f"e{n}", data={"n": n, "secret": "s", "x": "y"})


async def test_matching_events_are_delivered_signed_and_transformed(
    receiver: tuple[Receiver, str],
) -> None:
    app, url = receiver
    transform = Profile(name="webhook", projections={"shop.order.created": "n as number"})
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as client:
        consumer = await deliver(
            bus,
            "hooks",
            destination=destination(url),
            pattern={"type": ["shop.order.created"]},
            transform=transform,
            client=client,
        )
        await bus.publish(order(1))
        await bus.publish(order(2, "shop.order.cancelled"))  # does not match
        await bus.publish(order(3))
        await consumer.drain()
    assert [body["data"] for body in app.accepted] == [{"number": 1}, {"number": 3}]
    assert app.ids == ["e1", "e3"]
    assert app.forged == 0


async def test_429_and_5xx_are_retried_honouring_retry_after(
    receiver: tuple[Receiver, str],
) -> None:
    app, url = receiver
    app.script = [
        (429, {"retry-after": "0"}),
        (503, {"retry-after": "86400"}),  # cut to max_retry_after
        (500, {"retry-after": formatdate(0)}),  # a date in the past: at once
    ]
    # The backoff is an hour: only honouring Retry-After delivers within the test.
    hour = Backoff(initial=3600, maximum=3600, jitter=0)
    dest = WebhookDestination(url, SECRET, backoff=hour, max_retry_after=0.05, timeout=5)
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as client:
        consumer = await deliver(bus, "hooks", destination=dest, client=client)
        await bus.publish(order(1))
        await consumer.drain()
        assert await bus.dead_letters("hooks") == []
    assert app.ids == ["e1"] * 4  # the same webhook-id on every attempt
    assert [body["id"] for body in app.accepted] == ["e1"]


async def test_after_the_last_attempt_the_event_is_dead_lettered(
    receiver: tuple[Receiver, str],
) -> None:
    app, url = receiver
    app.script = [(503, {})] * 3
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as client:
        consumer = await deliver(
            bus, "hooks", destination=destination(url, max_attempts=3), client=client
        )
        await bus.publish(order(1))
        await consumer.drain()
        dead = await bus.dead_letters("hooks")
        assert [d.event.id for d in dead] == ["e1"]
        assert "HTTP 503 after 3 attempt(s)" in dead[0].error
        assert app.calls == 3
        await bus.redrive("hooks")  # the receiver is back: redriving delivers it
        await eventually(lambda: len(app.accepted) == 1)
    assert [body["id"] for body in app.accepted] == ["e1"]


async def test_a_permanent_refusal_dead_letters_at_once(receiver: tuple[Receiver, str]) -> None:
    app, url = receiver
    wrong = WebhookDestination(url, new_secret(), backoff=FAST, max_attempts=5)  # not its secret
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as client:
        consumer = await deliver(bus, "hooks", destination=wrong, client=client)
        await bus.publish(order(1))
        await consumer.drain()
        dead = await bus.dead_letters("hooks")
    assert app.forged == 1
    assert app.calls == 1
    assert "HTTP 401 after 1 attempt(s)" in dead[0].error


async def test_an_unreachable_destination_is_retried_then_dead_lettered() -> None:
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as client:
        consumer = await deliver(
            bus, "hooks", destination=destination("http://127.0.0.1:1/", max_attempts=2),
            client=client,
        )  # fmt: skip
        await bus.publish(order(1))
        await consumer.drain()
        dead = await bus.dead_letters("hooks")
    assert "ConnectError after 2 attempt(s)" in dead[0].error


async def test_the_client_deliver_made_is_closed_with_the_consumer_and_a_given_one_is_not(
    receiver: tuple[Receiver, str],
) -> None:
    app, url = receiver
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as mine:
        owned = await deliver(bus, "owned", destination=destination(url))
        given_ = await deliver(bus, "given", destination=destination(url), client=mine)
        made = owned._handler.client  # type: ignore[union-attr]
        assert isinstance(made, httpx.AsyncClient)
        assert made is not mine
        await bus.publish(order(1))
        await owned.drain()
        await given_.drain()
        closed = {"made": lambda: made.is_closed, "mine": lambda: mine.is_closed}
        assert not closed["made"]()
        await owned.aclose()
        await given_.aclose()
        assert closed["made"]()
        assert not closed["mine"]()
    assert app.ids == ["e1", "e1"]


async def test_the_rate_limit_holds_sends_until_a_token_is_there(
    receiver: tuple[Receiver, str],
) -> None:
    app, url = receiver
    clock = ManualClock(start=time.time())
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as client:
        await deliver(
            bus, "hooks", destination=destination(url, rate=Budget(2, 60)), client=client,
            clock=clock,
        )  # fmt: skip
        for n in range(4):
            await bus.publish(order(n))
        await eventually(lambda: len(app.accepted) == 2 and clock.sleepers == 1)
        assert len(app.accepted) == 2
        assert app.calls == 2
        clock.advance(30)  # one token back
        await eventually(lambda: len(app.accepted) == 3)
        clock.advance(30)
        await eventually(lambda: len(app.accepted) == 4)
    assert [body["id"] for body in app.accepted] == ["e0", "e1", "e2", "e3"]


async def test_an_event_the_transform_hides_is_acked_not_sent(
    receiver: tuple[Receiver, str],
) -> None:
    app, url = receiver
    compact = Projection.parse("n", form="compact")
    hide = Profile(name="webhook", projections={"shop.order.created": compact}, unlisted="drop")
    async with EventBus.from_url("memory://") as bus, httpx.AsyncClient() as client:
        consumer = await deliver(
            bus, "hooks", destination=destination(url), transform=hide, client=client
        )
        await bus.publish(order(1, "shop.other"))
        await bus.publish(order(2))
        await consumer.drain()
        assert await bus.dead_letters("hooks") == []
    assert app.ids == ["e2"]
    assert app.types == ["application/json"]
    assert app.accepted[0]["data"] == {"n": 2}


def test_the_signature_is_the_standard_webhooks_hmac() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"k" * 32, b"msg_1.1700000000." + body, hashlib.sha256).digest()
    assert sign(SECRET, "msg_1", 1_700_000_000, body) == "v1," + base64.b64encode(expected).decode()


def test_verify_refuses_missing_stale_and_forged_requests() -> None:
    body = b"{}"
    good = {
        "webhook-id": "m",
        "webhook-timestamp": "1000",
        "webhook-signature": sign(SECRET, "m", 1000, body),
    }
    assert verify(SECRET, good, body, now=1100) == "m"
    rotated = {**good, "webhook-signature": "v1,AAAA " + good["webhook-signature"]}
    assert verify(SECRET, rotated, body, now=1100) == "m"
    for headers, now, reason in (
        ({}, 1000, "missing"),
        ({**good, "webhook-timestamp": "¹"}, 1000, "missing"),
        (good, 2000, "expired"),
        ({**good, "webhook-signature": "v1,AAAA"}, 1000, "bad_signature"),
    ):
        with pytest.raises(AuthenticationFailed) as caught:
            verify(SECRET, headers, body, now=now)
        assert caught.value.reason == reason
    with pytest.raises(AuthenticationFailed):
        verify(SECRET, good, b"{ }", now=1000)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: WebhookDestination("ftp://x", SECRET), "http"),
        (lambda: WebhookDestination("http://x", "secret"), "whsec_"),
        (lambda: WebhookDestination("http://x", "whsec_!!"), "not base64"),
        (lambda: WebhookDestination("http://x", "whsec_AAAA"), "24 to 64"),
        (lambda: WebhookDestination("http://x", SECRET, max_attempts=0), "1 to 100"),
        (lambda: WebhookDestination("http://x", SECRET, max_attempts=1.5), "an int"),  # type: ignore[arg-type]
        (lambda: WebhookDestination("http://x", SECRET, timeout=-1), "positive"),
    ],
)
def test_bad_destinations_are_refused(build: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build()


async def test_deliver_refuses_a_bad_start() -> None:
    async with EventBus.from_url("memory://") as bus:
        with pytest.raises(ConfigurationError, match="start"):
            await deliver(bus, "g", destination=destination("http://x"), start="middle")


def test_webhook_failed_carries_context() -> None:
    error = WebhookFailed("no", url="http://x", status_code=503, attempts=3)
    assert isinstance(error, ConnectionError)
    assert error.status_code == 503


def test_retry_after_reads_seconds_and_dates() -> None:
    assert _retry_after("7", 0) == 7.0
    assert _retry_after(formatdate(100, usegmt=True), 40) == 60.0
    assert _retry_after(None, 0) is None
    assert _retry_after("soon", 0) is None


@settings(max_examples=200)
@given(st.text(max_size=40))
def test_retry_after_never_crashes_on_hostile_values(value: str) -> None:
    delay = _retry_after(value, 1_700_000_000)
    assert delay is None or delay >= 0
