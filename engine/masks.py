"""Masks over pictures, read the one way everywhere: white (or opaque) is what counts, black (or
transparent) is what does not. A training image's mask says what to learn (#30: its alpha
channel, or a mask file sent beside it); an inpainting mask says what to repaint. PIL and
numpy only."""

from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.contract.errors import InvalidRequest

MASK_FORMATS = ("PNG", "WEBP", "JPEG")
MAX_MASK_SIDE = 4096  # as a training image


def levels(img: Image.Image) -> Image.Image:
    """A mask picture as L levels: a painted layer's transparent parts count as black,
    whatever their colour; any other picture by its brightness."""
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        lum, alpha = img.convert("LA").split()
        out = np.asarray(lum, np.uint16) * np.asarray(alpha) // 255
        return Image.fromarray(out.astype(np.uint8))
    return img.convert("L")


def from_alpha(img: Image.Image) -> Image.Image | None:
    """The alpha channel of a picture with some transparency, as a mask; None if it has none
    (or is opaque everywhere)."""
    if img.mode not in ("RGBA", "LA", "PA") and "transparency" not in img.info:
        return None
    alpha = img.convert("RGBA").getchannel("A")
    return alpha if alpha.getextrema()[0] < 255 else None


def read_mask_file(data: bytes, label: str, size: tuple[int, int]) -> Image.Image:
    """A mask sent as a file for a picture of `size`: its size, or any of the same shape
    (resized to it); 422 naming what is wrong."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=MASK_FORMATS) as img:
                _check_shape(img.size, size, label)  # from its header, before decoding
                img.load()
                mask = levels(img)
    except InvalidRequest:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidRequest(f"{label} is a decompression bomb", code="mask_too_large") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise InvalidRequest(
            f"{label} is not a readable PNG, WEBP or JPEG image", code="invalid_mask"
        ) from exc
    return mask if mask.size == size else mask.resize(size, Image.Resampling.BILINEAR)


def _check_shape(have: tuple[int, int], want: tuple[int, int], label: str) -> None:
    """Its picture's shape (to a pixel), and no larger than a training image may be."""
    off = abs(have[0] * want[1] - have[1] * want[0]) > max(want)
    if off or max(have) > MAX_MASK_SIDE:
        raise InvalidRequest(
            f"{label} is {have[0]}x{have[1]}; it must have its picture's shape "
            f"({want[0]}x{want[1]}), at most {MAX_MASK_SIDE} px a side",
            code="mask_size",
        )


def check_not_empty(mask: Image.Image, label: str, what: str) -> None:
    if mask.getextrema()[1] == 0:
        raise InvalidRequest(f"{label} is all black: {what}", code="empty_mask")


def mask_sha256(mask: Image.Image) -> str:
    """Of the mask's levels and size: the same mask, however it came (alpha or file)."""
    digest = hashlib.sha256(f"{mask.width}x{mask.height}:".encode())
    digest.update(mask.tobytes())
    return digest.hexdigest()
