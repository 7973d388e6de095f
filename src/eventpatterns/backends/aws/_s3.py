"""Blobs on S3: one object per blob, presigned GET URLs, expiry kept with the object."""

from __future__ import annotations

import math
from typing import Any

from ...core import Clock, SystemClock
from ...errors import ConfigurationError
from ...jobs._blobs import Blob, check_key, check_put, not_found
from ...jobs._files import content_disposition
from ._bus_url import store_keywords
from ._client import ClientPool, aws_errors, error_code

__all__ = ["S3BlobStore"]

_MISSING = {"NoSuchKey", "404", "NotFound"}
#: Smallest part S3 accepts in a multipart upload (but the last).
MIN_PART = 5 * 1024 * 1024


class S3BlobStore:
    """A :class:`~eventpatterns.jobs.BlobStore` on an S3 bucket (extra ``aws``).

    Each blob is the object ``<prefix><key>``; its content type is the object's, its
    creation and expiry times are object metadata (``x-amz-meta-created`` /
    ``x-amz-meta-expires``, read from the store's clock), so an expired blob reads as
    missing at once, whatever S3's own lifecycle does. :meth:`purge` deletes expired
    objects (one ``ListObjectsV2`` per 1,000 objects and one ``HeadObject`` per object);
    in production also add a lifecycle rule that expires the prefix after your longest
    TTL, so objects go even if nothing purges. A ``put`` is one ``PutObject`` (atomic:
    a reader gets the old bytes or the new ones), or a multipart upload above
    ``multipart_threshold`` (completed atomically too). :meth:`url` is a presigned
    ``GetObject`` URL, fetched from S3 directly.

    Args:
        bucket: The bucket (it must exist, unless ``create_bucket``).
        prefix: Prepended to every key (e.g. ``"results/"``).
        region: The AWS region.
        endpoint_url: Another endpoint (moto, LocalStack, MinIO).
        max_size: Largest blob accepted, in bytes (default 1 GiB).
        multipart_threshold: Blobs larger than this go up in parts (at least 5 MiB).
        part_size: The size of those parts (at least 5 MiB).
        create_bucket: Create the bucket on first use if it does not exist.
        clock: Where expiry reads the time.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        region: str | None = None,
        endpoint_url: str | None = None,
        max_size: int = 1024 * 1024 * 1024,
        multipart_threshold: int = 16 * 1024 * 1024,
        part_size: int = 8 * 1024 * 1024,
        create_bucket: bool = False,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(bucket, str) or not 3 <= len(bucket) <= 63:
            raise ConfigurationError(f"an S3 bucket name has 3 to 63 characters, got {bucket!r}")
        if part_size < MIN_PART or multipart_threshold < MIN_PART:
            raise ConfigurationError("part_size and multipart_threshold must be at least 5 MiB")
        self.bucket = bucket
        self.prefix = prefix
        self._max_size = max_size
        self._threshold = multipart_threshold
        self._part = part_size
        self._create = create_bucket
        self._ready = not create_bucket
        self._clock = clock or SystemClock()
        self._pool = ClientPool(region=region, endpoint_url=endpoint_url)

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3BlobStore:
        """Build from ``aws://?region=eu-west-1&prefix=myapp&bucket=myapp-results``.

        The query takes ``region``, ``prefix``, ``endpoint_url``, ``create`` (create
        the bucket on first use) and ``bucket``
        (required); the other AWS stores' options (the bus's
        ``bus``, ``poll``...) are skipped, so one URL serves every store. Keys start with
        ``{prefix}/`` when the URL has a ``prefix``.
        Keyword ``options`` win over the URL.

        Raises:
            ConfigurationError: Not an ``aws://`` URL, or a bad or unknown option.
        """
        keywords = store_keywords(url, "S3BlobStore", options)
        bucket = keywords.pop("bucket", None)
        if bucket is None:
            raise ConfigurationError(
                "S3BlobStore.from_url needs a bucket: aws://?bucket=my-bucket&..."
                " (or bucket=... as a keyword)"
            )
        return cls(bucket, **keywords)

    async def __aenter__(self) -> S3BlobStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the S3 client."""
        await self._pool.aclose()

    async def _s3(self) -> Any:
        s3 = await self._pool.client("s3")
        if not self._ready:
            with aws_errors("CreateBucket", resource=self.bucket):
                try:
                    await s3.head_bucket(Bucket=self.bucket)
                except Exception as exc:
                    if error_code(exc) not in ("404", "NoSuchBucket", "NotFound"):
                        raise
                    region = self._pool.region
                    if region and region != "us-east-1":  # us-east-1 takes no constraint
                        await s3.create_bucket(
                            Bucket=self.bucket,
                            CreateBucketConfiguration={"LocationConstraint": region},
                        )
                    else:
                        await s3.create_bucket(Bucket=self.bucket)
            self._ready = True
        return s3

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key[:200]}"

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str = "application/octet-stream",
        ttl: float | None = None,
    ) -> Blob:
        """Store ``data`` under ``key`` (replacing what was there); return the blob."""
        check_key(key)
        seconds = check_put(data, ttl, max_size=self._max_size)
        data = bytes(data)
        now = self._clock.time()
        expires = None if seconds is None else now + seconds
        meta = {"created": repr(now)}
        if expires is not None:
            meta["expires"] = repr(expires)
        s3 = await self._s3()
        name = self.prefix + key
        with aws_errors("PutObject", resource=self._where(key)):
            if len(data) <= self._threshold:
                await s3.put_object(
                    Bucket=self.bucket, Key=name, Body=data, ContentType=content_type, Metadata=meta
                )
            else:
                await self._multipart(s3, name, data, content_type, meta)
        return Blob(key, data, content_type, now, expires)

    async def _multipart(
        self, s3: Any, name: str, data: bytes, content_type: str, meta: dict[str, str]
    ) -> None:
        upload = await s3.create_multipart_upload(
            Bucket=self.bucket, Key=name, ContentType=content_type, Metadata=meta
        )
        upload_id = upload["UploadId"]
        try:
            parts = []
            for number, start in enumerate(range(0, len(data), self._part), start=1):
                answer = await s3.upload_part(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=data[start : start + self._part],
                )
                parts.append({"PartNumber": number, "ETag": answer["ETag"]})
            await s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=name,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with aws_errors("AbortMultipartUpload", resource=name):
                await s3.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
            raise

    def _expired(self, meta: dict[str, str]) -> bool:
        expires = _float(meta.get("expires"))
        return expires is not None and expires <= self._clock.time()

    async def _head(self, s3: Any, key: str) -> dict[str, Any] | None:
        with aws_errors("HeadObject", resource=self._where(key)):
            try:
                head: dict[str, Any] = await s3.head_object(
                    Bucket=self.bucket, Key=self.prefix + key
                )
            except Exception as exc:
                if error_code(exc) in _MISSING:
                    return None
                raise
        return None if self._expired(head.get("Metadata", {})) else head

    async def get(self, key: str) -> Blob:
        """Return the blob (``BlobNotFound`` when missing or expired)."""
        check_key(key)
        s3 = await self._s3()
        with aws_errors("GetObject", resource=self._where(key)):
            try:
                answer = await s3.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except Exception as exc:
                if error_code(exc) in _MISSING:
                    raise not_found(key) from None
                raise
            async with answer["Body"] as body:
                data = await body.read()
        meta = answer.get("Metadata", {})
        if self._expired(meta):
            raise not_found(key)
        created = _float(meta.get("created"))
        return Blob(
            key,
            data,
            answer.get("ContentType", "application/octet-stream"),
            created if created is not None else answer["LastModified"].timestamp(),
            _float(meta.get("expires")),
        )

    async def delete(self, key: str) -> bool:
        """Delete the blob; return whether there was one (a ``HeadObject`` first)."""
        check_key(key)
        s3 = await self._s3()
        found = await self._head(s3, key) is not None
        with aws_errors("DeleteObject", resource=self._where(key)):
            await s3.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        return found

    async def url(
        self, key: str, *, expires_in: float = 3600.0, filename: str | None = None
    ) -> str:
        """Return a presigned ``GetObject`` URL valid for ``expires_in`` seconds.

        With a ``filename``, S3 answers it with ``Content-Disposition: attachment``
        (``ResponseContentDisposition``, signed in the URL).
        """
        check_key(key)
        if not (isinstance(expires_in, int | float) and math.isfinite(expires_in)) or not (
            1 <= expires_in <= 7 * 24 * 3600
        ):
            raise ConfigurationError(
                f"expires_in must be 1 s to 7 days (S3's limit), got {expires_in!r}"
            )
        params = {"Bucket": self.bucket, "Key": self.prefix + key}
        if filename is not None:
            params["ResponseContentDisposition"] = content_disposition(filename)
        s3 = await self._s3()
        if await self._head(s3, key) is None:
            raise not_found(key)
        with aws_errors("GetObject", resource=self._where(key)):
            url: str = await s3.generate_presigned_url(
                "get_object",
                Params=params,
                ExpiresIn=math.ceil(expires_in),
            )
        return url

    async def purge(self) -> int:
        """Delete the expired blobs under the prefix; return how many."""
        s3 = await self._s3()
        removed = 0
        token: str | None = None
        while True:
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            if token:
                args["ContinuationToken"] = token
            with aws_errors("ListObjectsV2", resource=f"s3://{self.bucket}/{self.prefix}"):
                page = await s3.list_objects_v2(**args)
            for item in page.get("Contents", ()):
                name = item["Key"]
                with aws_errors("HeadObject", resource=name):
                    try:
                        head = await s3.head_object(Bucket=self.bucket, Key=name)
                    except Exception as exc:
                        if error_code(exc) in _MISSING:
                            continue
                        raise
                if self._expired(head.get("Metadata", {})):
                    with aws_errors("DeleteObject", resource=name):
                        await s3.delete_object(Bucket=self.bucket, Key=name)
                    removed += 1
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return removed


def _float(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
