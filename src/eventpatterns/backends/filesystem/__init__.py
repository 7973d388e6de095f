"""The filesystem backend: blobs as files under one directory (standard library only)."""

from ._blobs import FileBlobStore

__all__ = ["FileBlobStore"]
