"""Importing a LoRA someone already has (from kohya_ss, A1111, Civitai...) into their folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import UploadFile
from safetensors import SafetensorError, safe_open

from engine.errors import Conflict, InvalidRequest
from engine.storage import UserStore, atomic_path, check_file_name

CHUNK = 1 << 20
MAX_LORA_BYTES = 2 << 30


def check_lora_keys(path: Path, label: str) -> None:
    """The file must be safetensors whose tensor names look like LoRA weights."""
    try:
        with safe_open(str(path), framework="numpy") as f:
            keys = list(f.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidRequest(
            f"{label} is not a valid .safetensors file: {exc}", code="invalid_safetensors"
        ) from exc
    if not any("lora" in k.lower() for k in keys):
        raise InvalidRequest(
            f"{label} is a .safetensors file but holds no LoRA weights", code="invalid_lora"
        )


async def save_lora_upload(
    store: UserStore, user_id: str, upload: UploadFile, name: str | None, overwrite: bool
) -> dict[str, Any]:
    file_name = check_file_name(name or Path(upload.filename or "").name, "loras")
    target = store.user_dir("loras", user_id, create=True) / file_name
    if target.exists() and not overwrite:
        raise Conflict(f"LoRA {file_name!r} already exists; send overwrite=true to replace it")
    with atomic_path(target) as tmp:
        size = 0
        with tmp.open("wb") as out:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > MAX_LORA_BYTES:
                    raise InvalidRequest("LoRA file is larger than 2 GiB", code="too_large")
                out.write(chunk)
        if size == 0:
            raise InvalidRequest("the uploaded file is empty", code="empty_file")
        check_lora_keys(tmp, repr(file_name))
    return {"file": file_name, "size": size, "url": f"/loras/{file_name}?user_id={user_id}"}
