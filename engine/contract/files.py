"""The user's files in the contract: LoRAs and images, listed, imported, uploaded, edited and
deleted. Torch-free, shared by both processes."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import UploadFile
from pydantic import BaseModel, Field

from engine.contract.schemas import JsonBody, RequestBody


class LoraImportForm(RequestBody):
    file: UploadFile = Field(..., description="A LoRA .safetensors file (diffusers or kohya).")
    name: str | None = Field(None, max_length=140, description="Defaults to the upload's name.")
    overwrite: bool = Field(False, description="Replace a LoRA of the same name.")


class LoraImported(BaseModel):
    file: str
    size: int
    url: str


class LoraEntry(BaseModel):
    file: str
    name: str
    size: int
    created: str
    url: str
    metadata: dict[str, str] | None = Field(description="The safetensors header metadata.")
    adapter: Literal["lora", "dora"] | None = Field(
        None, description="dora: the file holds DoRA magnitudes (None: it can't be read)."
    )
    error: str | None = Field(description="Why the file can't be read, if it can't.")


class LoraList(BaseModel):
    user_id: str
    loras: list[LoraEntry]


class ImageEntry(BaseModel):
    file: str
    url: str
    size: int
    created: str
    prompt: str | None
    seed: int | None
    parameters: dict[str, Any]
    parameters_text: str = Field(description="A1111-style parameters, as embedded in the PNG.")


class ImageList(BaseModel):
    user_id: str
    images: list[ImageEntry] = Field(description="Newest first.")
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; absent on the last page."
    )


class Deleted(BaseModel):
    deleted: str


class ImageUploadForm(RequestBody):
    """`POST /images`: an image of your own into your gallery (to start other images from)."""

    image: UploadFile = Field(
        ..., description="PNG, JPEG or WEBP (checked by content), <= 20 MB and 4096x4096."
    )


class ImageUploaded(BaseModel):
    file: str
    url: str
    width: int
    height: int


class LoraPatch(JsonBody):
    """`PATCH /loras/{file}`: fields to change in the file's metadata (tensors untouched)."""

    trigger_word: str | None = Field(None, min_length=1, max_length=64)
    description: str | None = Field(None, max_length=2000)
    preferred_strength: float | None = Field(None, ge=-2.0, le=2.0)
