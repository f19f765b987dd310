"""Editing a LoRA's metadata in place: the safetensors header is rewritten, the tensor bytes
are copied as they are (no tensor is decoded), and the new file replaces the old atomically."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from safetensors import SafetensorError, safe_open

from engine.contract.errors import InvalidRequest
from engine.storage import atomic_path

MAX_HEADER = 100 << 20  # the safetensors format's own limit


def _read_header(f) -> dict:
    raw = f.read(8)
    if len(raw) != 8:
        raise ValueError("too short")
    (n,) = struct.unpack("<Q", raw)
    if n > MAX_HEADER:
        raise ValueError("header too large")
    return json.loads(f.read(n))


def rewrite_metadata(path: Path, changes: dict[str, str | None]) -> dict[str, str]:
    """Set (or, for None, remove) these metadata keys; returns the new metadata."""
    try:
        with path.open("rb") as src:
            header = _read_header(src)
            meta = {k: v for k, v in (header.pop("__metadata__", None) or {}).items()}
            for key, value in changes.items():
                if value is None:
                    meta.pop(key, None)
                else:
                    meta[key] = value
            body = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
            body += b" " * (-len(body) % 8)  # the format pads the header to 8 bytes
            with atomic_path(path) as tmp:
                with tmp.open("wb") as out:
                    out.write(struct.pack("<Q", len(body)) + body)
                    shutil.copyfileobj(src, out, 1 << 20)
                with safe_open(str(tmp), framework="numpy") as check:
                    written = dict(check.metadata() or {})
    except (OSError, ValueError, SafetensorError) as exc:
        raise InvalidRequest(
            f"{path.name} is not a valid .safetensors file: {exc}", code="invalid_safetensors"
        ) from exc
    return written
