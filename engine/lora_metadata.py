"""Editing a LoRA's metadata: the safetensors header is rewritten, the tensor bytes are copied
as they are (no tensor is decoded) into a new file, which the caller stores in place of the old
in one step."""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

from safetensors import SafetensorError, safe_open

from engine.contract.errors import InvalidRequest

MAX_HEADER = 100 << 20  # the safetensors format's own limit


def _read_header(f) -> dict:
    raw = f.read(8)
    if len(raw) != 8:
        raise ValueError("too short")
    (n,) = struct.unpack("<Q", raw)
    if n > MAX_HEADER:
        raise ValueError("header too large")
    return json.loads(f.read(n))


def rewrite_metadata(
    path: Path, out_path: Path, changes: dict[str, str | None], label: str
) -> dict[str, str]:
    """Write `path` with these metadata keys set (or, for None, removed) to `out_path`;
    returns the new metadata."""
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
            with out_path.open("wb") as out:
                out.write(struct.pack("<Q", len(body)) + body)
                shutil.copyfileobj(src, out, 1 << 20)
            with safe_open(str(out_path), framework="numpy") as check:
                written = dict(check.metadata() or {})
    except (OSError, ValueError, SafetensorError) as exc:
        raise InvalidRequest(
            f"{label} is not a valid .safetensors file: {exc}", code="invalid_safetensors"
        ) from exc
    return written
