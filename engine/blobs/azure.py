"""The store in an Azure Blob Storage container (or Azurite), one blob per key.

A blob upload is committed in one step, so readers see the old content or the new, never a
mix; conditional writes use the blob's ETag. Only this module imports the Azure SDK.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from azure.core import MatchConditions
from azure.core.exceptions import (
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobServiceClient

from engine.blobs.base import BlobInfo, BlobStore, check_key, user_prefix
from engine.contract.errors import Conflict, NotFound


@contextmanager
def _errors(key: str):
    try:
        yield
    except ResourceNotFoundError:
        raise NotFound(f"{key} not found") from None
    except (ResourceModifiedError, ResourceExistsError):
        raise Conflict(f"{key} changed since it was read, or already exists") from None


def _info(key: str, props) -> BlobInfo:
    return BlobInfo(key, props.size, props.last_modified.timestamp(), props.etag)


def _condition(if_match: str | None) -> dict:
    if if_match is None:
        return {}
    return {"etag": if_match, "match_condition": MatchConditions.IfNotModified}


class AzureBlobStore(BlobStore):
    def __init__(self, connection_string: str, container: str) -> None:
        service = BlobServiceClient.from_connection_string(connection_string)
        self.container = service.get_container_client(container)
        if not self.container.exists():
            with suppress(ResourceExistsError):  # another worker made it first
                self.container.create_container()

    def _blob(self, key: str):
        return self.container.get_blob_client(check_key(key))

    def put(self, key: str, data: bytes, *, if_match: str | None = None, create_only=False) -> str:
        with _errors(key):
            result = self._blob(key).upload_blob(
                data, overwrite=not create_only, **_condition(if_match)
            )
        return result["etag"]

    def put_file(
        self, key: str, path: Path, *, if_match: str | None = None, create_only=False
    ) -> str:
        with _errors(key), path.open("rb") as f:  # streamed up, in blocks for a large file
            result = self._blob(key).upload_blob(
                f, length=path.stat().st_size, overwrite=not create_only, **_condition(if_match)
            )
        return result["etag"]

    def read(self, key: str) -> tuple[bytes, BlobInfo]:
        with _errors(key):
            download = self._blob(key).download_blob()
            data = download.readall()
        return data, _info(key, download.properties)

    def stream(self, key: str) -> tuple[BlobInfo, Iterator[bytes]]:
        with _errors(key):
            download = self._blob(key).download_blob()
        # The download is pinned to the ETag it started on: a replacement meanwhile fails
        # the rest of the stream instead of splicing two versions.
        return _info(key, download.properties), download.chunks()

    def info(self, key: str) -> BlobInfo:
        with _errors(key):
            return _info(key, self._blob(key).get_blob_properties())

    def list(self, kind: str, user_id: str) -> list[BlobInfo]:
        prefix = user_prefix(kind, user_id)
        out = [
            _info(b.name, b)
            for b in self.container.list_blobs(name_starts_with=prefix)
            if "/" not in b.name[len(prefix) :]
        ]
        return sorted(out, key=lambda b: (b.modified, b.name), reverse=True)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        with _errors(key):
            self._blob(key).delete_blob(**_condition(if_match))
