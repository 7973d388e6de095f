"""AWSBusBackend runs the public bus suites against moto_server, with what it declares."""

from __future__ import annotations

import pytest

from eventpatterns.backends.aws import AWSBusBackend
from eventpatterns.bus import BusBackend
from eventpatterns.testing import BusBackendSuite, ManualClock

from .conftest import REGION


class TestAWSBus(BusBackendSuite):
    anyio_backends = ("asyncio",)  # aiobotocore runs on asyncio only

    @pytest.fixture(autouse=True)
    def _endpoint(self, aws: str) -> None:
        self.endpoint = aws

    async def make_backend(
        self,
        clock: ManualClock,
        *,
        max_entries: int | None = None,
        max_message_size: int | None = None,
    ) -> BusBackend:
        # max_entries: there is no log to bound (capabilities.history is False).
        options = {} if max_message_size is None else {"max_message_size": max_message_size}
        return AWSBusBackend(
            region=REGION,
            bus="suite",
            prefix="suite",
            endpoint_url=self.endpoint,
            poll=1,  # a manual clock's advance is noticed within a second
            clock=clock,
            **options,
        )
