"""Drawing the demo model's world (coloured shapes on plain backgrounds) and classifying it.

Pure numpy/Pillow, so the evaluator's classifier is deterministic and needs no model.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
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


def _hull_area(points: np.ndarray) -> float:
    """Area of the convex hull (Andrew's monotone chain) of integer pixel corners."""
    pts = sorted(set(map(tuple, points.tolist())))
    if len(pts) < 3:
        return 0.0

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower: list = []
    upper: list = []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    hull = np.array(lower[:-1] + upper[:-1], dtype=float)
    x, y = hull[:, 0], hull[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


def largest_region(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected region of a boolean mask (sampling specks and halos dropped)."""
    seen = np.zeros_like(mask)
    best: list[tuple[int, int]] = []
    h, w = mask.shape
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, region = [(int(y0), int(x0))], []
        while stack:
            y, x = stack.pop()
            region.append((y, x))
            for ny, nx in ((y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    stack.append((ny, nx))
        if len(region) > len(best):
            best = region
    out = np.zeros_like(mask)
    if best:
        ys, xs = zip(*best, strict=True)
        out[list(ys), list(xs)] = True
    return out


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    return min(palette, key=lambda n: float(np.sum((rgb - np.array(palette[n])) ** 2)))


def star_points(mask: np.ndarray, bins: int = 72) -> int:
    """How many evenly spaced points the region has: 5 for a star. The radius of the region's
    edge is read around its centroid; a point is a peak of it that stands well above the
    valleys either side. Ragged blobs have low solidity too, but not five regular points."""
    ys, xs = np.nonzero(mask)
    dy, dx = ys - ys.mean(), xs - xs.mean()
    angle = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * bins).astype(int) % bins
    radius = np.zeros(bins)
    np.maximum.at(radius, angle, np.hypot(dy, dx) + 0.5)
    radius = np.convolve(np.concatenate([radius[-1:], radius, radius[:1]]), np.ones(3) / 3, "valid")
    reach = bins // 14  # a peak is the highest within +-25 degrees
    window = np.stack([np.roll(radius, k) for k in range(-reach, reach + 1)])
    peaks = np.nonzero((radius >= window.max(0)) & (radius >= 0.6 * radius.max()))[0]
    peaks = [int(p) for i, p in enumerate(peaks) if i == 0 or p - peaks[i - 1] > 1]
    if len(peaks) < 2:
        return len(peaks)
    gaps = np.diff([*peaks, peaks[0] + bins])  # in bins, the last one wrapping round
    valleys = [
        radius[np.arange(a, a + g + 1) % bins].min() * 2 / (radius[a] + radius[b])
        for a, b, g in zip(peaks, [*peaks[1:], peaks[0]], gaps, strict=True)
    ]
    regular = gaps.max() <= 2 * gaps.min() and max(valleys) <= 0.8  # a pentagon's are 0.81
    return len(peaks) if regular else 0


@dataclass(frozen=True)
class Reading:
    colour: str
    shape: str
    background: str


def classify(image: Image.Image, colours: dict[str, tuple[int, int, int]] | None = None) -> Reading:
    """Dominant colour and shape of the largest non-background region."""
    colours = colours or {**COLOURS, **NEW_COLOURS}
    a = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=float)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    bg = np.median(border, axis=0)
    background = _nearest(bg, BACKGROUNDS)
    mask = largest_region(np.sqrt(((a - bg) ** 2).sum(-1)) > 60)
    area = int(mask.sum())
    if area < 40:
        return Reading("none", "none", background)
    fill = np.median(a[mask], axis=0)
    colour = _nearest(fill, colours)
    # The outline is where the picture turns nearer the shape's colour than the background's,
    # so a glow or halo round the shape doesn't blunt its points.
    mask = largest_region(mask & (((a - fill) ** 2).sum(-1) < ((a - bg) ** 2).sum(-1)))
    area = int(mask.sum())
    ys, xs = np.nonzero(mask)
    bbox = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    solidity = area / max(_hull_area(corners), 1.0)
    filled = area / bbox
    if solidity < 0.85 and star_points(mask) == 5:
        shape = "star"
    elif solidity < 0.75:
        shape = "none"  # ragged: no shape we know
    elif filled > 0.88:
        shape = "square"
    elif filled > 0.66:
        shape = "circle"
    else:
        shape = "triangle"
    return Reading(colour, shape, background)
