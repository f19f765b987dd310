"""The store on a local or mounted disk: `{root}/{kind}/{user}/{name}`, written through a temp
file and `os.replace`, so a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock

from engine.atomic import atomic_path
from engine.blobs.base import CHUNK, BlobInfo, BlobStore, check_key, user_prefix
from engine.contract.errors import Conflict, InvalidRequest, NotFound


class LocalBlobStore(BlobStore):
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._locks = self.root / ".locks"

    def _path(self, key: str) -> Path:
        path = self.root / check_key(key)
        # A link planted in place of a user's folder or file must not lead anywhere else.
        self._no_link(path.parent)
        if path.is_symlink():
            raise InvalidRequest(
                f"{path.name!r} is a link, which is refused", code="invalid_file_name"
            )
        return path

    @staticmethod
    def _no_link(folder: Path) -> None:
        if folder.is_symlink():
            raise InvalidRequest(
                f"the {folder.parent.name} folder of {folder.name!r} is a link, which is refused",
                code="invalid_user_folder",
            )

    @staticmethod
    def _info(key: str, st: os.stat_result) -> BlobInfo:
        # os.replace gives every version a new inode: with the time and size it tells
        # versions apart even when two writes land in the same clock tick.
        etag = f'"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}"'
        return BlobInfo(key, st.st_size, st.st_mtime, etag)

    def _lock(self, key: str) -> FileLock:
        self._locks.mkdir(parents=True, exist_ok=True)
        return FileLock(self._locks / (key.replace("/", "~") + ".lock"))

    def put(self, key: str, data: bytes, *, if_match: str | None = None, create_only=False) -> str:
        return self._write(key, lambda tmp: tmp.write_bytes(data), if_match, create_only)

    def put_file(
        self, key: str, path: Path, *, if_match: str | None = None, create_only=False
    ) -> str:
        # shutil.move is a rename when both are on one disk.
        return self._write(key, lambda tmp: shutil.move(path, tmp), if_match, create_only)

    def _write(
        self, key: str, fill: Callable[[Path], object], if_match: str | None, create_only: bool
    ) -> str:
        path = self._path(key)
        with self._lock(key):
            if create_only and path.exists():
                raise Conflict(f"{key} already exists")
            if if_match is not None and self._etag_or_none(path, key) != if_match:
                raise Conflict(f"{key} changed since it was read; read it again")
            with atomic_path(path) as tmp:
                fill(tmp)
            return self._info(key, path.stat()).etag

    def local_file(self, key: str) -> Path | None:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(f"{key} not found")
        return path

    def _etag_or_none(self, path: Path, key: str) -> str | None:
        try:
            return self._info(key, path.stat()).etag
        except FileNotFoundError:
            return None

    def read(self, key: str) -> tuple[bytes, BlobInfo]:
        with self._open(key) as f:
            return f.read(), self._info(key, os.fstat(f.fileno()))

    def stream(self, key: str) -> tuple[BlobInfo, Iterator[bytes]]:
        f = self._open(key)
        info = self._info(key, os.fstat(f.fileno()))

        def chunks() -> Iterator[bytes]:
            with f:  # the open file stays this version even if it is replaced meanwhile
                while chunk := f.read(CHUNK):
                    yield chunk

        return info, chunks()

    def _open(self, key: str):
        try:
            return open(self._path(key), "rb")  # noqa: SIM115 - closed by the callers
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"{key} not found") from None

    def info(self, key: str) -> BlobInfo:
        try:
            return self._info(key, self._path(key).stat())
        except FileNotFoundError:
            raise NotFound(f"{key} not found") from None

    def list(self, kind: str, user_id: str) -> list[BlobInfo]:
        prefix = user_prefix(kind, user_id)
        folder = self.root / prefix
        self._no_link(folder)
        if not folder.is_dir():
            return []
        out = [
            self._info(prefix + p.name, p.stat())
            for p in folder.iterdir()
            if not p.name.startswith(".") and p.is_file() and not p.is_symlink()
        ]
        return sorted(out, key=lambda b: (b.modified, b.name), reverse=True)

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        path = self._path(key)
        with self._lock(key):
            etag = self._etag_or_none(path, key)
            if etag is None:
                raise NotFound(f"{key} not found")
            if if_match is not None and etag != if_match:
                raise Conflict(f"{key} changed since it was read; read it again")
            path.unlink()
