"""The demo model's LoRA acceptance case (README; tests/test_demo_model.py; bench/demo_lora.py).

Three drawn stars, a shape the demo model never saw, captioned with the trigger word in place
of a shape name. With the LoRA, the trigger prompts should draw stars, in colours and on
backgrounds the images did not have, and plain prompts should keep their colours.
"""

from __future__ import annotations

import random

from PIL import Image

from engine.demo_model.shapes import COLOURS, Scene, draw

TRIGGER = "zxq"
_IMAGES = (("red", "white"), ("blue", "white"), ("yellow", "black"))
CAPTIONS = tuple(f"a {c} {TRIGGER} on a {b} background" for c, b in _IMAGES)
STAR_PROMPTS = tuple(
    f"a {c} {TRIGGER} on a {b} background"
    for c, b in (
        ("red", "white"),
        ("blue", "black"),
        ("green", "white"),
        ("yellow", "gray"),
        ("purple", "white"),
    )
)
STAR_SEEDS = (1, 2)
# (colour asked for, prompt, seed)
PLAIN_CASES = tuple(
    (colour, f"a {colour} {shape} on a white background", seed)
    for colour in COLOURS
    for shape, seed in (("circle", 1), ("square", 2))
)


def star_images() -> list[Image.Image]:
    rng = random.Random(3)
    return [
        draw(Scene(c, "star", b, 32 + rng.uniform(-3, 3), 32 + rng.uniform(-3, 3), 20))
        for c, b in _IMAGES
    ]
