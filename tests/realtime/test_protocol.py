"""The sans-I/O connection state machine, driven synchronously."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from eventpatterns.errors import InvalidState
from eventpatterns.realtime import CloseCode, ErrorCode, Limits, Principal, ServerProtocol
from eventpatterns.realtime._protocol import (
    AuthenticateRequested,
    State,
    SubscribeRequested,
    UnsubscribeRequested,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def frames(p: ServerProtocol) -> list[dict[str, Any]]:
    return [json.loads(f) for f in p.data_to_send()]


def opened(limits: Limits | None = None, clock: Clock | None = None) -> ServerProtocol:
    p = ServerProtocol(limits=limits, clock=clock or Clock())
    p.receive_text('{"type":"authenticate","token":"t"}')
    [event] = p.events_received()
    assert isinstance(event, AuthenticateRequested)
    assert event.credentials.token == "t"
    p.accept(Principal("u1", expires_at=99.0), "c1")
    assert frames(p) == [
        {"type": "connected", "connection": "c1", "principal": "u1", "expires_at": 99.0}
    ]
    return p


def test_handshake_subscribe_unsubscribe() -> None:
    p = opened()
    assert p.state is State.OPEN
    p.receive_text('{"type":"subscribe","id":"s1","pattern":{"type":["a"]},"since":"e:3"}')
    [event] = p.events_received()
    assert isinstance(event, SubscribeRequested)
    assert (event.request.id, event.request.pattern, event.request.since) == (
        "s1",
        {"type": ["a"]},
        "e:3",
    )
    assert p.subscriptions == {"s1": "pending"}
    p.confirm("s1", "e:3")
    assert frames(p) == [{"type": "subscribed", "id": "s1", "position": "e:3"}]
    p.receive_text('{"type":"subscribe","id":"s1"}')
    assert frames(p)[0]["code"] == "duplicate_id"
    p.receive_text('{"type":"unsubscribe","id":"s1"}')
    assert p.events_received() == [UnsubscribeRequested("s1")]
    assert frames(p) == [{"type": "unsubscribed", "id": "s1"}]
    p.receive_text('{"type":"unsubscribe","id":"s1"}')
    assert frames(p)[0] == {
        "type": "error",
        "code": "unknown_subscription",
        "message": "no subscription 's1'",
        "id": "s1",
    }


def test_before_authentication() -> None:
    p = ServerProtocol()
    p.receive_text('{"type":"subscribe","id":"s1"}')
    p.receive_text('{"type":"ping","payload":[1]}')
    out = frames(p)
    assert out[0]["code"] == "not_authenticated"
    assert out[0]["id"] == "s1"
    assert out[1] == {"type": "pong", "payload": [1]}
    assert p.events_received() == []
    with pytest.raises(InvalidState, match="no authentication is pending"):
        p.accept(Principal("u"), "c")
    p.receive_text('{"type":"authenticate","token":"bad"}')
    p.events_received()
    p.reject_authentication("bad token")
    assert frames(p) == [{"type": "error", "code": "authentication_failed", "message": "bad token"}]
    assert p.close_expected()
    assert p.close_code == CloseCode.AUTHENTICATION_FAILED
    p.receive_text('{"type":"ping"}')  # ignored once closing
    assert frames(p) == []


def test_refresh_must_keep_the_principal() -> None:
    p = opened()
    p.receive_text('{"type":"authenticate","token":"t2"}')
    [event] = p.events_received()
    assert isinstance(event, AuthenticateRequested)
    assert event.refresh
    p.accept(Principal("u1", expires_at=500.0), "c1")
    assert p.principal is not None
    assert p.principal.expires_at == 500.0
    assert frames(p) == []
    p.receive_text('{"type":"authenticate","token":"t3"}')
    p.events_received()
    p.accept(Principal("someone-else"), "c1")
    assert p.close_code == 4401
    assert p.principal is not None
    assert p.principal.id == "u1"


def test_limits() -> None:
    clock = Clock()
    p = opened(Limits(max_subscriptions=2, rate=1.0, rate_burst=3, max_rate_violations=2), clock)
    for n in range(2):
        clock.now += 5  # refill
        p.receive_text(f'{{"type":"subscribe","id":"s{n}"}}')
        p.events_received()
    clock.now += 5
    p.receive_text('{"type":"subscribe","id":"s9"}')
    assert frames(p)[-1]["code"] == "too_many_subscriptions"
    clock.now += 5
    for _ in range(3):
        p.receive_text('{"type":"ping"}')
    p.receive_text('{"type":"ping"}')
    p.receive_text('{"type":"ping"}')
    out = frames(p)
    assert [f["type"] for f in out] == ["pong"] * 3 + ["error"] * 2
    assert out[-1]["code"] == "rate_limited"
    assert p.state is State.OPEN
    p.receive_text('{"type":"ping"}')
    assert p.close_code == CloseCode.TOO_MANY


def test_quiet_client_is_forgiven() -> None:
    clock = Clock()
    p = opened(Limits(rate=1.0, rate_burst=1, max_rate_violations=1), clock)
    for _ in range(5):
        clock.now += 10
        p.receive_text('{"type":"ping"}')
        p.receive_text('{"type":"ping"}')  # one violation, each round
    assert p.state is State.OPEN
    p.receive_text('{"type":"ping"}')  # a second one with no refill between
    assert p.close_code == CloseCode.TOO_MANY


def test_oversize_and_binary() -> None:
    p = opened(Limits(max_frame_bytes=100))
    p.receive_bytes(b"\x00\x01")
    assert frames(p)[0]["code"] == "unsupported_data"
    assert p.state is State.OPEN
    p.receive_text('{"type":"ping","payload":"' + "x" * 100 + '"}')
    assert frames(p)[0]["code"] == "frame_too_large"
    assert p.close_code == CloseCode.MESSAGE_TOO_BIG


def test_driver_misuse_raises_invalid_state() -> None:
    p = opened()
    with pytest.raises(InvalidState, match="not pending"):
        p.confirm("nope", None)
    p.connection_lost()
    assert p.state is State.CLOSED
    with pytest.raises(InvalidState, match="closed"):
        p.confirm("s1", None)


FRAME_TEXTS = st.one_of(
    st.sampled_from(
        [
            '{"type":"authenticate","token":"t"}',
            '{"type":"subscribe","id":"a"}',
            '{"type":"subscribe","id":"b","pattern":{"type":["x"]}}',
            '{"type":"subscribe","id":"a","since":"e:1"}',
            '{"type":"unsubscribe","id":"a"}',
            '{"type":"unsubscribe","id":"b"}',
            '{"type":"ping","payload":{"k":[1,2]}}',
            '{"type":"nope"}',
            "not json",
            "[]",
        ]
    ),
    st.text(max_size=60),
)
KNOWN_TYPES = {"connected", "subscribed", "unsubscribed", "error", "pong", "resync-required"}
KNOWN_CLOSES = {int(c) for c in CloseCode}


@settings(max_examples=300)
@given(st.lists(st.one_of(FRAME_TEXTS, st.binary(max_size=20)), max_size=40), st.randoms())
def test_fuzz_random_frames_only_produce_documented_output(
    inputs: list[str | bytes], rnd: Any
) -> None:
    clock = Clock()
    p = ServerProtocol(limits=Limits(rate=50, rate_burst=20, max_rate_violations=5), clock=clock)
    for item in inputs:
        clock.now += rnd.random() * 0.05
        if isinstance(item, bytes):
            p.receive_bytes(item)
        else:
            p.receive_text(item)
        for event in p.events_received():  # a driver that answers at random
            if isinstance(event, AuthenticateRequested):
                if rnd.random() < 0.8:
                    p.accept(Principal("u"), "c")
                else:
                    p.reject_authentication("no")
            elif isinstance(event, SubscribeRequested) and p.state is State.OPEN:
                if rnd.random() < 0.7:
                    p.confirm(event.request.id, None)
                else:
                    p.refuse(event.request.id, ErrorCode.FORBIDDEN, "no")
        for frame in p.data_to_send():
            parsed = json.loads(frame)
            assert parsed["type"] in KNOWN_TYPES
            if parsed["type"] == "error":
                assert parsed["code"] in {c.value for c in ErrorCode}
        # Invariants: subscriptions only when open, all answered, closes documented.
        if p.state is not State.OPEN:
            assert p.subscriptions == {}
        assert all(v == "active" for v in p.subscriptions.values())
        if p.state is State.CLOSING:
            assert p.close_code in KNOWN_CLOSES


class ProtocolMachine(RuleBasedStateMachine):
    """The connection's state machine against a model: subscriptions, state, closes."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.p = ServerProtocol(limits=Limits(max_subscriptions=3), clock=self.clock)
        self.model: dict[str, str] = {}
        self.pending_auth = False

    def _frames(self) -> list[dict[str, Any]]:
        self.clock.now += 1.0  # never rate limited here: the bucket refills
        return frames(self.p)

    @rule(token=st.sampled_from(["good", "bad"]))
    def authenticate(self, token: str) -> None:
        was_open = self.p.state is State.OPEN
        self.p.receive_text(json.dumps({"type": "authenticate", "token": token}))
        events = self.p.events_received()
        if self.p.state >= State.CLOSING:
            assert events == []
            return
        [event] = events
        assert isinstance(event, AuthenticateRequested)
        assert event.refresh is was_open
        if token == "good":
            self.p.accept(Principal("u"), "c")
        else:
            self.p.reject_authentication("bad")
            self.model.clear()
        out = self._frames()
        if token == "bad":
            assert out[-1]["code"] == "authentication_failed"
            assert self.p.close_code == 4401
        elif not was_open:
            assert out == [{"type": "connected", "connection": "c", "principal": "u",
                            "expires_at": None}]  # fmt: skip

    @rule(sid=st.sampled_from(["a", "b", "c", "d"]), accept=st.booleans())
    def subscribe(self, sid: str, accept: bool) -> None:
        state = self.p.state
        self.p.receive_text(json.dumps({"type": "subscribe", "id": sid}))
        events = self.p.events_received()
        if state is not State.OPEN:
            assert events == []
            out = self._frames()
            assert out == [] if state >= State.CLOSING else out[0]["code"] == "not_authenticated"
            return
        if sid in self.model or len(self.model) >= 3:
            assert events == []
            code = "duplicate_id" if sid in self.model else "too_many_subscriptions"
            assert self._frames()[0]["code"] == code
            return
        [event] = events
        assert isinstance(event, SubscribeRequested)
        if accept:
            self.p.confirm(sid, None)
            self.model[sid] = "active"
            assert self._frames() == [{"type": "subscribed", "id": sid, "position": None}]
        else:
            self.p.refuse(sid, ErrorCode.FORBIDDEN, "no")
            assert self._frames()[0]["code"] == "forbidden"

    @rule(sid=st.sampled_from(["a", "b", "c", "d"]))
    def unsubscribe(self, sid: str) -> None:
        state = self.p.state
        self.p.receive_text(json.dumps({"type": "unsubscribe", "id": sid}))
        events = self.p.events_received()
        out = self._frames()
        if state is State.OPEN and sid in self.model:
            del self.model[sid]
            assert events == [UnsubscribeRequested(sid)]
            assert out == [{"type": "unsubscribed", "id": sid}]
        else:
            assert events == []

    @rule(sid=st.sampled_from(["a", "b", "c", "d"]))
    def server_ends_subscription(self, sid: str) -> None:
        self.p.resync_required(sid, "overflow", "e:1")
        out = self._frames()
        if sid in self.model and self.p.state is State.OPEN:
            del self.model[sid]
            assert out[0]["type"] == "resync-required"
        else:
            assert out == []

    @rule()
    def garbage(self) -> None:
        state = self.p.state
        self.p.receive_text("{nope")
        out = self._frames()
        assert (out == []) if state >= State.CLOSING else (out[0]["code"] == "invalid_json")

    @precondition(lambda self: self.p.state < State.CLOSED)
    @rule()
    def lost(self) -> None:
        self.p.connection_lost()
        self.model.clear()

    @invariant()
    def matches_the_model(self) -> None:
        if self.p.state >= State.CLOSING:
            self.model.clear()
        assert self.p.subscriptions == self.model


TestProtocolMachine = ProtocolMachine.TestCase
TestProtocolMachine.settings = settings(max_examples=150, stateful_step_count=30)
