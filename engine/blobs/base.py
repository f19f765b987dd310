"""The storage interface and its key rules, shared by every backend.

A key is `{kind}/{user}/{name}`: the kind from a fixed set, the user id and file name checked
by `engine.contract.names`, so no key can reach another user's files or leave the store. Every
backend checks keys again on each call: a key built anywhere else is refused, not trusted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.contract.errors import InvalidRequest
from engine.contract.names import SUFFIX, check_file_name, check_user_id

# What lives in the store; loras and outputs keep their suffix rule (names.SUFFIX).
KINDS = ("loras", "outputs", "jobs")
CHUNK = 1 << 20


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: float  # seconds since the epoch
    etag: str  # changes whenever the content is replaced

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[1]


def blob_key(kind: str, user_id: str, name: str) -> str:
    if kind not in KINDS:
        raise InvalidRequest(f"storage kind {kind!r} is not one of {KINDS}", code="invalid_kind")
    check_user_id(user_id)
    if kind in SUFFIX:
        name = check_file_name(name, kind)  # type: ignore[arg-type]
    else:
        # Same rule without a fixed suffix: a leading letter or digit, no paths, no "..".
        check_file_name(name + ".safetensors", "loras")
    return f"{kind}/{user_id}/{name}"


def check_key(key: str) -> str:
    parts = key.split("/")
    if len(parts) != 3 or blob_key(*parts) != key:
        raise InvalidRequest(f"storage key {key!r} is invalid", code="invalid_key")
    return key


def user_prefix(kind: str, user_id: str) -> str:
    if kind not in KINDS:
        raise InvalidRequest(f"storage kind {kind!r} is not one of {KINDS}", code="invalid_kind")
    return f"{kind}/{check_user_id(user_id)}/"


class BlobStore(ABC):
    """Whole-blob writes that readers never see half done; ETags for conditional writes.

    Errors: NotFound for a missing key; Conflict when `if_match` is stale or `create_only`
    finds the key taken.
    """

    @abstractmethod
    def put(self, key: str, data: bytes, *, if_match: str | None = None, create_only=False) -> str:
        """Store `data` under `key` in one step; return the new ETag."""

    def put_file(
        self, key: str, path: Path, *, if_match: str | None = None, create_only=False
    ) -> str:
        """Store the file at `path` (a temp file the caller wrote and gives up) under `key`."""
        return self.put(key, path.read_bytes(), if_match=if_match, create_only=create_only)

    def local_file(self, key: str) -> Path | None:
        """The blob as a file on this machine, where the store keeps it so; else None."""
        return None

    @abstractmethod
    def read(self, key: str) -> tuple[bytes, BlobInfo]:
        """The content and the info of that same version."""

    @abstractmethod
    def stream(self, key: str) -> tuple[BlobInfo, Iterator[bytes]]:
        """The info, and the content in chunks, for serving large files."""

    @abstractmethod
    def info(self, key: str) -> BlobInfo: ...

    @abstractmethod
    def list(self, kind: str, user_id: str) -> list[BlobInfo]:
        """One user's blobs of one kind, newest first."""

    @abstractmethod
    def delete(self, key: str, *, if_match: str | None = None) -> None: ...
