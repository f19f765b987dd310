"""`POST /generate` in the contract: text to image, and images from images (img2img,
inpainting, outpainting, the hires-fix pass). Torch-free, shared by both processes."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from engine.contract.schemas import (
    MAX_IMAGES,
    MAX_PROMPT,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MAX_TRAINING_IMAGE_BYTES,
    JsonBody,
)

# An image sent inline as a data URL: the upload limit, base64-encoded (4 chars per 3 bytes).
MAX_INLINE_IMAGE_CHARS = MAX_TRAINING_IMAGE_BYTES * 4 // 3 + 64
MAX_MASK_CHARS = 8 << 20  # a black-and-white PNG: far smaller than a picture of that size
# The body of a /generate with both inline, and 1 MB for the rest, rounded up to say in words.
MAX_GENERATE_BYTES = 40 << 20
assert MAX_GENERATE_BYTES >= MAX_INLINE_IMAGE_CHARS + MAX_MASK_CHARS + (1 << 20)
IMG2IMG_STRENGTH = 0.6  # A1111's 0.75 changes too much of a picture to call it the same one
UPSCALE_STRENGTH = 0.35
# Outpainting draws over edge colours plus noise; drawn from pure noise (1.0) the new area
# often repeats the subject (the demo model: 16 of 20 strips plain, 19-20 at 0.7-0.85).
OUTPAINT_STRENGTH = 0.8


class LoraSpec(JsonBody):
    file: str = Field(..., min_length=1, max_length=140, description="LoRA file in your folder.")
    strength: float = Field(1.0, ge=-2.0, le=2.0, description="Adapter weight, -2..2.")


def _multiple_of_8(v: int | None) -> int | None:
    if v is not None and v % 8:
        raise ValueError(f"{v} is not a multiple of 8")
    return v


class Extend(JsonBody):
    """Outpainting: how many pixels to add on each side (multiples of 8)."""

    left: int = Field(0, ge=0, le=MAX_SIDE)
    right: int = Field(0, ge=0, le=MAX_SIDE)
    top: int = Field(0, ge=0, le=MAX_SIDE)
    bottom: int = Field(0, ge=0, le=MAX_SIDE)

    _eights = field_validator("left", "right", "top", "bottom")(_multiple_of_8)

    @model_validator(mode="after")
    def _some_side(self) -> Extend:
        if not (self.left or self.right or self.top or self.bottom):
            raise ValueError("extend: give at least one side more than 0 px")
        return self


class GenerateRequest(JsonBody):
    prompt: str = Field(..., max_length=MAX_PROMPT, description="What to draw; not blank.")
    negative_prompt: str = Field("", max_length=MAX_PROMPT, description="What to avoid.")
    loras: list[LoraSpec] = Field(
        default_factory=list, description="Your LoRAs to stack, each at its strength."
    )
    seed: int | None = Field(
        None, ge=0, le=MAX_SEED, description="Drawn when omitted; image i uses seed + i."
    )
    steps: int | None = Field(None, ge=1, le=MAX_STEPS, description="Model default when omitted.")
    guidance_scale: float | None = Field(
        None, ge=0.0, le=30.0, description="Model default when omitted."
    )
    width: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Multiple of 8; model default when omitted (with init_image: its width).",
    )
    height: int | None = Field(
        None,
        ge=64,
        le=MAX_SIDE,
        description="Multiple of 8; model default when omitted (with init_image: its height).",
    )
    num_images: int = Field(1, ge=1, le=MAX_IMAGES, description="Images in this request.")
    init_image: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_INLINE_IMAGE_CHARS,
        description="Start from this image: the file name of one of your images, or a PNG, "
        "JPEG or WEBP data URL (the only way in preview mode). Alone: img2img.",
    )
    strength: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="How much of init_image is drawn anew, above 0 (a touch) to 1 (all). Default "
        f"{IMG2IMG_STRENGTH} (img2img), 1 with a mask (drawn anew), {OUTPAINT_STRENGTH} with "
        "extend (over the edge colours); "
        "with upscale alone, no img2img pass is made unless it is given.",
    )
    mask: str | None = Field(
        None,
        max_length=MAX_MASK_CHARS,
        description="Inpainting: a PNG data URL the size of init_image, white where to "
        "repaint, black where to keep. Pixels outside the blurred mask come back unchanged.",
    )
    mask_blur: int = Field(4, ge=0, le=64, description="Soften the mask's edge by this many px.")
    mask_crop: bool = Field(
        False,
        description="Inpaint only a padded crop around the mask, drawn at the model's own "
        "size, then pasted back (A1111's 'only masked'): more detail, and a small model "
        "draws a whole subject there.",
    )
    extend: Extend | None = Field(
        None, description="Outpainting: px to add per side; the new area is drawn anew."
    )
    upscale: float | None = Field(
        None,
        ge=1.0,
        le=2.0,
        description="Hires fix: enlarge the result (or init_image) by this factor and refine "
        "it by img2img at upscale_strength.",
    )
    upscale_strength: float = Field(
        UPSCALE_STRENGTH, gt=0.0, le=1.0, description="How much the enlarged image is redrawn."
    )

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "prompt": "fox in pixel art style",
                "loras": [{"file": "anime_style_v1.safetensors", "strength": 0.75}],
                "seed": 42,
            }
        }
    )

    _eights = field_validator("width", "height")(_multiple_of_8)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt must not be empty")
        return v.strip()

    @model_validator(mode="after")
    def _image_inputs_fit(self) -> GenerateRequest:
        if self.init_image is None:
            for name in ("mask", "extend", "strength"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} needs init_image: the image it applies to")
        if self.mask is not None and self.extend is not None:
            raise ValueError("send mask or extend, not both: extend makes its own mask")
        if self.mask is not None and not self.mask.startswith("data:image/png;base64,"):
            raise ValueError("mask must be a PNG data URL (data:image/png;base64,...)")
        return self

    @property
    def image_mode(self) -> str:
        """txt2img, img2img, inpaint or outpaint: the first pass this request asks for."""
        if self.init_image is None:
            return "txt2img"
        if self.mask is not None:
            return "inpaint"
        if self.extend is not None:
            return "outpaint"
        if self.upscale and self.strength is None:
            return "upscale"  # the init image is only enlarged and refined
        return "img2img"

    @property
    def first_pass_strength(self) -> float | None:
        """The strength of the pass that starts from init_image (None: there is none)."""
        mode = self.image_mode
        if mode in ("txt2img", "upscale"):
            return None
        if self.strength is not None:
            return self.strength
        return {"img2img": IMG2IMG_STRENGTH, "outpaint": OUTPAINT_STRENGTH}.get(mode, 1.0)


class ImageResult(BaseModel):
    file: str
    url: str
    seed: int
    parameters: dict[str, Any]


class GenerateResponse(BaseModel):
    images: list[ImageResult]
    parameters: dict[str, Any]
    seconds: float
    # Where the seconds went (waiting for the device, rendering, saving): not in the body,
    # but the Server-Timing header, which browsers' developer tools and bench/overhead.py read.
    _timing: dict[str, float] = PrivateAttr(default_factory=dict)

    def server_timing(self) -> str:
        return ", ".join(f"{k};dur={v * 1000:.1f}" for k, v in self._timing.items())
