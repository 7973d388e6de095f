"""S3BlobStore runs the public BlobStore suite against moto_server, plus S3's own cases."""

from __future__ import annotations

import httpx
import pytest

from eventpatterns.backends.aws import AWSConfigurationError, AWSUnavailable, S3BlobStore
from eventpatterns.errors import BackendUnavailable, BlobNotFound, ConfigurationError
from eventpatterns.jobs import BlobStore, URLSigner
from eventpatterns.testing import BlobStoreSuite, ManualClock

from .conftest import REGION, _free_port


class TestS3BlobStore(BlobStoreSuite):
    anyio_backends = ("asyncio",)  # aiobotocore runs on asyncio only
    signs_urls = False

    @pytest.fixture(autouse=True)
    def _endpoint(self, aws: str) -> None:
        self.endpoint = aws

    async def make_store(
        self, clock: ManualClock, *, signer: URLSigner, max_size: int
    ) -> BlobStore:
        return S3BlobStore(
            "suite-bucket",
            prefix="blobs/",
            region=REGION,
            endpoint_url=self.endpoint,
            max_size=max_size,
            create_bucket=True,
            clock=clock,
        )

    async def fetch_url(self, url: str) -> bytes | None:
        async with httpx.AsyncClient() as client:
            answer = await client.get(url)
        return answer.content if answer.status_code == 200 else None


pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_large_blob_goes_up_in_parts_and_reads_back_whole(aws: str) -> None:
    mib = 1024 * 1024
    store = S3BlobStore(
        "big-bucket",
        region=REGION,
        endpoint_url=aws,
        multipart_threshold=5 * mib,
        part_size=5 * mib,
        create_bucket=True,
    )
    async with store:
        data = bytes(range(256)) * (12 * mib // 256 + 7)  # three parts, the last short
        await store.put("results/video", data, content_type="video/mp4")
        got = await store.get("results/video")
        assert got.data == data
        assert got.content_type == "video/mp4"
        s3 = await store._pool.client("s3")
        head = await s3.head_object(Bucket="big-bucket", Key="results/video")
        assert head["ETag"].strip('"').endswith("-3")  # a multipart object of 3 parts


async def test_a_missing_bucket_is_a_configuration_error_naming_it(aws: str) -> None:
    async with S3BlobStore("no-such-bucket", region=REGION, endpoint_url=aws) as store:
        with pytest.raises(AWSConfigurationError, match="no-such-bucket") as info:
            await store.put("k", b"x")
        assert info.value.code == "NoSuchBucket"
        assert isinstance(info.value, ConfigurationError)
        with pytest.raises(AWSConfigurationError):
            await store.get("k")


async def test_an_unreachable_endpoint_is_backend_unavailable() -> None:
    endpoint = f"http://127.0.0.1:{_free_port()}"
    async with S3BlobStore("some-bucket", region=REGION, endpoint_url=endpoint) as store:
        with pytest.raises(AWSUnavailable, match="cannot reach") as info:
            await store.get("k")
        assert isinstance(info.value, BackendUnavailable)


async def test_objects_put_by_someone_else_read_as_blobs(aws: str) -> None:
    async with S3BlobStore("shared", region=REGION, endpoint_url=aws, create_bucket=True) as store:
        s3 = await store._s3()  # creates the bucket
        await s3.put_object(Bucket="shared", Key="plain", Body=b"hello", ContentType="text/plain")
        blob = await store.get("plain")
        assert (blob.data, blob.content_type, blob.expires_at) == (b"hello", "text/plain", None)
        assert blob.created_at > 0
        with pytest.raises(BlobNotFound):
            await store.get("other")


@pytest.mark.parametrize(
    "kwargs",
    [{"bucket": "ab"}, {"bucket": "x" * 64}, {"part_size": 1024}, {"multipart_threshold": 1}],
)
def test_bad_options_are_refused(kwargs: dict[str, object]) -> None:
    options: dict[str, object] = {"bucket": "fine-bucket", **kwargs}
    with pytest.raises(ConfigurationError):
        S3BlobStore(**options)  # type: ignore[arg-type]


async def test_url_refuses_expiry_beyond_s3s_limit(aws: str) -> None:
    async with S3BlobStore("b-url", region=REGION, endpoint_url=aws, create_bucket=True) as store:
        await store.put("k", b"x")
        for bad in (0, 8 * 24 * 3600, float("nan")):
            with pytest.raises(ConfigurationError, match="7 days"):
                await store.url("k", expires_in=bad)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("SlowDown", 503, AWSUnavailable),
        ("ThrottlingException", 400, AWSUnavailable),
        ("SomethingNew", 502, AWSUnavailable),
        ("AccessDenied", 403, AWSConfigurationError),
    ],
)
def test_client_errors_map_into_the_error_tree_keeping_the_code(
    code: str, status: int, expected: type[Exception]
) -> None:
    from botocore.exceptions import ClientError

    from eventpatterns.backends.aws._client import aws_errors

    response = {"Error": {"Code": code, "Message": "m" * 1000}}
    response["ResponseMetadata"] = {"HTTPStatusCode": status}  # type: ignore[dict-item]
    with (
        pytest.raises(expected, match=f"PutObject on s3://b/k: {code}") as info,
        aws_errors("PutObject", resource="s3://b/k"),
    ):
        raise ClientError(response, "PutObject")
    assert info.value.code == code  # type: ignore[attr-defined]
    assert len(str(info.value)) < 400


def test_missing_credentials_say_how_to_give_them() -> None:
    from botocore.exceptions import NoCredentialsError

    from eventpatterns.backends.aws._client import aws_errors

    with (
        pytest.raises(AWSConfigurationError, match="no credentials") as info,
        aws_errors("GetObject", resource="s3://b/k"),
    ):
        raise NoCredentialsError()
    assert info.value.code == "NoCredentials"
