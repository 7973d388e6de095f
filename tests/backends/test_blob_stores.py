"""The memory and filesystem blob stores run the public BlobStore suite."""

from __future__ import annotations

from pathlib import Path

import pytest

from eventpatterns.backends.filesystem import FileBlobStore
from eventpatterns.backends.memory import MemoryBlobStore
from eventpatterns.errors import BackendUnavailable, ConfigurationError
from eventpatterns.jobs import BlobStore, URLSigner
from eventpatterns.testing import BlobStoreSuite, ManualClock


class TestMemoryBlobStore(BlobStoreSuite):
    async def make_store(
        self, clock: ManualClock, *, signer: URLSigner, max_size: int
    ) -> BlobStore:
        return MemoryBlobStore(signer=signer, max_size=max_size, clock=clock)


class TestFileBlobStore(BlobStoreSuite):
    @pytest.fixture(autouse=True)
    def _root(self, tmp_path: Path) -> None:
        self.root = tmp_path / "blobs"

    async def make_store(
        self, clock: ManualClock, *, signer: URLSigner, max_size: int
    ) -> BlobStore:
        return FileBlobStore(self.root, signer=signer, max_size=max_size, clock=clock)


def _files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.anyio
async def test_files_stay_under_the_root_and_leave_no_temporary_files(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path / "root")
    await store.put("a/b/c", b"deep")
    await store.put("a/b/c", b"again")
    assert _files(tmp_path) == ["root/a/b/c.blob"]


@pytest.mark.anyio
async def test_a_foreign_file_is_not_mistaken_for_a_blob(tmp_path: Path) -> None:
    store = FileBlobStore(tmp_path)
    (tmp_path / "x.blob").write_bytes(b"no header here")
    with pytest.raises(ConfigurationError, match="not a blob file"):
        await store.get("x")
    assert await store.purge() == 0
    assert (tmp_path / "x.blob").exists()


@pytest.mark.anyio
async def test_a_root_that_is_a_file_is_backend_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(BackendUnavailable, match="blob store"):
        await FileBlobStore(tmp_path / "file").put("k", b"x")


@pytest.mark.anyio
async def test_urls_need_a_signer() -> None:
    store = MemoryBlobStore()
    await store.put("k", b"x")
    with pytest.raises(ConfigurationError, match="URLSigner"):
        await store.url("k")
    with pytest.raises(ConfigurationError, match="32 bytes"):
        URLSigner(b"short", base_url="/b")
