"""Hundreds of users, tokens and subscriptions, some probing others' data: 0 leaked events.

The gateway's own end-to-end leak test drives live connections; this one drives the auth
layer exactly as the gateway does (authorizer -> hook -> PatternIndex), so a leak here is
a leak of the auth layer alone.
"""

from __future__ import annotations

import random
from typing import Any

import jwt
import pytest

from eventpatterns.errors import Forbidden
from eventpatterns.filters import PatternIndex
from eventpatterns.realtime import (
    APIKeyAuthorizer,
    Credentials,
    JWTAuthorizer,
    JWTKey,
    Principal,
    SubscriptionRequest,
    owner_only,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # no I/O: the other backend would only double the time


NOW = 1_800_000_000.0
SECRET = "k" * 40
USERS = [f"user-{i}" for i in range(300)]
ADMINS = set(USERS[:5])


def client_request(rng: random.Random, me: str, n: int) -> SubscriptionRequest:
    other = rng.choice(USERS)
    choices: list[dict[str, Any]] = [
        {},
        {"pattern": {"type": ["order.updated"]}},
        {"pattern": {"data": {"userId": [other]}}},  # probing
        {"pattern": {"data": {"userId": [other, me]}}},
        {"pattern": {"data": {"userId": [{"prefix": "user-1"}]}}},  # probing many
        {"pattern": {"data": {"userId": [{"anything-but": me}]}}},  # everyone but me
        {"pattern": {"data.userId": [{"exists": True}], "type": ["order.updated"]}},
        {"pattern": {"$or": [{"data": {"userId": [other]}}, {"type": ["order.shipped"]}]}},
        {"pattern": {"data": {"$or": [{"userId": [other]}, {"kind": ["b"]}]}}},
        {"filter": {"filterGroup": [{"filters": [
            {"fieldName": "data.userId", "operator": "eq", "value": other}]}]}},
        {"filter": {"filterGroup": [
            {"filters": [{"fieldName": "data.userId", "operator": "beginsWith", "value": "user-"}]},
            {"filters": [{"fieldName": "type", "operator": "eq", "value": "order.updated"}]},
        ]}},
    ]  # fmt: skip
    return SubscriptionRequest(f"s{n}", **rng.choice(choices))


def random_event(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    user: Any = rng.choice(USERS)
    if roll < 0.05:
        user = [rng.choice(USERS), rng.choice(USERS)]
    data: dict[str, Any] = {"userId": user, "kind": rng.choice("ab")}
    if roll > 0.97:
        del data["userId"]  # a broadcast event with no owner
    return {"type": rng.choice(["order.updated", "order.shipped"]), "data": data}


def owners(event: dict[str, Any]) -> set[str]:
    user = event["data"].get("userId")
    return set(user) if isinstance(user, list) else {user} if user else set()


async def test_no_event_reaches_a_user_it_does_not_name() -> None:
    rng = random.Random(9)
    jwt_auth = JWTAuthorizer(JWTKey(SECRET, "HS256"), clock=lambda: NOW)
    key_auth = APIKeyAuthorizer(clock=lambda: NOW)
    hook = owner_only()
    principals: dict[str, Principal] = {}
    for i, user in enumerate(USERS):
        scopes = "admin" if user in ADMINS else "orders:read"
        if i % 3 == 0:
            key, _ = key_auth.create_key(user, scopes=scopes.split())
            principal = await key_auth(Credentials(api_key=key))
        else:
            token = jwt.encode({"sub": user, "exp": NOW + 60, "scope": scopes}, SECRET, "HS256")
            principal = await jwt_auth(Credentials(token=token))
        assert principal.id == user
        principals[user] = principal

    index: PatternIndex[tuple[str, str]] = PatternIndex()
    refused = 0
    for user, principal in principals.items():
        for n in range(4):
            request = client_request(rng, user, n)
            if n == 0:
                request = SubscriptionRequest("all")  # everything the user may see
            try:
                narrowed = await hook(principal, request)
            except Forbidden:
                refused += 1
                continue
            index.add((user, request.id), narrowed.pattern or narrowed.filter or {})

    leaked = 0
    delivered = 0
    own: dict[str, int] = dict.fromkeys(USERS, 0)
    received_all: dict[str, int] = dict.fromkeys(USERS, 0)
    for _ in range(5000):
        event = random_event(rng)
        for user in owners(event):
            own[user] += 1
        for user, sub in index.match(event):
            delivered += 1
            if user not in ADMINS and user not in owners(event):
                leaked += 1
            if sub == "all":
                received_all[user] += 1
    assert leaked == 0
    assert delivered > 5000
    assert refused > 100  # the probing subscriptions were refused, not silently kept
    for user in USERS:  # and each user got every event addressed to them
        if user not in ADMINS:
            assert received_all[user] == own[user], user
