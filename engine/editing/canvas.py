"""The pictures an image-from-image request starts from, checked and laid out before any model
work: the init image at its output size, the mask (blurred, or made by extend), the crop that
`mask_crop` draws, and the paste back that keeps what was not masked. PIL and numpy only."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from engine.contract.errors import InvalidRequest
from engine.contract.generation import Extend
from engine.masks import check_not_empty, levels
from engine.uploads import decode_training_image

Box = tuple[int, int, int, int]  # left, top, right, bottom
EDGE_NOISE = 24.0  # levels of noise over the edge colours an extended area starts from


@dataclass(frozen=True)
class Source:
    """The first pass's input: the picture at the size it is drawn at and, when only part of
    it is drawn anew, `repaint` (where the model draws) and `alpha` (how much of its drawing
    is pasted back: 255 all, 0 none, so the original pixel comes back exactly)."""

    image: Image.Image  # RGB
    alpha: Image.Image | None  # L, the image's size
    crop: Box | None = None  # mask_crop: the part drawn at the model's size, then pasted back
    repaint: Image.Image | None = None  # L; None: as alpha

    @property
    def drawn(self) -> Image.Image | None:
        return self.alpha if self.repaint is None else self.repaint


def data_url_bytes(url: str, field: str) -> bytes:
    head, sep, data = url.partition(",")
    if not sep or not head.startswith("data:image/") or not head.endswith(";base64"):
        raise InvalidRequest(f"{field}: not an image data URL (data:image/...;base64,...)")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest(f"{field}: its base64 can't be decoded") from exc


def read_picture(data: bytes, field: str) -> tuple[Image.Image, str]:
    """An init image by its content, as training uploads are checked; with its sha256."""
    picture = decode_training_image(data, field)
    return picture.image, picture.sha256


def read_mask(url: str, size: tuple[int, int]) -> tuple[Image.Image, str]:
    """The mask (L: white repaints) and its sha256, or 422 naming what is wrong."""
    data = data_url_bytes(url, "mask")
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as img:
            if img.size != size:
                raise InvalidRequest(
                    f"mask is {img.size[0]}x{img.size[1]}; it must be the size of init_image, "
                    f"{size[0]}x{size[1]}",
                    code="mask_size",
                )
            img.load()
            mask = levels(img)  # a painted layer: transparent is kept, whatever its colour
    except InvalidRequest:
        raise
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidRequest("mask is not a readable PNG image", code="invalid_mask") from exc
    check_not_empty(mask, "mask", "paint white where to repaint")
    return mask, hashlib.sha256(data).hexdigest()


def blurred(mask: Image.Image, radius: int) -> Image.Image:
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius else mask


def extended(image: Image.Image, extend: Extend, blur: int, seed: int) -> Source:
    """Outpainting: the picture on a larger canvas whose new area starts from its edge
    colours plus noise."""
    w, h = image.size
    left, top = extend.left, extend.top
    pixels = np.asarray(image, np.float32)
    pad = ((top, extend.bottom), (left, extend.right), (0, 0))
    canvas = np.pad(pixels, pad, mode="edge")
    new = np.ones(canvas.shape[:2], bool)
    new[top : top + h, left : left + w] = False
    rng = np.random.default_rng(seed)
    canvas[new] += rng.normal(0.0, EDGE_NOISE, (int(new.sum()), 3)).astype(np.float32)
    fill = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    hard = Image.fromarray((new * 255).astype(np.uint8))
    # The model draws `blur` px into the picture too, so the seam is drawn as one piece;
    # only the new area is pasted back, so every original pixel comes back as it was.
    repaint = hard
    if blur:
        padded = Image.fromarray(np.pad(np.asarray(hard), blur, mode="edge"))
        grown = padded.filter(ImageFilter.MaxFilter(2 * blur + 1))
        repaint = grown.crop((blur, blur, blur + hard.width, blur + hard.height))
    return Source(fill, hard, repaint=repaint)


def crop_box(alpha: Image.Image, side: int) -> Box:
    """A1111's 'only masked' area: the mask's box, padded by a 16th of the model's side (32 px
    on SD 1.5's 512), grown towards the square the model draws at, within the picture. (The
    drawing is pasted back through the whole blurred mask; outside the box it is the picture.)"""
    w, h = alpha.size
    # Around the mask as painted (its blur's half-way line), not the blur's faint tail, which
    # would widen the crop by 3 blur radii on each side.
    painted = alpha.point(lambda v: 255 if v >= 128 else 0)
    left, top, right, bottom = painted.getbbox() or (0, 0, w, h)
    pad = max(side // 16, 1)
    left, top, right, bottom = left - pad, top - pad, right + pad, bottom + pad
    want = max(right - left, bottom - top)
    left, right = _grow(left, right, want, w)
    top, bottom = _grow(top, bottom, want, h)
    return left, top, right, bottom


def _grow(lo: int, hi: int, want: int, limit: int) -> tuple[int, int]:
    """[lo, hi) grown evenly to `want` long (or as long as fits) inside [0, limit)."""
    want = min(want, limit)
    extra = want - (hi - lo)
    lo -= extra // 2
    hi += extra - extra // 2
    if lo < 0:
        lo, hi = 0, hi - lo
    if hi > limit:
        lo, hi = max(lo - (hi - limit), 0), limit
    return lo, hi


def crop_size(box: Box, side: int) -> tuple[int, int]:
    """The size a crop is drawn at: the model's area at the crop's shape, in multiples of 8."""
    w, h = box[2] - box[0], box[3] - box[1]
    scale = side / max(w, h)
    return max(8, round(w * scale / 8) * 8), max(8, round(h * scale / 8) * 8)


def paste_back(original: Image.Image, drawn: Image.Image, alpha: Image.Image) -> Image.Image:
    """`drawn` where alpha is 255, `original` where it is 0, blended between."""
    a = np.asarray(alpha, np.float32)[..., None] / 255.0
    mixed = np.asarray(original, np.float32) * (1 - a) + np.asarray(drawn, np.float32) * a
    return Image.fromarray(np.clip(mixed.round(), 0, 255).astype(np.uint8))


def match_colours(image: Image.Image, reference: Image.Image) -> Image.Image:
    """`image` with each channel's levels mapped so their spread is `reference`'s (histogram
    matching, as A1111's img2img colour correction): the hires pass's refine keeps its detail
    but not the colour drift of a model drawing above its size. The map only ever raises
    with the level, so edges stay where they were."""
    src, ref = np.asarray(image.convert("RGB")), np.asarray(reference.convert("RGB"))
    out = np.empty_like(src)
    for ch in range(3):
        levels, at, counts = np.unique(src[..., ch], return_inverse=True, return_counts=True)
        ref_levels, ref_counts = np.unique(ref[..., ch], return_counts=True)
        quantiles = np.cumsum(counts) / src[..., ch].size
        ref_quantiles = np.cumsum(ref_counts) / ref[..., ch].size
        mapped = np.interp(quantiles, ref_quantiles, ref_levels)
        out[..., ch] = mapped.round().astype(np.uint8)[at].reshape(src.shape[:2])
    return Image.fromarray(out)
