"""An image-from-image request made into passes, with every size checked before any model
work: the first pass from the init image (img2img, inpainting, outpainting), then the
hires-fix pass. Torch-free: the plan is made where the request is checked."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

from PIL import Image

from engine.contract.errors import InvalidRequest
from engine.contract.generation import GenerateRequest
from engine.editing.canvas import (
    Source,
    blurred,
    crop_box,
    data_url_bytes,
    extended,
    read_mask,
    read_picture,
)

MIN_SIDE = 64


@dataclass(frozen=True)
class Pass:
    strength: float
    steps: int  # asked of the pipeline
    runs: int  # of which it runs: the last `strength` of the schedule


@dataclass(frozen=True)
class Passes:
    """What is drawn beyond text to image; sizes are the first pass's and the final one."""

    source: Source | None  # None: the first pass is text to image
    first: Pass | None  # None: `source` is only upscaled
    upscale: Pass | None
    size: tuple[int, int]
    final: tuple[int, int]
    init_sha256: str | None = None
    mask_sha256: str | None = None

    @property
    def steps(self) -> int:
        """The steps every pass runs together, as a job counts them."""
        return sum(p.runs for p in (self.first, self.upscale) if p is not None)


def schedule(steps: int, strength: float) -> Pass:
    """A pass from an image runs the last `strength` of a `steps` schedule; the schedule is
    made long enough for that to be one step at least (SD-Turbo's one step at 0.5: two)."""
    asked = steps if int(steps * strength) >= 1 else math.ceil(1 / strength)
    return Pass(strength, asked, min(int(asked * strength), asked))


def eight(side: float) -> int:
    return max(MIN_SIDE, int(side) // 8 * 8)


def plan_passes(
    req: GenerateRequest,
    *,
    read_file: Callable[[str], bytes],
    check_size: Callable[[tuple[int, int]], None],
    steps: int,
    size: tuple[int, int],
    native: int,
    seed: int,
) -> Passes:
    """`read_file(name)`: one of the user's images (404 when it is not theirs);
    `check_size(final)`: refuses a final picture past the server's limits, called before any
    canvas is made; `size`: the request's (or the model's) width and height, for text to
    image; `native`: the side the model draws best at (a crop is drawn at it); `seed`: the
    first image's, which also draws an extended area's noise."""
    upscale = schedule(steps, req.upscale_strength) if req.upscale else None
    if req.init_image is None:
        check_size(_scaled(size, req.upscale))
        return Passes(None, Pass(1.0, steps, steps), upscale, size, _scaled(size, req.upscale))
    data = (
        data_url_bytes(req.init_image, "init_image")
        if req.init_image.startswith("data:")
        else read_file(req.init_image)
    )
    picture, sha = read_picture(data, "init_image")
    if min(picture.size) < MIN_SIDE:
        raise InvalidRequest(
            f"init_image is {picture.size[0]}x{picture.size[1]}: at least {MIN_SIDE} px a side",
            code="image_too_small",
        )
    out = (req.width or eight(picture.size[0]), req.height or eight(picture.size[1]))
    first_size = out
    if req.extend is not None:
        e = req.extend
        first_size = (out[0] + e.left + e.right, out[1] + e.top + e.bottom)
    final = _scaled(first_size, req.upscale)
    check_size(final)
    mask, mask_sha = (None, None) if req.mask is None else read_mask(req.mask, picture.size)
    image = picture.resize(out, Image.Resampling.LANCZOS) if picture.size != out else picture
    strength = req.first_pass_strength
    first = None if strength is None else schedule(steps, strength)
    if req.extend is not None:
        source = extended(image, req.extend, req.mask_blur, seed)
    else:
        alpha = None
        if mask is not None:
            alpha = blurred(mask.resize(out, Image.Resampling.BILINEAR), req.mask_blur)
        source = Source(image, alpha)
    if req.mask_crop and source.drawn is not None:
        source = replace(source, crop=crop_box(source.drawn, native))
    return Passes(source, first, upscale, first_size, final, sha, mask_sha)


def _scaled(size: tuple[int, int], factor: float | None) -> tuple[int, int]:
    if not factor:
        return size
    return eight(size[0] * factor), eight(size[1] * factor)
