"""Uploads: LoRAs someone already has (kohya_ss, A1111, Civitai...) and training images."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import warnings
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from fastapi import UploadFile
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from safetensors import SafetensorError, safe_open

from engine import masks
from engine.contract.errors import Conflict, InvalidRequest
from engine.contract.files import (
    ImageUploaded,
    LoraImported,
)
from engine.contract.names import check_file_name
from engine.contract.records import ImageParameters
from engine.contract.schemas import (
    MAX_LORA_BYTES,
    MAX_MASK_BYTES,
    MAX_TRAINING_IMAGE_BYTES,
    WithImages,
)
from engine.storage import UserStore

CHUNK = 1 << 20


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
    store: UserStore,
    user_id: str,
    upload: UploadFile,
    name: str | None,
    overwrite: bool,
    quota_mb: float | None = None,
) -> LoraImported:
    file_name = check_file_name(name or Path(upload.filename or "").name, "loras")
    if store.exists("loras", user_id, file_name) and not overwrite:
        raise Conflict(f"LoRA {file_name!r} already exists; send overwrite=true to replace it")
    store.check_quota(user_id, quota_mb)
    with store.writing("loras", user_id, file_name, replace=overwrite) as tmp:
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
        replaced = store.size("loras", user_id, file_name)
        store.check_quota(user_id, quota_mb, adding=max(1, size - replaced))
    return LoraImported(file=file_name, size=size, url=f"/loras/{file_name}?user_id={user_id}")


MAX_IMAGE_SIDE = 4096
ALLOWED_FORMATS = ("PNG", "JPEG", "WEBP")


@dataclass(frozen=True)
class TrainingImage:
    image: Image.Image  # decoded, EXIF-oriented, RGB, metadata stripped
    sha256: str  # of the upload
    mask: Image.Image | None = None  # L, the image's size: what to learn (white), if masked
    mask_sha256: str | None = None

    def with_mask(self, mask: Image.Image | None, label: str) -> TrainingImage:
        if mask is None or mask.getextrema()[0] == 255:  # all of it learnt: not masked
            return replace(self, mask=None, mask_sha256=None)
        masks.check_not_empty(mask, label, "it hides the whole picture; nothing would be learnt")
        return replace(self, mask=mask, mask_sha256=masks.mask_sha256(mask))


def decode_training_image(data: bytes, label: str, *, masked: bool = False) -> TrainingImage:
    """Check an upload by its content and return a clean re-encoded copy, or raise 422.
    `masked`: an alpha channel with some transparency is the image's mask (#30)."""
    if not data:
        raise InvalidRequest(f"{label} is empty", code="empty_image")
    if len(data) > MAX_TRAINING_IMAGE_BYTES:
        raise InvalidRequest(f"{label} is larger than 20 MB", code="image_too_large")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS) as img:
                if max(img.size) > MAX_IMAGE_SIDE:
                    raise InvalidRequest(
                        f"{label} is {img.size[0]}x{img.size[1]}; the limit is "
                        f"{MAX_IMAGE_SIDE}x{MAX_IMAGE_SIDE}",
                        code="image_too_large",
                    )
                img.load()
                upright = ImageOps.exif_transpose(img)
                rgb = upright.convert("RGB")
                alpha = masks.from_alpha(upright) if masked else None
    except InvalidRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidRequest(f"{label} is a decompression bomb", code="image_too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidRequest(
            f"{label} is not a readable PNG, JPEG or WEBP image", code="invalid_image"
        ) from exc
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())
    image = TrainingImage(clean, hashlib.sha256(data).hexdigest())
    return image.with_mask(alpha, f"{label}'s transparency") if alpha else image


async def save_image_upload(
    store: UserStore, user_id: str, upload: UploadFile, quota_mb: float | None = None
) -> ImageUploaded:
    """An image of the user's own into their gallery: checked and re-encoded as a PNG (its
    metadata stripped) that records `source: upload` and the upload's sha256."""
    image = decode_training_image(await upload.read(MAX_TRAINING_IMAGE_BYTES + 1), "image")
    store.check_quota(user_id, quota_mb)
    now = datetime.now(timezone.utc)
    width, height = image.image.size
    record = ImageParameters(
        user_id=user_id,
        prompt="",
        negative_prompt="",
        loras=[],
        width=width,
        height=height,
        created=now.isoformat(),
        source="upload",
        sha256=image.sha256,
    )
    info = PngImagePlugin.PngInfo()
    info.add_text("loramint", json.dumps(record.record(), sort_keys=True))
    name = f"{now.strftime('%Y%m%d-%H%M%S-%f')}-upload-{image.sha256[:8]}.png"
    with store.writing("outputs", user_id, name) as tmp:
        image.image.save(tmp, format="PNG", pnginfo=info)
    return ImageUploaded(
        file=name, url=f"/images/{name}?user_id={user_id}", width=width, height=height
    )


async def read_form_images(
    store: UserStore, user_id: str, form: WithImages, *, masked: bool = False
) -> list[TrainingImage]:
    """The form's images, decoded and checked: the named gallery images first (read from the
    store: the same 404 as none for another user's), then the uploads. Their count is checked
    by the form. `masked`: for training, each one's transparency is its mask."""
    images = []
    for name in form.gallery:
        file = check_file_name(name, "outputs")
        data = await asyncio.to_thread(store.local_file("outputs", user_id, file).read_bytes)
        images.append(decode_training_image(data, f"gallery image {file}", masked=masked))
    for i, upload in enumerate(form.images, len(images) + 1):
        data = await upload.read(MAX_TRAINING_IMAGE_BYTES + 1)
        images.append(decode_training_image(data, f"image {i}", masked=masked))
    return images


async def with_mask_files(images: list[TrainingImage], files: list[UploadFile]) -> list:
    """Each image with its mask file (in the images' order: the gallery's first), which
    stands in for any alpha channel; none sent: the images as they are."""
    if not files:
        return images
    if len(files) != len(images):
        raise InvalidRequest(
            f"send one mask per image, in their order: {len(images)} images, {len(files)} masks",
            code="mask_count",
        )
    out = []
    for i, (image, upload) in enumerate(zip(images, files, strict=True), 1):
        data = await upload.read(MAX_MASK_BYTES + 1)
        if len(data) > MAX_MASK_BYTES:
            raise InvalidRequest(f"mask {i} is larger than 5 MB", code="mask_too_large")
        mask = masks.read_mask_file(data, f"mask {i}", image.image.size)
        out.append(image.with_mask(mask, f"mask {i}"))
    return out
