"""The records that matter, typed and written in one place each: what an image was made with
(`ImageParameters`: PNG text, gallery, answers, job params) and what a LoRA was trained with
(`TrainingRecord`: the job's params, the LoRA file's metadata).

A training record is made in two steps: the request part by the front that takes the upload
(no model needed: names, captions, the uploaded images' hashes), the plan part by whoever runs
it with the model (steps, rank, rate... from the defaults for that model). Nothing is copied by
hand between the two, so the hashes of what the user uploaded are what the LoRA records."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from engine.contract.generation import GenerateRequest
from engine.contract.schemas import TrainOptions


class LoraUse(BaseModel):
    file: str
    strength: float


class ImageParameters(BaseModel):
    """How an image was made: in its PNG (with its seed and time), the gallery, the answer,
    and a generation job's params (there with the request's `num_images`). What the model
    decides (its name, steps, size...) is None only in a job not yet planned by a worker."""

    user_id: str
    prompt: str
    negative_prompt: str
    loras: list[LoraUse]
    model: str | None = None
    family: str | None = None
    scheduler: str | None = None
    steps: int | None = None
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None
    seed: int | None = None
    num_images: int | None = None
    created: str | None = None
    source: Literal["upload"] | None = Field(
        None, description="upload: the user's own image (POST /images), not made here."
    )
    sha256: str | None = Field(None, description="upload: the uploaded file's sha256.")
    # Made from an image (#29): what it started from and how much was drawn anew.
    mode: str | None = Field(None, description="img2img, inpaint, outpaint or upscale.")
    init_image: str | None = Field(
        None, description="The gallery image it started from ('inline': sent as a data URL)."
    )
    init_image_sha256: str | None = None
    strength: float | None = None
    mask_sha256: str | None = None
    mask_blur: int | None = None
    mask_crop: bool | None = None
    extend: dict[str, int] | None = None
    upscale: float | None = None
    upscale_strength: float | None = None

    @classmethod
    def requested(cls, user_id: str, req: GenerateRequest) -> ImageParameters:
        """A job's params before a worker plans it: what was asked (an inline image by name
        only: the hashes are the planner's, which decodes the images)."""
        asked = req.model_dump(include=set(cls.model_fields) - set(IMAGE_FIELDS))
        return cls(user_id=user_id, **asked, **image_fields(req))

    def record(self) -> dict[str, Any]:
        """As written in PNGs, jobs and answers: the fields that have a value."""
        return self.model_dump(mode="json", exclude_none=True)

    def text(self) -> str:
        """The `parameters` text A1111, ComfyUI and image browsers read from a PNG."""
        tags = "".join(
            f" <lora:{lo.file.removesuffix('.safetensors')}:{lo.strength:g}>" for lo in self.loras
        )
        fields = (
            f"Steps: {self.steps}, Sampler: {self.scheduler}, CFG scale: "
            f"{self.guidance_scale:g}, Seed: {self.seed}, Size: {self.width}x{self.height}, "
            f"Model: {self.model}"
        )
        for label, value in (
            ("Denoising strength", self.strength),
            ("Mask blur", self.mask_blur),
            ("Inpaint area", "Only masked" if self.mask_crop else None),
            ("Hires upscale", self.upscale),
            ("Hires denoising strength", self.upscale_strength),
        ):
            if value is not None:
                fields += (
                    f", {label}: {value:g}" if isinstance(value, float) else f", {label}: {value}"
                )
        return f"{self.prompt}{tags}\nNegative prompt: {self.negative_prompt}\n{fields}"


IMAGE_FIELDS = ("mode", "init_image", "strength", "mask_blur", "mask_crop", "extend")
IMAGE_FIELDS += ("upscale", "upscale_strength")


def image_fields(req: GenerateRequest) -> dict[str, Any]:
    """What an image made from an image records of its request, and only what applied."""
    mode = req.image_mode
    if mode == "txt2img" and not req.upscale:
        return {}
    masked = mode in ("inpaint", "outpaint")
    init = req.init_image
    return {
        "mode": None if mode == "txt2img" else mode,
        "init_image": None if init is None else "inline" if init.startswith("data:") else init,
        "strength": req.first_pass_strength,
        "mask_blur": req.mask_blur if masked else None,
        "mask_crop": req.mask_crop if masked else None,
        "extend": req.extend.model_dump() if req.extend else None,
        "upscale": req.upscale,
        "upscale_strength": req.upscale_strength if req.upscale else None,
    }


class TrainingRecord(BaseModel):
    """A training job's `params`, and what its LoRA file says of how it was made. The plan's
    fields are None until the run is planned with the model."""

    name: str
    file: str
    trigger_word: str
    captions: list[str]
    image_count: int
    image_sha256: list[str] = Field(description="Of the images as they were uploaded.")
    mask_sha256: list[str | None] | None = Field(
        None,
        description="Masked training: of each image's mask (None: that image is learnt "
        "whole); None: no image had one.",
    )
    overwrite: bool
    options: dict[str, Any] = Field(description="The request's options, as sent.")
    steps: int | None = None
    rank: int | None = None
    alpha: int | None = None
    learning_rate: float | None = None
    resolution: int | None = None
    seed: int | None = None
    train_text_encoder: bool | None = None
    flip: bool | None = None
    unet_targets: list[str] | None = None
    unet_blocks: list[str] | None = None
    prior_preservation: bool | None = None
    sample_every: int | None = None
    sample_prompts: list[str] | None = None
    checkpoint_every: int | None = None
    gradient_checkpointing: bool | None = None
    card_plan: str | None = Field(
        None,
        description="On a GPU: the memory settings planned for the card, in words (free "
        "memory, gradient checkpointing, resolution, the estimated peak).",
    )
    preset: str | None = Field(None, description="The preset the defaults came from.")
    adapter: Literal["lora", "dora"] | None = None
    changed_from_preset: dict[str, Any] | None = Field(
        None, description="The preset's settings this run set otherwise, as it trained."
    )

    @classmethod
    def requested(
        cls,
        opts: TrainOptions,
        file: str,
        trigger: str,
        captions: tuple[str, ...],
        sha256s: list[str],
        mask_sha256s: list[str | None],
    ) -> TrainingRecord:
        return cls(
            name=file.removesuffix(".safetensors"),
            file=file,
            trigger_word=trigger,
            captions=list(captions),
            image_count=len(sha256s),
            image_sha256=list(sha256s),
            mask_sha256=list(mask_sha256s) if any(mask_sha256s) else None,
            overwrite=opts.overwrite,
            options=opts.model_dump(mode="json", include=set(TrainOptions.model_fields)),
        )

    @property
    def kept_images(self) -> list[tuple[str, str | None]]:
        """Each image's (sha256, mask sha256): how the job keeps it."""
        masks = self.mask_sha256 or [None] * len(self.image_sha256)
        return list(zip(self.image_sha256, masks, strict=True))

    def train_options(self) -> TrainOptions:
        return TrainOptions.model_validate(self.options)

    def planned(self, **plan: Any) -> TrainingRecord:
        """With the plan's fields filled in (the run's settings for the model)."""
        unknown = set(plan) - set(TrainingRecord.model_fields)
        if unknown:
            raise TypeError(f"not fields of a training record: {sorted(unknown)}")
        return self.model_copy(update=plan)

    def lora_metadata(self, base_model: str, family: str, extra: dict[str, Any]) -> dict[str, str]:
        """The LoRA file's header: ours under `loramint.`, and kohya's keys, which A1111 and
        ComfyUI show in their LoRA info panels."""
        if self.steps is None:
            raise ValueError("a LoRA is saved only from a planned run")
        p = self
        ours = {
            "base_model": base_model,
            "family": family,
            "trigger_word": self.trigger_word,
            "rank": p.rank,
            "alpha": p.alpha,
            "steps": p.steps,
            "learning_rate": p.learning_rate,
            "resolution": p.resolution,
            "seed": p.seed,
            "image_count": self.image_count,
            "image_sha256": self.image_sha256,
            **({"mask_sha256": self.mask_sha256} if self.mask_sha256 else {}),
            "captions": self.captions,
            "adapter": p.adapter or "lora",
            **({"preset": self.preset} if self.preset else {}),
            **({"changed_from_preset": p.changed_from_preset} if p.changed_from_preset else {}),
            **extra,
        }
        meta = {
            f"loramint.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in ours.items()
        }
        meta.update(
            {
                "ss_network_dim": str(p.rank),
                "ss_network_alpha": str(p.alpha),
                "ss_output_name": self.name,
                "ss_max_train_steps": str(p.steps),
                "ss_sd_model_name": base_model,
            }
        )
        return meta
