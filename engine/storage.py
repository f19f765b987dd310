"""Per-user files under the data dir: safe names, atomic writes, listings with metadata.

Every path a request names goes through `UserStore.resolve`, so no user can reach another
user's folder or anything outside the data dir.
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

from engine.contract.errors import InvalidRequest, NotFound, QuotaExceeded
from engine.contract.names import SUFFIX, Kind, check_file_name, check_user_id


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


@contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` in one step."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.suffix)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        tmp_path.unlink(missing_ok=True)


def read_safetensors_metadata(path: Path) -> dict[str, str]:
    """Parse the header (never the tensors); raise InvalidRequest if it isn't safetensors."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidRequest(
            f"{path.name} is not a valid .safetensors file: {exc}", code="invalid_safetensors"
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
    """The data dir: `loras/{user}/*.safetensors` and `outputs/{user}/*.png`."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir.resolve()

    def user_dir(self, kind: Kind, user_id: str, *, create: bool = False) -> Path:
        folder = self.root / kind / check_user_id(user_id)
        # A link planted in place of a user's folder must not lead anywhere else either.
        if folder.is_symlink():
            raise InvalidRequest(
                f"the {kind} folder of {user_id!r} is a link, which is refused",
                code="invalid_user_folder",
            )
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        return folder

    def resolve(self, kind: Kind, user_id: str, name: str, *, must_exist: bool = True) -> Path:
        folder = self.user_dir(kind, user_id)
        path = folder / check_file_name(name, kind)
        # A symlink planted in a user folder must not lead anywhere else.
        if path.is_symlink() or not path.resolve().is_relative_to(folder.resolve()):
            raise InvalidRequest(f"{name!r} points outside your folder", code="invalid_file_name")
        if must_exist and not path.is_file():
            label = "LoRA" if kind == "loras" else "image"
            raise NotFound(f"{label} {path.name!r} not found for user {user_id!r}")
        return path

    def delete(self, kind: Kind, user_id: str, name: str) -> None:
        self.resolve(kind, user_id, name).unlink()

    def _files(self, kind: Kind, user_id: str) -> list[Path]:
        folder = self.user_dir(kind, user_id)
        if not folder.is_dir():
            return []
        files = [
            p
            for p in folder.iterdir()
            if p.suffix == SUFFIX[kind] and not p.name.startswith(".") and not p.is_symlink()
        ]
        return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)

    def list_loras(self, user_id: str) -> list[dict[str, Any]]:
        return [self.lora_entry(user_id, path) for path in self._files("loras", user_id)]

    def lora_entry(self, user_id: str, path: Path) -> dict[str, Any]:
        st = path.stat()
        try:
            metadata: dict[str, str] | None = read_safetensors_metadata(path)
            error = None
        except InvalidRequest as exc:
            metadata, error = None, exc.message
        return {
            "file": path.name,
            "name": path.stem,
            "size": st.st_size,
            "created": iso(st.st_mtime),
            "url": f"/loras/{path.name}?user_id={user_id}",
            "metadata": metadata,
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
        """How many LoRAs and images the user keeps, and their bytes."""
        out = {}
        for kind, label in (("loras", "loras"), ("outputs", "images")):
            files = self._files(kind, user_id)  # type: ignore[arg-type]
            out[label] = len(files)
            out[f"{label}_bytes"] = sum(p.stat().st_size for p in files)
        return out

    def list_images(
        self, user_id: str, limit: int, cursor: str | None = None, q: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """A page of images, newest first, and the cursor of the next page (None: last).
        The cursor is the last image's (time, name), so deletions don't shift the pages."""
        after = _read_cursor(cursor) if cursor else None
        needle = q.casefold().strip() if q else ""
        items: list[dict[str, Any]] = []
        for path in self._files("outputs", user_id):
            st = path.stat()
            if after is not None and (st.st_mtime_ns, path.name) >= after:
                continue
            entry = self._image_entry(user_id, path, st)
            if needle and needle not in _searchable(entry["parameters"]):
                continue
            if len(items) == limit:
                last = items[-1]
                return items, _cursor(last["mtime_ns"], last["file"])
            items.append(entry)
        return items, None

    def _image_entry(self, user_id: str, path: Path, st: os.stat_result) -> dict[str, Any]:
        info = read_png_parameters(path)
        params = info["parameters"]
        return {
            "file": path.name,
            "url": f"/images/{path.name}?user_id={user_id}",
            "size": st.st_size,
            "created": iso(st.st_mtime),
            "mtime_ns": st.st_mtime_ns,
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
    except (ValueError, TypeError) as exc:
        raise InvalidRequest(
            "cursor: not one this server gave out; pass next_cursor as it came",
            code="invalid_cursor",
        ) from exc
