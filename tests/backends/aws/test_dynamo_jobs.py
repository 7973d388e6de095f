"""DynamoJobStore runs the public JobStore suite against moto_server, plus its own cases."""

from __future__ import annotations

import itertools

import pytest

from eventpatterns.backends.aws import AWSConfigurationError, DynamoJobStore
from eventpatterns.errors import ConfigurationError
from eventpatterns.jobs import Job, JobStore
from eventpatterns.testing import JobStoreSuite, ManualClock

from . import _dynamo_moto
from .conftest import REGION

serial_moto, dynamo = _dynamo_moto.serial_moto, _dynamo_moto.dynamo  # the fixtures

_prefixes = itertools.count()


class TestDynamoJobStore(JobStoreSuite):
    anyio_backends = ("asyncio",)  # aiobotocore runs on asyncio only

    @pytest.fixture(autouse=True)
    def _endpoint(self, dynamo: str) -> None:
        # moto serialised: its threaded server interleaves concurrent transactions
        # (each restores a copy of the table when it fails), which DynamoDB never does.
        self.endpoint = dynamo

    async def make_store(self, clock: ManualClock, *, default_ttl: float) -> JobStore:
        return DynamoJobStore(
            "jobs",
            prefix=f"suite{next(_prefixes)}",
            region=REGION,
            endpoint_url=self.endpoint,
            default_ttl=default_ttl,
            create_table=True,
            clock=clock,
        )


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_two_prefixes_share_a_table_and_never_meet(aws: str) -> None:
    a = DynamoJobStore("shared", prefix="a", region=REGION, endpoint_url=aws, create_table=True)
    b = DynamoJobStore("shared", prefix="b", region=REGION, endpoint_url=aws, create_table=True)
    async with a, b:
        job = Job.new("j1", "render", owner="alice", input={}, now=1.0, run_after=2.0)
        await a.create(job)
        assert await b.get("j1") is None
        assert (await b.list("alice")).jobs == []
        assert await b.due(10.0) == []
        assert await a.due(10.0) == ["j1"]
        other = Job.new("j1", "render", owner="alice", input={"b": 1}, now=1.0)
        assert await b.create(other) == other  # the same id under another prefix


async def test_a_missing_table_is_a_configuration_error_naming_it(aws: str) -> None:
    async with DynamoJobStore("no-such-table", region=REGION, endpoint_url=aws) as store:
        with pytest.raises(AWSConfigurationError, match="no-such-table") as info:
            await store.get("j1")
        assert info.value.code == "ResourceNotFoundException"


@pytest.mark.parametrize(
    "kwargs",
    [{"table": "ab"}, {"prefix": ""}, {"prefix": "a#b"}, {"default_ttl": 0}, {"grace": -1}],
)
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    options: dict[str, object] = {"table": "jobs", **kwargs}
    with pytest.raises(ConfigurationError):
        DynamoJobStore(**options)  # type: ignore[arg-type]
