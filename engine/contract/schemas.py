"""Request and response bodies of LoraMint's HTTP API, with their limits. The engine validates
with them and the orchestrator validates and documents its public API with the same classes.

Request bodies never carry a user: the engine takes it from the `user_id` query parameter
(set by the orchestrator), the orchestrator from who is asking."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.contract.presets import PresetName

# full: everything. preview: a public demo that only generates (LORAMINT_MODE, both processes).
AppMode = Literal["full", "preview"]
MAX_SEED = 2**32 - 1
MAX_PROMPT = 4000
MAX_STEPS = 150  # A1111's limit too; the engine's settings may only lower these three
MAX_SIDE = 2048
MAX_IMAGES = 4
MAX_TRAINING_IMAGES = 5
MAX_TRAINING_IMAGE_BYTES = 20 << 20
MAX_MASK_BYTES = 5 << 20  # a training image's mask file
MAX_TRAINING_STEPS = 5000
MAX_LORA_BYTES = 2 << 30
MAX_JSON_BYTES = 1 << 20  # a JSON body, or the fields of a form beside its files
# The orchestrator proves itself to its engine with this header (the engine's token).
ENGINE_TOKEN_HEADER = "x-loramint-engine-token"
USER_ID_IN_BODY = (
    "user_id is not accepted in a request body or form: a request acts as its caller's user "
    "(on the engine itself, the ?user_id= query parameter)"
)


class RequestBody(BaseModel):
    """Unknown fields are refused, and `user_id` with a message that says where it belongs."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _no_user_id(cls, data: Any) -> Any:
        if isinstance(data, dict) and "user_id" in data:
            raise ValueError(USER_ID_IN_BODY)
        return data


class JsonBody(RequestBody):
    """A JSON body: numbers must be numbers (`"steps": true` or `"3"` is refused, not taken
    as 1 or 3); an int is still a valid float."""

    model_config = ConfigDict(strict=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. invalid_request.")
    message: str = Field(description="What is wrong, in words a person can act on.")


class ErrorBody(BaseModel):
    """Every error answer, whatever its status."""

    error: ErrorDetail


# The routers document every route's failures with the one error body.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "Refused; `error.message` says why."},
    "5XX": {"model": ErrorBody, "description": "The server or its engine failed."},
}


# -- training and jobs ---------------------------------------------------------------------
Caption = Annotated[str, Field(max_length=MAX_PROMPT)]


class TrainOptions(RequestBody):
    """A training run's settings: everything in the form but the images."""

    name: str = Field(..., min_length=1, max_length=64, description="The LoRA's name.")
    preset: PresetName = Field(
        "object",
        description="What you teach: object, character, style or quick-test. Sets the "
        "defaults of steps, rank, learning_rate, captions, flip and prior_preservation for "
        "the model (GET /presets says which and why); any field sent here overrides it.",
    )
    trigger_word: str | None = Field(
        None, max_length=64, description="Word that calls the concept up (default ohwx)."
    )
    captions: list[Caption] | None = Field(
        None,
        max_length=MAX_TRAINING_IMAGES,
        description="One per image; the trigger word is added where missing. Default: the "
        "preset's caption template.",
    )
    steps: int | None = Field(
        None, ge=1, le=MAX_TRAINING_STEPS, description="Default: by image count."
    )
    rank: int | None = Field(None, ge=1, le=128, description="LoRA rank (alpha = rank).")
    adapter: Literal["lora", "dora"] = Field(
        "lora",
        description="dora: weight-decomposed LoRA (PEFT's use_dora): a magnitude per output "
        "channel besides the low-rank direction; often closer to a full fine-tune at the same "
        "rank, and slower per step (docs/training.md, DoRA). Not convertible to kohya format.",
    )
    learning_rate: float | None = Field(None, gt=0, le=0.01)
    resolution: int | None = Field(None, ge=64, le=2048, description="Multiple of 8.")
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Default 0.")
    train_text_encoder: bool = Field(False, description="Also train the text encoder(s).")
    flip: bool | None = Field(
        None, description="Also train on mirrored copies. Default: the preset's."
    )
    overwrite: bool = Field(False, description="Replace a LoRA of the same name.")
    sample_every: int | None = Field(
        None,
        ge=0,
        le=5000,
        description="Draw sample images every this many steps (0: none). Default: about 5 "
        "times in a run.",
    )
    sample_prompts: list[Caption] | None = Field(
        None,
        max_length=2,
        description="Up to 2 prompts for the samples. Default: the first caption and the "
        "trigger word in a new context.",
    )
    prior_preservation: bool | None = Field(
        None,
        description="Also train on the base model's own images for the captions without "
        "the trigger word, so other prompts stay as they were. Default: on for small "
        "models (the demo model), off otherwise (it doubles the cost of a step).",
    )
    checkpoint_every: int | None = Field(
        None,
        ge=0,
        le=5000,
        description="Keep the LoRA and what it takes to go on every this many steps (0: "
        "none). Default: as sample_every.",
    )
    keep_checkpoints: int = Field(5, ge=1, le=50, description="The newest this many are kept.")


GalleryName = Annotated[str, Field(min_length=1, max_length=140)]


class WithImages(RequestBody):
    """A form's pictures: uploaded, or named from your gallery (read from the store, so they
    need no download and upload again); 1 to 5 in all, the gallery's first."""

    images: list[UploadFile] = Field(
        default_factory=list,
        description=f"PNG, JPEG or WEBP images (<= 20 MB, 4096x4096), 1-{MAX_TRAINING_IMAGES} "
        "with the gallery's.",
        json_schema_extra={"maxItems": MAX_TRAINING_IMAGES},
    )
    gallery: list[GalleryName] = Field(
        default_factory=list,
        description="File names of your images (GET /images) to use too; they come first.",
        json_schema_extra={"maxItems": MAX_TRAINING_IMAGES},
    )

    @model_validator(mode="after")
    def _one_to_five(self) -> WithImages:
        n = len(self.images) + len(self.gallery)
        if not 1 <= n <= MAX_TRAINING_IMAGES:
            raise ValueError(
                f"send 1 to {MAX_TRAINING_IMAGES} images; got {n} (uploaded and from your gallery)"
            )
        return self


class TrainForm(TrainOptions, WithImages):
    """`POST /train-lora`'s multipart form."""

    masks: list[UploadFile] = Field(
        default_factory=list,
        description="Masked training: one mask per image, in the images' order (the "
        "gallery's first), white where the subject is (learnt), black where it is not "
        "(ignored); PNG, WEBP or JPEG (<= 5 MB), of its image's shape; all white: learnt "
        "whole. Without them, an image's transparency is its mask.",
        json_schema_extra={"maxItems": MAX_TRAINING_IMAGES},
    )


class CaptionForm(WithImages):
    """`POST /caption`'s multipart form."""

    trigger_word: str | None = Field(
        None, max_length=64, description="Put in each caption in place of the subject."
    )


class SubjectMaskForm(WithImages):
    """`POST /subject-masks`'s multipart form."""


class SubjectMasks(BaseModel):
    masks: list[str] = Field(
        description="One per image, in their order: a PNG data URL of the image's size, white "
        "over the subject. Send them (edited or not) as /train-lora's masks."
    )
    masker: str = Field(description="Which model or rule made them.")


class Captions(BaseModel):
    captions: list[str]
    captioner: str = Field(description="Which captioner wrote them.")


class CheckpointSave(JsonBody):
    """`POST /jobs/{id}/checkpoints/{step}/save`: that checkpoint becomes one of your LoRAs."""

    name: str = Field(..., min_length=1, max_length=64, description="The new LoRA's name.")
    strength: float | None = Field(
        None, ge=-2.0, le=2.0, description="Its preferred strength (default: the recommended)."
    )
    overwrite: bool = Field(False, description="Replace a LoRA of the same name.")


class CheckpointSaved(BaseModel):
    file: str
    url: str


class CheckpointDraw(JsonBody):
    """`POST /jobs/{id}/checkpoints/{step}/draw`: one more picture for the report card's grid."""

    strength: float = Field(..., gt=0, le=2.0, description="The checkpoint's strength in it.")


class CheckpointPicture(BaseModel):
    step: int
    strength: str = Field(description="Its key in the checkpoint's `grid`, e.g. '0.6'.")
    picture: str = Field(description="The report's `grid_prompt` at `grid_seed` (PNG data URL).")


class ContinueForm(RequestBody):
    """`POST /loras/{file}/continue`'s form: more steps on a LoRA trained here."""

    steps: int = Field(..., ge=1, le=MAX_TRAINING_STEPS, description="How many more steps.")
    learning_rate: float | None = Field(None, gt=0, le=0.01, description="Default: as before.")
