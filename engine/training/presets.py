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


DEFAULT_WHY = {
    "steps": "600 for one image on small models, 400 on SD and SDXL, and 200 more per image: "
    "each picture needs its share of steps (demo: the acceptance LoRA's 1,000 steps for 3).",
    "rank": "Small models have few weights per layer and need 16; SD and SDXL learn one "
    "subject in rank 4-8 (16 for SDXL's wider layers with more images).",
    "learning_rate": "1.5e-3 on the demo model (2e-3 and up broke its colours); 1e-4, "
    "diffusers' DreamBooth LoRA rate, on SD and SDXL.",
    "caption": "The trigger word alone drew the subject from the bare trigger in 100 % of seeds "
    "on the demo model; 'a photo of' gives SD and SDXL a context they know.",
    "flip": "Mirrored copies add a pose for free; the demo model followed held-out "
    "backgrounds better with them.",
    "prior_preservation": "On small models it keeps prompts without the trigger as they were "
    "(plain colours 83-88 % without it); on SDXL it doubles a step's cost, so it is opt-in.",
    "new_context": "The second sample prompt: the trigger somewhere the uploads never were, "
    "so the samples show whether it learnt the concept or copied the pictures.",
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
                "Faces need detail: kohya_ss and diffusers' examples train characters longer. "
                "Demo: 1,500 steps moved stars up on one set and down on another, so 1x there.",
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


def describe(preset: str, group: str, values: dict[str, Any]) -> PresetInfo:
    """A preset for GET /presets: its values (as `apply` made them) and why each is so."""
    p = PRESETS[preset]
    return PresetInfo(
        name=preset,
        title=p.title,
        use_for=p.use_for,
        settings={
            key: PresetSetting(
                value=values[key],
                why=p.changes[key].why if key in p.changes else DEFAULT_WHY[key],
                changed=key in p.changes,
            )
            for key in SHOWN
        },
    )
