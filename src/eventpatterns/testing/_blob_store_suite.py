"""The public conformance suite of :class:`~eventpatterns.jobs.BlobStore`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import pytest

from ..errors import ArgumentTypeError, BlobNotFound, ConfigurationError
from ..jobs import BlobStore, URLSigner
from ._clock import ManualClock
from ._suite_base import SuiteBase, close

__all__ = ["BlobStoreSuite"]

SECRET = b"suite-secret-" * 3


class BlobStoreSuite(SuiteBase):
    """Subclass once per store and implement :meth:`make_store`.

    The store must accept blobs of at least ``max_size`` bytes, refusing larger ones.
    A store served by this library's blob route signs URLs with the ``signer`` given;
    one whose URLs come from elsewhere (S3's presigned URLs) sets :attr:`signs_urls` to
    ``False`` and implements :meth:`fetch_url`.
    """

    max_size = 1024 * 1024

    #: Whether :meth:`~eventpatterns.jobs.BlobStore.url` gives ``signer``-signed URLs.
    signs_urls = True

    async def fetch_url(self, url: str) -> bytes | None:
        """Fetch a URL the store handed out: its bytes, or ``None`` if refused.

        Needed only when :attr:`signs_urls` is ``False``.
        """
        raise NotImplementedError("stores with their own URLs fetch them here")

    async def make_store(
        self, clock: ManualClock, *, signer: URLSigner, max_size: int
    ) -> BlobStore:
        """Return a fresh, empty store on ``clock`` that signs URLs with ``signer``."""
        raise NotImplementedError("subclasses return their store here")

    @pytest.fixture
    def signer(self) -> URLSigner:
        return URLSigner(SECRET, base_url="https://api.example/blobs")

    @pytest.fixture
    async def store(self, clock: ManualClock, signer: URLSigner) -> AsyncIterator[BlobStore]:
        store = await self.make_store(clock, signer=signer, max_size=self.max_size)
        yield store
        await close(store)

    async def test_put_then_get_returns_the_same_bytes(self, store: BlobStore) -> None:
        data = bytes(range(256)) * 100
        put = await store.put("results/j1/video.mp4", data, content_type="video/mp4")
        got = await store.get("results/j1/video.mp4")
        assert (got.data, got.content_type, got.size, got.key) == (
            data, "video/mp4", 25_600, "results/j1/video.mp4",
        )  # fmt: skip
        assert got.created_at == put.created_at
        assert got.expires_at is None

    async def test_put_replaces_and_delete_removes(self, store: BlobStore) -> None:
        await store.put("k", b"one")
        await store.put("k", b"two", content_type="text/plain")
        assert (await store.get("k")).data == b"two"
        assert await store.delete("k") is True
        assert await store.delete("k") is False
        with pytest.raises(BlobNotFound, match="'k'") as info:
            await store.get("k")
        assert info.value.key == "k"

    async def test_an_empty_blob_is_a_blob(self, store: BlobStore) -> None:
        await store.put("empty", b"")
        assert (await store.get("empty")).data == b""

    async def test_blobs_expire_and_are_purged(self, store: BlobStore, clock: ManualClock) -> None:
        await store.put("short", b"x", ttl=10)
        await store.put("long", b"y", ttl=100)
        await store.put("forever", b"z")
        await self.advance(clock, 10)
        with pytest.raises(BlobNotFound):
            await store.get("short")
        assert (await store.get("long")).data == b"y"
        await self.advance(clock, 90)
        assert await store.purge() in (1, 2)  # "short" may be gone already on reading
        assert await store.purge() == 0
        with pytest.raises(BlobNotFound):
            await store.get("long")
        assert (await store.get("forever")).data == b"z"

    async def test_a_url_fetches_the_blob_and_a_tampered_one_does_not(
        self, store: BlobStore
    ) -> None:
        if self.signs_urls:
            pytest.skip("checked through the signer by the next test")
        await store.put("results/j1", b"data")
        url = await store.url("results/j1", expires_in=60)
        assert await self.fetch_url(url) == b"data"
        other = url.replace("results/j1", "results/j2")
        assert await self.fetch_url(other) is None
        with pytest.raises(BlobNotFound):
            await store.url("missing")

    async def test_a_signed_url_verifies_until_it_expires(
        self, store: BlobStore, signer: URLSigner, clock: ManualClock
    ) -> None:
        if not self.signs_urls:
            pytest.skip("the store's URLs are not signed by this library")
        await store.put("results/j1", b"data")
        url = await store.url("results/j1", expires_in=60)
        parts = urlsplit(url)
        assert parts.netloc == "api.example"
        key = unquote(parts.path.removeprefix("/blobs/"))
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        now = clock.time()
        assert signer.verify(key, query["expires"], query["signature"], now=now)
        assert not signer.verify(key, query["expires"], query["signature"], now=now + 61)
        assert not signer.verify("results/j2", query["expires"], query["signature"], now=now)
        forged = str(int(query["expires"]) + 3600)
        assert not signer.verify(key, forged, query["signature"], now=now)
        with pytest.raises(BlobNotFound):
            await store.url("missing")

    @pytest.mark.parametrize(
        "key",
        ["", "../etc/passwd", "a/../../b", "/abs", "a//b", "a/./b", "..", "sp ace", "é", "x" * 513,
         "a\x00b", "trailing/"],
    )  # fmt: skip
    async def test_a_bad_key_is_refused_before_anything_is_touched(
        self, store: BlobStore, key: str
    ) -> None:
        with pytest.raises(ConfigurationError, match="blob key") as info:
            await store.put(key, b"x")
        assert len(str(info.value)) < 300
        with pytest.raises(ConfigurationError):
            await store.get(key)

    @pytest.mark.parametrize("key", [None, 5, b"k"])
    async def test_a_key_that_is_not_a_string_is_a_type_error(
        self, store: BlobStore, key: Any
    ) -> None:
        with pytest.raises(ArgumentTypeError):
            await store.put(key, b"x")

    @pytest.mark.parametrize(("data", "ttl"), [("text", None), (None, None), (b"x", 0), (b"x", -1)])
    async def test_bad_data_or_ttl_is_refused(self, store: BlobStore, data: Any, ttl: Any) -> None:
        with pytest.raises((ArgumentTypeError, ConfigurationError)):
            await store.put("k", data, ttl=ttl)
        with pytest.raises(BlobNotFound):
            await store.get("k")

    async def test_a_blob_over_max_size_is_refused(self, store: BlobStore) -> None:
        await store.put("max", b"x" * self.max_size)
        with pytest.raises(ConfigurationError, match="max_size"):
            await store.put("over", b"x" * (self.max_size + 1))
        with pytest.raises(BlobNotFound):
            await store.get("over")

    async def test_readers_never_see_part_of_a_put(self, store: BlobStore) -> None:
        a, b = b"a" * 200_000, b"b" * 300_000
        await store.put("k", a)
        seen: set[bytes] = set()

        async def writer() -> None:
            for i in range(20):
                await store.put("k", a if i % 2 else b)

        async def reader() -> None:
            for _ in range(40):
                seen.add((await store.get("k")).data)

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            tg.start_soon(reader)
        assert seen <= {a, b}
