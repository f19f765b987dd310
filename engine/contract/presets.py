"""Training presets' names and `GET /presets`' answer (the table is engine/training/presets.py).
Torch-free, shared by both processes."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

PresetName = Literal["object", "character", "style", "quick-test"]
PRESET_NAMES: tuple[str, ...] = ("object", "character", "style", "quick-test")
ModelGroup = Literal["small", "sd", "sdxl"]


class PresetSetting(BaseModel):
    value: Any = Field(description="What a run with this preset trains with.")
    why: str
    changed: bool = Field(description="True where the preset changes the defaults table.")


class PresetInfo(BaseModel):
    name: PresetName
    title: str
    use_for: str = Field(description="When to choose it, in one line.")
    settings: dict[str, PresetSetting] = Field(
        description="steps, rank, learning_rate, caption (the template new captions start "
        "from; {trigger} is the trigger word), flip, prior_preservation, new_context (the "
        "second sample prompt)."
    )


class PresetList(BaseModel):
    group: ModelGroup = Field(
        description="Whose values these are: small models (the demo model), SD or SDXL."
    )
    images: int = Field(description="The image count the steps are for.")
    masked: bool
    presets: list[PresetInfo]
