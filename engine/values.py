"""Plain values that cross between the web layer and the model code, kept free of torch so
the routes and services can use them without loading it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelDefaults:
    steps: int
    guidance_scale: float
    width: int
    height: int


@dataclass(frozen=True)
class ModelInfo:
    model: str
    family: str  # "sd" | "sdxl"
    device: str
    dtype: str
    defaults: ModelDefaults
    fallback_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RenderParams:
    # One prompt for every seed; or one per seed (the report card draws many at once: on a
    # small model a batch costs far less per picture).
    prompt: str | tuple[str, ...]
    negative_prompt: str
    steps: int
    guidance_scale: float
    width: int
    height: int
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class LoraRef:
    user_id: str
    file: str  # the name the user knows it by
    path: Path  # where this engine reads it: the file, or its local copy of a shared blob
    strength: float
