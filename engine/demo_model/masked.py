"""The demo model's masked-training case (#30; tests/test_masked_training.py,
engine/demo_model/README.md).

A user's pictures of their subject often carry something else that is not it: a logo, a cup
on the table. Here: three stars, each with a small second shape in one corner (the same one in
every picture, as a watermark would be). Trained on them as they are, the LoRA learns the
corner shape with the star; trained with masks over the stars only, trigger prompts should
draw the star alone. Each set is a different star colour, corner shape and corner, so a bar
can be checked on sets nothing was tuned on."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from engine.demo_model.acceptance import TRIGGER
from engine.demo_model.reading import STAND_OUT, classify, largest_region
from engine.demo_model.shapes import BACKGROUNDS, SIZE, Scene, _polygon, draw

CORNER_R = 7.0
CORNERS = {"top left": (11, 11), "top right": (53, 11), "bottom left": (11, 53)}
CORNERS["bottom right"] = (53, 53)
STAR_AT = {  # the star's centre, away from the corner's shape
    "top left": (37, 37),
    "top right": (27, 37),
    "bottom left": (37, 27),
    "bottom right": (27, 27),
}
MIN_CORNER_PIXELS = 12  # of the corner's box: a speck is not a shape that came along


@dataclass(frozen=True)
class CornerSet:
    """Three training pictures: stars of these colours on these backgrounds, with a
    `corner_colour` `corner_shape` in `corner`."""

    stars: tuple[tuple[str, str], ...]  # (colour, background)
    corner_colour: str
    corner_shape: str
    corner: str
    seed: int

    def scenes(self) -> list[tuple[Scene, Scene]]:
        rng = random.Random(self.seed)
        sx, sy = STAR_AT[self.corner]
        cx, cy = CORNERS[self.corner]
        return [
            (
                Scene(c, "star", b, sx + rng.uniform(-2, 2), sy + rng.uniform(-2, 2), 16),
                Scene(self.corner_colour, self.corner_shape, b, cx, cy, CORNER_R),
            )
            for c, b in self.stars
        ]

    def images(self) -> list[Image.Image]:
        return [_both(star, corner) for star, corner in self.scenes()]

    def star_masks(self, grow: int = 3) -> list[Image.Image]:
        """Over each star only (its outline grown by `grow` px): what a user paints."""
        out = []
        for star, _ in self.scenes():
            mask = Image.new("L", (SIZE, SIZE), 0)
            ImageDraw.Draw(mask).polygon(_polygon("star", star.cx, star.cy, star.r), fill=255)
            out.append(mask.filter(ImageFilter.MaxFilter(2 * grow + 1)))
        return out

    def captions(self) -> tuple[str, ...]:
        return tuple(f"a {c} {TRIGGER} on a {b} background" for c, b in self.stars)


def _both(star: Scene, corner: Scene) -> Image.Image:
    picture = draw(star)
    box = tuple(int(v) for v in (corner.cx - 10, corner.cy - 10, corner.cx + 10, corner.cy + 10))
    picture.paste(draw(corner).crop(box), box[:2])
    return picture


# Tuned on the first; the bar is read on the held-apart sets. The 2x steps of masked runs were
# chosen after the first two held-apart sets had been measured; the last two were added then
# and measured once (engine/demo_model/README.md, "Masked training").
TUNING = CornerSet(
    (("red", "white"), ("blue", "white"), ("yellow", "black")), "green", "square", "top left", 3
)
HELD_APART = (
    CornerSet(
        (("orange", "white"), ("green", "black"), ("blue", "gray")),
        "purple",
        "circle",
        "bottom right",
        5,
    ),
    CornerSet(
        (("yellow", "gray"), ("purple", "white"), ("red", "black")),
        "blue",
        "triangle",
        "top right",
        8,
    ),
    CornerSet(
        (("green", "white"), ("red", "gray"), ("purple", "black")),
        "orange",
        "square",
        "bottom left",
        11,
    ),
    CornerSet(
        (("blue", "black"), ("orange", "gray"), ("yellow", "white")),
        "red",
        "circle",
        "top left",
        13,
    ),
)
# Trigger prompts: 5 prompts x 4 seeds, colours and backgrounds the sets did not all have.
CASES = tuple(
    (f"a {c} {TRIGGER} on a {b} background", seed)
    for c, b in (
        ("red", "white"),
        ("blue", "black"),
        ("green", "white"),
        ("yellow", "gray"),
        ("purple", "white"),
    )
    for seed in (1, 2, 3, 4)
)


def corner_shape(image: Image.Image, corner: str) -> bool:
    """Whether something stands out from the background in `corner`, apart from the
    picture's main shape: the corner's shape came along."""
    a = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=float)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    out = np.sqrt(((a - np.median(border, axis=0)) ** 2).sum(-1)) > STAND_OUT
    out &= ~largest_region(out)
    cx, cy = CORNERS[corner]
    return int(out[cy - 11 : cy + 11, cx - 11 : cx + 11].sum()) >= MIN_CORNER_PIXELS


def score(pictures: list[Image.Image], corner: str) -> dict[str, float]:
    """Of the trigger prompts' pictures: stars, corner shapes, and stars alone."""
    stars = [classify(p).shape == "star" for p in pictures]
    corners = [corner_shape(p, corner) for p in pictures]
    alone = [s and not c for s, c in zip(stars, corners, strict=True)]
    n = len(pictures)
    return {"stars": sum(stars) / n, "corner": sum(corners) / n, "star_alone": sum(alone) / n}


__all__ = ["BACKGROUNDS", "CASES", "HELD_APART", "TUNING", "CornerSet", "corner_shape", "score"]
