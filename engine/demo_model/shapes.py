"""Drawing the demo model's world: coloured shapes on plain backgrounds, and their captions.
Reading such pictures back is `reading.py`."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from PIL import Image, ImageDraw

SIZE = 64
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "purple": (140, 60, 180),
    "orange": (245, 140, 30),
}
# Never in the base model's captions: new concepts for LoRA training.
NEW_COLOURS: dict[str, tuple[int, int, int]] = {"pink": (250, 130, 200), "cyan": (40, 210, 220)}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}
SHAPES = ("circle", "square", "triangle")
NEW_SHAPES = ("star",)
# Trigger words people and our tests use: never a base-model shape's name.
RESERVED = frozenset({"ohwx", "sks", "zxq", "star", "pink", "cyan"})


def _named_shapes(count: int = 32, seed: int = 77) -> dict[str, tuple[tuple[float, float], ...]]:
    """Irregular polygons, (angle, radius) per corner, called by nonsense names that the
    tokenizer spells one character at a time, as it spells a trigger word. Learning many
    word -> shape bindings is what lets a LoRA later bind one more: a model that knows three
    shapes ties a new word to its training images' colours. The corners keep >= 0.55 of the
    radius, so none can read as a five-pointed star."""
    rng = random.Random(seed)
    out: dict[str, tuple[tuple[float, float], ...]] = {}
    while len(out) < count:
        name = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 5)))
        k = rng.randint(4, 8)
        base = rng.uniform(0, 2 * math.pi)
        corners = tuple(
            (base + (i + rng.uniform(-0.3, 0.3)) * 2 * math.pi / k, rng.uniform(0.55, 1.0))
            for i in range(k)
        )
        if name not in RESERVED and name not in COLOURS and name not in SHAPES:
            out.setdefault(name, corners)
    return out


NAMED_SHAPES = _named_shapes()


@dataclass(frozen=True)
class Scene:
    colour: str
    shape: str
    background: str
    cx: float
    cy: float
    r: float

    def caption(self, with_background: bool = True) -> str:
        base = f"a {self.colour} {self.shape}"
        return f"{base} on a {self.background} background" if with_background else base

    def captions(self) -> dict[str, str]:
        """Every way the demo model's training captions name this scene, by form: people
        write the short forms too ("a red circle", "circle", a bare trigger word)."""
        return {
            "full": self.caption(True),
            "no_background": self.caption(False),
            "colour_shape": f"{self.colour} {self.shape}",
            "shape": self.shape,
            "shape_background": f"a {self.shape} on a {self.background} background",
        }


def _polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        h = r * 0.85
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        return [
            (cx + r * math.cos(a), cy + r * math.sin(a))
            for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
    if shape == "star":
        pts = []
        for i in range(10):
            rad = r if i % 2 == 0 else r * 0.45
            a = -math.pi / 2 + i * math.pi / 5
            pts.append((cx + rad * math.cos(a), cy + rad * math.sin(a)))
        return pts
    if shape in NAMED_SHAPES:
        return [
            (cx + r * f * math.cos(a), cy + r * f * math.sin(a)) for a, f in NAMED_SHAPES[shape]
        ]
    raise ValueError(shape)


def draw(scene: Scene) -> Image.Image:
    """Render at 4x and downsample, so edges are anti-aliased like a real photo's."""
    k = 4
    all_colours = {**COLOURS, **NEW_COLOURS}
    img = Image.new("RGB", (SIZE * k, SIZE * k), BACKGROUNDS[scene.background])
    d = ImageDraw.Draw(img)
    cx, cy, r = scene.cx * k, scene.cy * k, scene.r * k
    fill = all_colours[scene.colour]
    if scene.shape == "circle":
        d.ellipse((cx - r * 0.92, cy - r * 0.92, cx + r * 0.92, cy + r * 0.92), fill=fill)
    else:
        d.polygon(_polygon(scene.shape, cx, cy, r), fill=fill)
    return img.resize((SIZE, SIZE), Image.Resampling.BOX)


def random_scene(rng: random.Random, colours=tuple(COLOURS), shapes=SHAPES) -> Scene:
    r = rng.uniform(15, 22)
    return Scene(
        colour=rng.choice(colours),
        shape=rng.choice(shapes),
        background=rng.choice(tuple(BACKGROUNDS)),
        cx=rng.uniform(SIZE / 2 - 6, SIZE / 2 + 6),
        cy=rng.uniform(SIZE / 2 - 6, SIZE / 2 + 6),
        r=r,
    )
