"""The gateway shapes each frame for the client's profile (eventpatterns.bff.Profiles)."""

from __future__ import annotations

import pytest

from eventpatterns import EventBus
from eventpatterns.bff import Profile, Profiles, Projection
from eventpatterns.core import EventModel, EventRegistry
from eventpatterns.errors import AuthenticationFailed
from eventpatterns.realtime import Credentials, EventShaper, Gateway, Principal

from .conftest import client, frames_until, subscribe

pytestmark = pytest.mark.anyio

REG = EventRegistry("gateway-profiles")


class Shipped(EventModel, type="shop.order.shipped", source="/shop", registry=REG):
    order_id: str
    total_cents: int
    carrier: str | None = None


class Refunded(EventModel, type="shop.order.refunded", source="/shop", registry=REG):
    order_id: str


async def by_profile(credentials: Credentials) -> Principal:
    """``<user>@<profile>`` → that user, with that profile in its claims."""
    user, _, profile = (credentials.token or "").partition("@")
    if not user or not profile:
        raise AuthenticationFailed("unknown token", reason="invalid")
    return Principal(user, claims={"profile": profile})


PROFILES = Profiles(
    [
        Profile(name="web"),
        Profile(
            name="ios",
            projections={Shipped: Projection.parse("order_id as id, total_cents as total")},
            unlisted="drop",  # refunds are not sent to iOS
        ),
    ],
    registry=REG,
)


async def test_each_profile_gets_its_own_shape_and_what_it_does_not_list_is_not_sent() -> None:
    shaper: EventShaper = PROFILES  # bff's Profiles is what the gateway takes
    bus = EventBus.from_url("memory://")
    async with bus, Gateway(bus, authorizer=by_profile, profiles=shaper) as gateway:
        web_conn, web = await client(gateway, "alice@web")
        ios_conn, ios = await client(gateway, "bob@ios")
        ios2_conn, ios2 = await client(gateway, "carol@ios")
        for conn, transport in ((web_conn, web), (ios_conn, ios), (ios2_conn, ios2)):
            answer = await subscribe(conn, transport, "s1", pattern={"source": ["/shop"]})
            assert answer["type"] == "subscribed", answer
        await bus.publish(Refunded(order_id="o-0"))
        await bus.publish(Shipped(order_id="o-1", total_cents=1999, carrier="ups"))
        web_frames = await frames_until(web, 2)
        [ios_frame] = await frames_until(ios, 1)  # the refund is dropped for iOS
        [ios2_frame] = await frames_until(ios2, 1)
    assert [f["event"]["type"] for f in web_frames] == ["shop.order.refunded", "shop.order.shipped"]
    assert web_frames[1]["event"]["data"] == {
        "order_id": "o-1",
        "total_cents": 1999,
        "carrier": "ups",
    }
    assert ios_frame["event"]["data"] == {"id": "o-1", "total": 1999}
    assert ios_frame["position"] == web_frames[1]["position"]
    assert ios2_frame == ios_frame  # one encoding per profile, shared


async def test_a_replay_is_shaped_for_the_profile_too() -> None:
    async with EventBus.from_url("memory://") as bus:
        first = await bus.publish(Shipped(order_id="o-0", total_cents=1))
        await bus.publish(Refunded(order_id="o-1"))
        await bus.publish(Shipped(order_id="o-2", total_cents=2))
        async with Gateway(bus, authorizer=by_profile, profiles=PROFILES) as gateway:
            conn, ios = await client(gateway, "bob@ios")
            answer = await subscribe(conn, ios, "s1", pattern={"source": ["/shop"]}, since=first)
            assert answer["type"] == "subscribed", answer
            [replayed] = await frames_until(ios, 1)
    assert replayed["event"]["data"] == {"id": "o-2", "total": 2}
