"""A worker's local copies of shared LoRAs, keyed by ETag: each version of a LoRA is
downloaded once per worker, and again only when it changed in the store.

Pipelines load LoRAs from files, so a worker keeps each LoRA it uses as a file named after
its ETag, written through a temp file; copies of older versions are removed.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from filelock import FileLock

from engine.atomic import atomic_path
from engine.blobs.base import BlobStore, check_key


class BlobFileCache:
    def __init__(self, store: BlobStore, folder: Path) -> None:
        self.store = store
        self.folder = folder
        self.downloads = 0  # how many times a blob was fetched (for the tests and /health)

    def path(self, key: str) -> Path:
        """A local file with the current content of `key`."""
        own = self.store.local_file(key)
        if own is not None:  # the store is on this machine's disk: no copy
            return own
        # One folder per key, one file per version in it: older versions are easy to drop.
        folder = self.folder / check_key(key)
        folder.mkdir(parents=True, exist_ok=True)
        with FileLock(folder / ".lock"):
            target = self._version(folder, key, self.store.info(key).etag)
            if target.exists():
                return target
            data, got = self.store.read(key)
            target = self._version(folder, key, got.etag)  # it may have changed meanwhile
            with atomic_path(target) as tmp:
                tmp.write_bytes(data)
            self.downloads += 1
            for old in folder.iterdir():
                if old != target and not old.name.startswith("."):
                    old.unlink(missing_ok=True)
        return target

    @staticmethod
    def _version(folder: Path, key: str, etag: str) -> Path:
        return folder / f"{hashlib.sha256(etag.encode()).hexdigest()[:16]}{Path(key).suffix}"
