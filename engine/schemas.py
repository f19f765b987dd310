"""Request and response bodies of the engine's HTTP API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_SEED = 2**32 - 1


class LoraSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str = Field(..., min_length=1, max_length=140, description="LoRA file in your folder.")
    strength: float = Field(1.0, ge=-2.0, le=2.0, description="Adapter weight, -2..2.")


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(..., max_length=4000)
    negative_prompt: str = Field("", max_length=4000)
    user_id: str | None = Field(None, description="Defaults to the configured default user.")
    loras: list[LoraSpec] = Field(default_factory=list)
    seed: int | None = Field(None, ge=0, le=MAX_SEED, description="Drawn when omitted.")
    steps: int | None = Field(None, ge=1, description="Model default when omitted.")
    guidance_scale: float | None = Field(None, ge=0.0, le=30.0)
    width: int | None = Field(None, ge=64, description="Multiple of 8.")
    height: int | None = Field(None, ge=64, description="Multiple of 8.")
    num_images: int = Field(1, ge=1)

    @field_validator("prompt")
    @classmethod
    def _prompt_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("prompt must not be empty")
        return v.strip()

    @field_validator("width", "height")
    @classmethod
    def _multiple_of_8(cls, v: int | None) -> int | None:
        if v is not None and v % 8:
            raise ValueError(f"{v} is not a multiple of 8")
        return v


class ImageResult(BaseModel):
    file: str
    url: str
    seed: int
    parameters: dict[str, Any]


class GenerateResponse(BaseModel):
    images: list[ImageResult]
    parameters: dict[str, Any]
    seconds: float
