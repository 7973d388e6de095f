"""One ``aws://`` URL configures every AWS store: moto_server and the real client."""

from __future__ import annotations

from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eventpatterns.backends import stores_from_url
from eventpatterns.backends.aws import (
    AWSBusBackend,
    DynamoDeviceRegistry,
    DynamoJobStore,
    DynamoPresence,
    S3BlobStore,
)
from eventpatterns.backends.aws._bus_url import STORE_OPTIONS, parse_store_url
from eventpatterns.core import AsyncResource
from eventpatterns.errors import ConfigurationError
from eventpatterns.jobs import Job
from eventpatterns.push import Registration
from eventpatterns.testing import ManualClock

from .conftest import REGION

pytestmark = [pytest.mark.aws, pytest.mark.anyio]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # aiobotocore runs on asyncio only


def every_option_url(endpoint: str) -> str:
    """A URL with the bus's options and an option of every store."""
    return (
        f"aws://?region={REGION}&endpoint_url={quote(endpoint)}&prefix=shop&poll=1"
        "&create=true&bucket=shop-results&max_devices=3&ttl=12&sweep_interval=0.5"
        "&presence_table=shop-here"
    )


async def test_one_url_configures_every_store(aws: str) -> None:
    url = every_option_url(aws)
    jobs = DynamoJobStore.from_url(url)
    blobs = S3BlobStore.from_url(url)
    devices = DynamoDeviceRegistry.from_url(url)
    presence = DynamoPresence.from_url(url)
    assert AWSBusBackend.from_url(url).prefix == "shop"
    assert (jobs.table, blobs.bucket, blobs.prefix) == ("shop-jobs", "shop-results", "shop/")
    assert (devices.table, devices.max_devices) == ("shop-devices", 3)
    assert (presence.table, presence.ttl, presence.sweep_interval) == ("shop-here", 12, 0.5)
    for store in (jobs, blobs, devices, presence):
        assert isinstance(store, AsyncResource)
    async with jobs, blobs, devices, presence:  # create=true: the tables and the bucket
        await jobs.create(Job.new("j1", "render", owner="ann", input={}, now=1.0))
        assert (await jobs.get("j1")) is not None
        await blobs.put("r1", b"result", content_type="text/plain")
        assert (await blobs.get("r1")).data == b"result"
        device = await devices.register("ann", Registration("fcm", "tok-1"), now=1.0)
        assert [d.id for d in await devices.devices("ann")] == [device.id]
        assert await presence.join("room", "ann", connection="c1")
        assert await presence.count("room") == 1
    await jobs.aclose()  # idempotent


def test_keywords_win_and_the_tables_default_to_the_prefix() -> None:
    url = f"aws://?region={REGION}&prefix=app&jobs_table=url-jobs"
    assert DynamoJobStore.from_url(url).table == "url-jobs"
    assert DynamoJobStore.from_url(url, table="kw-jobs").table == "kw-jobs"
    assert DynamoJobStore.from_url(f"aws://?region={REGION}").table == "eventpatterns-jobs"
    assert S3BlobStore.from_url("aws://?bucket=b-1", prefix="x/").prefix == "x/"
    assert S3BlobStore.from_url("aws://?bucket=b-1").prefix == ""


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("aws://?colour=blue", "unknown aws:// option 'colour'"),
        ("aws://?jobs_tabel=x", "unknown aws:// option 'jobs_tabel'"),  # a typo
        ("aws://?poll=0", "poll='0'"),  # the bus's option: checked, then skipped
        ("aws://?ttl=soon", "ttl='soon'"),
        ("aws://?bucket=Not_A_Bucket", "bucket='Not_A_Bucket'"),
        ("aws://?create=maybe", "create='maybe'"),
        ("aws://?region=1&region=2", "region"),
        ("aws://host?region=eu-west-1", "takes only options"),
        ("redis://localhost", "not an aws:// URL"),
    ],
)
def test_bad_urls_name_the_option(url: str, named: str) -> None:
    for cls in (DynamoJobStore, DynamoDeviceRegistry, DynamoPresence, AWSBusBackend):
        with pytest.raises(ConfigurationError, match=named):
            cls.from_url(url)


def test_the_blob_store_needs_a_bucket() -> None:
    with pytest.raises(ConfigurationError, match=r"S3BlobStore\.from_url needs a bucket"):
        S3BlobStore.from_url(f"aws://?region={REGION}")


_NAMES = sorted({name for table in STORE_OPTIONS.values() for name in table} | {"x"})


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(sorted(STORE_OPTIONS)),
    st.lists(st.tuples(st.sampled_from(_NAMES), st.text(max_size=12)), max_size=4),
    st.sampled_from(["aws://", "aws:", "aws://h", "aws:///p", "s3://", ""]),
)
def test_store_url_fuzz(store: str, pairs: list[tuple[str, str]], base: str) -> None:
    """Any URL is the store's own options or a ConfigurationError."""
    try:
        parsed = parse_store_url(f"{base}?{urlencode(pairs)}", store)
    except ConfigurationError:
        return  # refused, in the library's error tree (anything else fails the test)
    assert set(parsed) == {key for key, _ in pairs} & set(STORE_OPTIONS[store])


async def test_stores_from_url_on_aws(aws: str) -> None:
    clock = ManualClock(start=10.0)
    async with stores_from_url(every_option_url(aws), clock=clock) as stores:
        assert stores.backend == "aws"
        assert isinstance(stores.jobs, DynamoJobStore)
        assert isinstance(stores.blobs, S3BlobStore)
        assert isinstance(stores.devices, DynamoDeviceRegistry)
        assert isinstance(stores.presence, DynamoPresence)
        assert stores.dispatch_state is None
        assert stores.push_dead_letters is None
        assert isinstance(stores.bus, AWSBusBackend)
        await stores.jobs.create(Job.new("j1", "render", owner="ann", input={}, now=1.0))
        assert (await stores.jobs.get("j1")) is not None
    without_bucket = stores_from_url(f"aws://?region={REGION}")
    assert without_bucket.blobs is None
    await without_bucket.aclose()


async def test_serve_jobs_runs_on_aws(aws: str) -> None:
    """``eventpatterns serve --jobs`` on an ``aws://`` backend: the jobs in DynamoDB."""
    from eventpatterns import EventBus
    from eventpatterns.jobs._serve import check_backend, running_jobs

    url = f"aws://?region={REGION}&endpoint_url={quote(aws)}&prefix=srv&poll=1&create=true"
    check_backend(url)
    async with (
        EventBus.from_url(url) as bus,
        running_jobs("tests.jobs.serve_app:setup", bus, bus_url=url, base_url="http://h") as run,
    ):
        store = run.tracker.store
        assert isinstance(store, DynamoJobStore)
        assert store.table == "srv-jobs"
        job = await run.tracker.submit("echo", {"text": "hi"}, owner="ann")
        done = await run.tracker.wait(job.id, timeout=30)
        assert done.state.value == "succeeded"
        assert await run.tracker.result(done) == {"text": "hi"}


async def test_an_s3_download_url_carries_the_filename(aws: str) -> None:
    import httpx

    url = f"aws://?region={REGION}&endpoint_url={quote(aws)}&bucket=dl-test&create=true"
    async with S3BlobStore.from_url(url) as blobs:
        await blobs.put("r1", b"day,n\n", content_type="text/csv")
        plain = await blobs.url("r1")
        named = await blobs.url("r1", filename="../Q3 résumé.csv")
        async with httpx.AsyncClient() as http:
            got = await http.get(named)
            assert got.status_code == 200
            assert got.content == b"day,n\n"
            assert got.headers["content-type"] == "text/csv"
            assert got.headers["content-disposition"] == (
                "attachment; filename=\"Q3 r_sum_.csv\"; filename*=UTF-8''Q3%20r%C3%A9sum%C3%A9.csv"
            )
            assert "content-disposition" not in (await http.get(plain)).headers
