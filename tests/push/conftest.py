"""Fixtures shared by the push tests: FakeFCM, FakeAPNs and the adapters that reach them.

Each test module defines its own ``clock`` (a ``ManualClock`` at its ``NOW``); these
fixtures use it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from eventpatterns.push import APNsAdapter, APNsProvider, FCMAdapter, FCMProvider, PushProvider
from eventpatterns.testing import FakeAPNs, FakeFCM, ManualClock


@pytest.fixture
async def fcm(clock: ManualClock) -> AsyncIterator[FakeFCM]:
    async with FakeFCM(clock=clock) as fake:
        yield fake


@pytest.fixture
async def apns(clock: ManualClock) -> AsyncIterator[FakeAPNs]:
    async with FakeAPNs(clock=clock) as fake:
        yield fake


@pytest.fixture
async def adapters(
    fcm: FakeFCM, apns: FakeAPNs, clock: ManualClock
) -> AsyncIterator[dict[str, PushProvider]]:
    """``fcm`` and ``apns`` adapters over real HTTP/2 to the fakes (topic ``com.example.app``)."""
    async with (
        FCMProvider(fcm.service_account, base_url=fcm.base_url, clock=clock) as fcm_provider,
        apns.client() as http,
    ):
        apns_provider = APNsProvider(
            team_id=apns.team_id, key_id=apns.key_id, private_key=apns.private_key,
            client=http, clock=clock, production_url=apns.base_url, sandbox_url=apns.base_url,
        )  # fmt: skip
        yield {
            "fcm": FCMAdapter(fcm_provider),
            "apns": APNsAdapter(apns_provider, topic="com.example.app", clock=clock),
        }
