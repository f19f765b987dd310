"""Training presets (`preset`, `GET /presets`): the defaults table (defaults.py) changed for what
a person teaches. Each change says why; on the demo model the why is a measurement
(engine/demo_model/README.md, "Presets"), on SD and SDXL it is the common practice of kohya_ss
and diffusers' DreamBooth scripts, which this machine cannot measure (no weights, no GPU)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.contract.presets import PRESET_NAMES, PresetInfo, PresetSetting

SHOWN = ("steps", "rank", "learning_rate", "caption", "flip", "prior_preservation", "new_context")


@dataclass(frozen=True)
class Change:
    """A setting the preset changes: `value` (a number is a factor of the default's steps when
    `factor`), per model group ("small", "sd", "sdxl"; "*" for all), and why."""

    values: dict[str, Any]
    why: str
    factor: bool = False

    def for_group(self, group: str) -> Any:
        return self.values.get(group, self.values.get("*"))


@dataclass(frozen=True)
class Preset:
    title: str
    use_for: str
    changes: dict[str, Change] = field(default_factory=dict)


# Why the defaults table (defaults.py) is as it is, per model group ("*": the others).
DEFAULT_WHY: dict[str, dict[str, str]] = {
    "steps": {
        "small": "600 for one image and 200 more per image: the demo acceptance LoRA's 1,000 "
        "steps for 3 images met its bars (README, Teaching it new concepts).",
        "*": "400 for one image and 200 more per image, as diffusers' DreamBooth LoRA "
        "examples train one subject (not measured here: no SD weights offline).",
    },
    "rank": {
        "small": "A small model has few weights per layer: on a fresh upload set rank 8 drew "
        "stars in 30 % of trigger prompts, 16 in 50 %.",
        "*": "One subject fits in rank 4-8 (16 for SDXL's wider layers with more images); "
        "more only makes the file bigger.",
    },
    "learning_rate": {
        "small": "1.5e-3 met every bar on the demo model; 2e-3 drew 80 % stars and 3e-3 broke "
        "its colours.",
        "*": "1e-4, diffusers' DreamBooth LoRA rate for SD and SDXL.",
    },
    "caption": {
        "small": "The bare trigger word drew stars in 100 % of seeds on the demo model.",
        "*": "'a photo of' gives SD and SDXL a context they know.",
    },
    "flip": {
        "*": "Mirrored copies add a pose for free; on the demo model they kept held-out "
        "backgrounds (without them the card's 'follows prompts' fell from 100 % to 50 %).",
    },
    "prior_preservation": {
        "small": "Keeps prompts without the trigger as they were: plain colours fell to "
        "83-88 % without it on the demo model.",
        "sd": "Off: it doubles a step's cost; turn it on if prompts without the trigger change.",
        "sdxl": "Off: it doubles a step's cost; turn it on if prompts without the trigger change.",
    },
    "new_context": {
        "*": "The second sample prompt: the trigger somewhere the uploads never were, so the "
        "samples show whether it learnt the concept or copied the pictures.",
    },
}

PRESETS: dict[str, Preset] = {
    "object": Preset(
        "Object",
        "One thing seen from outside: a product, a toy, a mug, a logo on its own.",
    ),
    "character": Preset(
        "Character",
        "A person, a pet or a character: anything with a face, a parting or text on it.",
        {
            "flip": Change(
                {"*": False},
                "A face, a parting or a badge is not symmetric: mirrored copies teach both "
                "sides. Demo: stars +0 to +25 points on six upload sets without them.",
            ),
            "steps": Change(
                {"small": 1.0, "*": 1.5},
                "Faces need detail: kohya_ss and diffusers' examples train characters longer "
                "(not measured here). Demo: 1.5x gained as little as other levers, so 1x there.",
                factor=True,
            ),
            "caption": Change(
                {"small": "{trigger}", "*": "a photo of {trigger}, a person"},
                "Says what kind of thing the trigger is, so prompts can pose and dress it.",
            ),
        },
    ),
    "style": Preset(
        "Style",
        "A look, not a thing: a colour scheme, a painting style, a kind of line.",
        {
            "caption": Change(
                {"small": "a {trigger} shape", "*": "a picture in {trigger} style"},
                "The trigger names the look, and each caption should say what the picture "
                "shows, so the LoRA learns the look and not the things.",
            ),
            "rank": Change(
                {"small": 16, "sd": 16, "sdxl": 32},
                "A style touches every part of the picture: more rank than one subject needs.",
            ),
            "new_context": Change(
                {
                    "small": "a {trigger} triangle on a black background",
                    "*": "a lighthouse on a cliff in {trigger} style",
                },
                "A thing the uploads did not show, in the look: the style, not the subjects.",
            ),
        },
    ),
    "quick-test": Preset(
        "Quick test",
        "A few minutes to check the images, captions and trigger before a full run.",
        {
            "steps": Change(
                {"*": 0.4},
                "Demo: 0.4x the steps without the prior term drew the uploads' own captions as "
                "stars on 3 of 4 sets, in a quarter to a third of a full run's time; 0.25x on "
                "1 of 4 (README, Presets).",
                factor=True,
            ),
            "prior_preservation": Change(
                {"*": False},
                "Half the cost of a step, and on a short run it holds the subject back (demo, "
                "0.25x steps: stars 11 % with it, 25 % without).",
            ),
        },
    ),
}
assert tuple(PRESETS) == PRESET_NAMES


def group_of(family: str, native: int) -> str:
    """Presets differ by model group: small models (the demo model, <= 128 px), SD, SDXL."""
    return "small" if native <= 128 else ("sdxl" if family == "sdxl" else "sd")


def apply(preset: str, group: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """The defaults table with the preset's changes."""
    out = dict(defaults)
    for key, change in PRESETS[preset].changes.items():
        value = change.for_group(group)
        out[key] = round(defaults[key] * value) if change.factor else value
    return out


def describe(
    preset: str, group: str, values: dict[str, Any], defaults: dict[str, Any]
) -> PresetInfo:
    """A preset for GET /presets: its values (as `apply` made them from `defaults`) and why
    each is so."""
    p = PRESETS[preset]

    def why(key: str) -> str:
        if values[key] != defaults[key]:
            return p.changes[key].why
        table = DEFAULT_WHY[key]
        return table.get(group, table.get("*", ""))

    return PresetInfo(
        name=preset,
        title=p.title,
        use_for=p.use_for,
        settings={
            key: PresetSetting(
                value=values[key], why=why(key), changed=values[key] != defaults[key]
            )
            for key in SHOWN
        },
    )
