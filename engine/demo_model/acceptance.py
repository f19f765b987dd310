"""The demo model's LoRA acceptance case (docs/demo-model.md; tests/test_demo_model.py;
bench/demo_lora.py).

Three drawn stars, a shape the demo model never saw, captioned the way the Train page's
captioner writes them, with the trigger word in place of a shape name. With the LoRA at
strength 1, the trigger prompts should draw stars in the colour asked for, on colours and
backgrounds the images did not have, and prompts without the trigger should keep their
colours. A hurried user's run (the bare trigger word, no captions) should still draw stars.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from PIL import Image

from engine.demo_model.reading import classify
from engine.demo_model.shapes import COLOURS, Scene, draw

TRIGGER = "zxq"
BUDGET_S = 120.0  # training, on 2 CPU cores
BARS = {"stars": 0.90, "star_colour": 0.85, "plain_colour": 0.90, "bare_stars": 0.80}
_IMAGES = (("red", "white"), ("blue", "white"), ("yellow", "black"))
CAPTIONS = tuple(f"a {c} {TRIGGER} on a {b} background" for c, b in _IMAGES)
_SEEDS = (1, 2, 3, 4)
# (colour asked for, prompt, seed): 5 prompts x 4 seeds, three of them in colours no star
# image had, on all three backgrounds.
STAR_CASES = tuple(
    (c, f"a {c} {TRIGGER} on a {b} background", seed)
    for c, b in (
        ("red", "white"),
        ("blue", "black"),
        ("green", "white"),
        ("yellow", "gray"),
        ("purple", "white"),
    )
    for seed in _SEEDS
)
PLAIN_CASES = tuple(
    (c, f"a {c} {shape} on a {bg} background", seed)
    for c in COLOURS
    for shape, bg, seed in (
        ("circle", "white", 1),
        ("square", "white", 2),
        ("triangle", "black", 3),
        ("circle", "gray", 4),
    )
)
BARE_CASES = tuple((TRIGGER, seed) for seed in range(1, 21))

Draw = Callable[[str, int], Image.Image]  # (prompt, seed) -> the picture, LoRA loaded


def star_images() -> list[Image.Image]:
    rng = random.Random(3)
    return [
        draw(Scene(c, "star", b, 32 + rng.uniform(-3, 3), 32 + rng.uniform(-3, 3), 20))
        for c, b in _IMAGES
    ]


def score_captioned(draw_with_lora: Draw) -> dict[str, float]:
    """Stars and their colours for the trigger prompts; colours for the plain prompts."""
    stars = [classify(draw_with_lora(p, seed)) for _, p, seed in STAR_CASES]
    plain = [classify(draw_with_lora(p, seed)).colour == c for c, p, seed in PLAIN_CASES]
    return {
        "stars": _share(r.shape == "star" for r in stars),
        "star_colour": _share(
            r.colour == c for r, (c, _, _) in zip(stars, STAR_CASES, strict=True)
        ),
        "plain_colour": _share(plain),
    }


def score_bare(draw_with_lora: Draw) -> dict[str, float]:
    """Stars for the bare trigger word, from a LoRA trained without captions."""
    return {
        "bare_stars": _share(classify(draw_with_lora(p, s)).shape == "star" for p, s in BARE_CASES)
    }


def misses(scores: dict[str, float]) -> list[str]:
    return [f"{k} {v:.0%} < {BARS[k]:.0%}" for k, v in scores.items() if v < BARS[k]]


def _share(hits) -> float:
    hits = list(hits)
    return sum(hits) / max(1, len(hits))
