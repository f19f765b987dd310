"""Per-user files in the blob store: safe names, atomic writes, listings with metadata.

Every file a request names becomes a storage key through `UserStore.key` (`blobs.blob_key`),
so no user can reach another user's files or anything outside the store.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image
from safetensors import SafetensorError, safe_open

from engine.blobs import BlobFileCache, BlobInfo, BlobStore, blob_key
from engine.contract.errors import Conflict, InvalidRequest, NotFound, QuotaExceeded
from engine.contract.names import SUFFIX, Kind, check_file_name


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


# DoRA's magnitude, as PEFT/diffusers and as kohya/LyCORIS name it.
DORA_KEYS = ("lora_magnitude_vector", "dora_scale")


def read_safetensors_metadata(path: Path, label: str | None = None) -> dict[str, str]:
    """Parse the header (never the tensors); raise InvalidRequest if it isn't safetensors."""
    return read_lora_header(path, label)[0]


def read_lora_header(path: Path, label: str | None = None) -> tuple[dict[str, str], str]:
    """The header's metadata, and "dora" or "lora" by its tensors' names (never the tensors);
    raise InvalidRequest if it isn't safetensors."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            dora = any(k in key for key in f.keys() for k in DORA_KEYS)  # noqa: SIM118 - not a dict
            return dict(f.metadata() or {}), "dora" if dora else "lora"
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidRequest(
            f"{label or path.name} is not a valid .safetensors file: {exc}",
            code="invalid_safetensors",
        ) from exc


def read_png_parameters(path: Path) -> dict[str, Any]:
    with Image.open(path) as img:
        text = dict(getattr(img, "text", {}) or {})
    try:
        params = json.loads(text.get("loramint", "{}"))
    except json.JSONDecodeError:
        params = {}
    return {"parameters": params, "parameters_text": text.get("parameters", "")}


class UserStore:
    """Each user's LoRAs and images (`loras/{user}/*.safetensors`, `outputs/{user}/*.png`) in
    the blob store the settings name: the data dir, or a container every worker shares."""

    def __init__(self, blobs: BlobStore, work_dir: Path) -> None:
        self.blobs = blobs
        # Local copies of shared blobs, and files being written before they are stored.
        self.files = BlobFileCache(blobs, work_dir / "blobs")
        self.incoming = work_dir / "incoming"

    @staticmethod
    def key(kind: Kind, user_id: str, name: str) -> str:
        """The one place a request's user and file name become a storage key."""
        return blob_key(kind, user_id, name)

    @staticmethod
    def _missing(kind: Kind, user_id: str, name: str) -> NotFound:
        if kind not in SUFFIX:  # the engine's own files (training state): named by the engine
            return NotFound(f"{name!r} not found for user {user_id!r}")
        label = "LoRA" if kind == "loras" else "image"
        return NotFound(f"{label} {check_file_name(name, kind)!r} not found for user {user_id!r}")

    def info(self, kind: Kind, user_id: str, name: str) -> BlobInfo:
        try:
            return self.blobs.info(self.key(kind, user_id, name))
        except NotFound:
            raise self._missing(kind, user_id, name) from None

    def size(self, kind: Kind, user_id: str, name: str) -> int:
        """Its size in bytes; 0 when there is no such file."""
        try:
            return self.info(kind, user_id, name).size
        except NotFound:
            return 0

    def exists(self, kind: Kind, user_id: str, name: str) -> bool:
        try:
            self.info(kind, user_id, name)
        except NotFound:
            return False
        return True

    def local_file(self, kind: Kind, user_id: str, name: str) -> Path:
        """A file on this machine with the current content (for loaders that read files)."""
        try:
            return self.files.path(self.key(kind, user_id, name))
        except NotFound:
            raise self._missing(kind, user_id, name) from None

    def stream(self, kind: Kind, user_id: str, name: str) -> tuple[BlobInfo, Iterator[bytes]]:
        try:
            return self.blobs.stream(self.key(kind, user_id, name))
        except NotFound:
            raise self._missing(kind, user_id, name) from None

    @contextmanager
    def writing(
        self,
        kind: Kind,
        user_id: str,
        name: str,
        *,
        replace: bool = True,
        if_match: str | None = None,
    ) -> Iterator[Path]:
        """Yield a temp file to write; once the block ends without error it is stored in one
        step, so no reader ever sees half of it. `replace=False` refuses (409) a file that
        exists by then; `if_match` one that changed since that version was read."""
        key = self.key(kind, user_id, name)
        self.incoming.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.incoming, suffix=Path(name).suffix)
        os.close(fd)
        path = Path(tmp)
        try:
            yield path
            try:
                self.blobs.put_file(key, path, create_only=not replace, if_match=if_match)
            except Conflict:
                label = "LoRA" if kind == "loras" else "image"
                raise Conflict(
                    f"{label} {key.rsplit('/', 1)[1]!r} was "
                    + ("changed meanwhile; try again" if if_match else "created meanwhile")
                ) from None
        finally:
            path.unlink(missing_ok=True)

    def delete(self, kind: Kind, user_id: str, name: str) -> None:
        try:
            self.blobs.delete(self.key(kind, user_id, name))
        except NotFound:
            raise self._missing(kind, user_id, name) from None

    def _files(self, kind: Kind, user_id: str) -> list[BlobInfo]:
        """Newest first; only names a request could ask for (no temp or hidden files)."""
        out = []
        for blob in self.blobs.list(kind, user_id):
            try:
                blob_key(kind, user_id, blob.name)
            except InvalidRequest:
                continue
            if blob.name.endswith(SUFFIX.get(kind, "")):
                out.append(blob)
        return out

    def list_loras(self, user_id: str) -> list[dict[str, Any]]:
        return [self._lora_entry(user_id, b) for b in self._files("loras", user_id)]

    def lora_entry(self, user_id: str, name: str) -> dict[str, Any]:
        return self._lora_entry(user_id, self.info("loras", user_id, name))

    def _lora_entry(self, user_id: str, blob: BlobInfo) -> dict[str, Any]:
        adapter: str | None = None
        metadata: dict[str, str] | None = None
        try:
            metadata, adapter = read_lora_header(self.files.path(blob.key), blob.name)
            error = None
        except InvalidRequest as exc:
            error = exc.message
        except NotFound:  # deleted since it was listed
            error = "deleted meanwhile"
        return {
            "file": blob.name,
            "name": blob.name.removesuffix(SUFFIX["loras"]),
            "size": blob.size,
            # When it was made: the file's time changes with every edit of its metadata.
            "created": (metadata or {}).get("loramint.created") or iso(blob.modified),
            "url": f"/loras/{blob.name}?user_id={user_id}",
            "metadata": metadata,
            "adapter": adapter,
            "error": error,
        }

    def check_quota(self, user_id: str, quota_mb: float | None, adding: int = 0) -> None:
        """Refuse (413) what would take the user past their quota; None: no quota."""
        if quota_mb is None:
            return
        used = sum(v for k, v in self.usage(user_id).items() if k.endswith("_bytes"))
        quota = quota_mb * (1 << 20)
        if used + adding > quota or (adding == 0 and used >= quota):
            raise QuotaExceeded(
                f"you keep {used / (1 << 20):.1f} MB of your {quota_mb:g} MB quota"
                + (f" and this adds {adding / (1 << 20):.1f} MB" if adding else "")
                + "; delete images or LoRAs you no longer need"
            )

    def usage(self, user_id: str) -> dict[str, int]:
        """How many LoRAs, images and training files (checkpoints, training states, the
        images kept for a resume) the user keeps, and their bytes."""
        out = {}
        for kind, label in (("loras", "loras"), ("outputs", "images"), ("jobs", "training")):
            files = self._files(kind, user_id)  # type: ignore[arg-type]
            out[label] = len(files)
            out[f"{label}_bytes"] = sum(b.size for b in files)
        return out

    def list_images(
        self, user_id: str, limit: int, cursor: str | None = None, q: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of images, newest first, and the cursor of the next page (None: last).
        The cursor is the last image's (time, name), so deletions don't shift the pages."""
        after = _read_cursor(cursor) if cursor else None
        needle = q.casefold().strip() if q else ""
        items: list[dict[str, Any]] = []
        for blob in self._files("outputs", user_id):
            stamp = round(blob.modified * 1e9)
            if after is not None and (stamp, blob.name) >= after:
                continue
            try:
                entry = self._image_entry(user_id, blob, stamp)
            except NotFound:  # deleted since it was listed
                continue
            if needle and needle not in _searchable(entry["parameters"]):
                continue
            if len(items) == limit:
                last = items[-1]
                return items, _cursor(last["mtime_ns"], last["file"])
            items.append(entry)
        return items, None

    def _image_entry(self, user_id: str, blob: BlobInfo, stamp: int) -> dict[str, Any]:
        info = read_png_parameters(self.files.path(blob.key))
        params = info["parameters"]
        return {
            "file": blob.name,
            "url": f"/images/{blob.name}?user_id={user_id}",
            "size": blob.size,
            "created": iso(blob.modified),
            "mtime_ns": stamp,
            "prompt": params.get("prompt"),
            "seed": params.get("seed"),
            **info,
        }


def _searchable(params: dict[str, Any]) -> str:
    loras = " ".join(str(lo.get("file", "")) for lo in params.get("loras") or ())
    return f"{params.get('prompt', '')} {loras}".casefold()


def _cursor(mtime_ns: int, name: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([mtime_ns, name]).encode()).decode()


def _read_cursor(cursor: str) -> tuple[int, str]:
    try:
        mtime_ns, name = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(mtime_ns), str(name)
    except (ValueError, TypeError, OverflowError) as exc:  # a forged 1e400 is an overflow
        raise InvalidRequest(
            "cursor: not one this server gave out; pass next_cursor as it came",
            code="invalid_cursor",
        ) from exc
