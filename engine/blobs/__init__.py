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
from engine.contract.settings import StorageSettings

__all__ = [
    "BlobFileCache",
    "BlobInfo",
    "BlobStore",
    "LocalBlobStore",
    "blob_key",
    "check_key",
    "open_store",
]


def open_store(settings: StorageSettings, root: Path) -> BlobStore:
    """The store the settings name; `root` is the local backend's folder."""
    if settings.Backend == "azure":
        from engine.blobs.azure import AzureBlobStore  # only this backend needs the SDK

        secret = settings.Azure.ConnectionString
        return AzureBlobStore(secret.get_secret_value() if secret else "", settings.Azure.Container)
    return LocalBlobStore(root)
