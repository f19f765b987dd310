"""Storage that several engine workers share: LoRAs, images, job artefacts and uploads as
blobs under `{kind}/{user}/{name}` keys, on a local (or mounted) disk or in Azure Blob Storage.

`base.BlobStore` is the one interface; `open_store` picks the backend from the settings, so the
default (local disk) needs no Azure package installed.
"""

from __future__ import annotations

from pathlib import Path

from engine.blobs.base import BlobInfo, BlobStore, blob_key, check_key
from engine.blobs.cache import BlobFileCache
from engine.blobs.local import LocalBlobStore

__all__ = [
    "BlobFileCache",
    "BlobInfo",
    "BlobStore",
    "LocalBlobStore",
    "blob_key",
    "check_key",
    "open_store",
]


def open_store(backend: str, *, root: Path, connection_string: str = "", container: str = ""):
    """The store for `backend` ("local" or "azure")."""
    if backend == "azure":
        from engine.blobs.azure import AzureBlobStore  # only this backend needs the SDK

        return AzureBlobStore(connection_string, container)
    return LocalBlobStore(root)
