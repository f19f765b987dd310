"""Reading a demo picture as a person would: the background, the shape's colour and its outline.

Colours are named by hue, saturation and brightness, never by the nearest palette entry: a pale
orange disc is "peach", not "yellow"; a dark one is "brown"; a washed-out one is "gray". The
background is the border's colour, and only a plain border gets a name. The shape is the
largest region that stands out from the background; one that fades into it is no shape.
Pure numpy, so the evaluator is deterministic and needs no model.
"""

from __future__ import annotations

import colorsys
from typing import NamedTuple

import numpy as np
from PIL import Image

from engine.demo_model.shapes import SIZE

MIN_AREA = 40  # pixels of 4096: anything smaller is a speck, not a shape
STAND_OUT = 60  # RGB distance from the background for a pixel to be part of the shape
# (upper hue bound in degrees, name), read in order; red wraps round from 345.
HUES = ((15, "red"), (42, "orange"), (70, "yellow"), (165, "green"), (195, "cyan"))
HUES += ((255, "blue"), (345, "magenta"), (361, "red"))


class Reading(NamedTuple):
    colour: str
    shape: str
    background: str


def colour_name(rgb) -> str:
    """What a person calls this colour: a palette word only when it really looks it."""
    h, s, v = colorsys.rgb_to_hsv(*(float(c) / 255 for c in rgb))
    h *= 360
    if v < 0.3:
        return "black" if s < 0.5 else "dark"
    if s < 0.3:
        return "white" if v > 0.8 else "gray"
    name = next(n for top, n in HUES if h < top)
    if name == "red" and s < 0.6 and v > 0.75:
        return "pink"  # pale red
    if name == "orange":
        return "brown" if v < 0.6 else "peach" if s < 0.55 else name
    if name == "yellow":
        return "olive" if v < 0.6 else "cream" if s < 0.45 else name
    if name == "magenta":  # light or rosy ones are pink, deep violet-red ones purple
        name = "pink" if h >= 320 or (v > 0.8 and s < 0.65) else "purple"
    if s < 0.4:
        return ("pale " if v > 0.75 else "grayish ") + name
    return name


def background_name(border: np.ndarray) -> str:
    """The border's colour if it is plain (three in four pixels near its median)."""
    median = np.median(border, axis=0)
    near = np.sqrt(((border - median) ** 2).sum(-1)) < 48
    if near.mean() < 0.75:
        return "mixed"
    h, s, v = colorsys.rgb_to_hsv(*(median / 255))
    if s >= 0.25 and v >= 0.3:
        return colour_name(median)
    if v >= 0.8:
        return "white"
    if v <= 0.25:
        return "black"
    return "gray" if 0.35 <= v <= 0.65 else "light gray" if v > 0.65 else "dark gray"


class Pose(NamedTuple):
    x: float  # the shape's centroid, in pixels of the SIZE x SIZE picture
    y: float
    reach: float  # its farthest pixel from the centroid
    turn: float | None  # a star's: degrees its top point is turned from upright (+-36)


def classify(image: Image.Image) -> Reading:
    """Colour and outline of the largest region that stands out, and the background."""
    mask, fill, background = _shape(image)
    if mask is None:
        return Reading("none", "none", background)
    return Reading(colour_name(fill), outline(mask), background)


def pose(image: Image.Image) -> Pose | None:
    """Where the shape is, how big, and (a star) how turned; None if there is no shape."""
    mask, _, _ = _shape(image)
    if mask is None:
        return None
    ys, xs = np.nonzero(mask)
    dy, dx = ys - ys.mean(), xs - xs.mean()
    tip = int(np.argmax(np.hypot(dy, dx)))
    turn = None
    if star_points(mask) == 5:  # any of its points: they repeat every 72 degrees
        up = np.degrees(np.arctan2(dy[tip], dx[tip])) + 90
        turn = float((up + 36) % 72 - 36)
    return Pose(float(xs.mean()), float(ys.mean()), float(np.hypot(dy, dx)[tip]), turn)


def _shape(image: Image.Image) -> tuple[np.ndarray | None, np.ndarray, str]:
    """The largest region that stands out (None if none does), its fill colour, and the
    background's name."""
    a = np.asarray(image.convert("RGB").resize((SIZE, SIZE)), dtype=float)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    background = background_name(border)
    bg = np.median(border, axis=0)
    mask = largest_region(np.sqrt(((a - bg) ** 2).sum(-1)) > STAND_OUT)
    if mask.sum() < MIN_AREA:
        return None, bg, background
    inner = _erode(mask)
    fill = np.median(a[inner if inner.sum() >= MIN_AREA // 4 else mask], axis=0)
    # The outline is where the picture turns nearer the shape's colour than the background's,
    # so a glow or halo round the shape doesn't blunt its points.
    mask = largest_region(mask & (((a - fill) ** 2).sum(-1) < ((a - bg) ** 2).sum(-1)))
    if mask.sum() < MIN_AREA:
        return None, fill, background
    return mask, fill, background


def outline(mask: np.ndarray) -> str:
    """circle, square, triangle, star or none, from the region's fill of its bounding box,
    its solidity, its proportions and its radius around the centroid."""
    ys, xs = np.nonzero(mask)
    w, h = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
    area = int(mask.sum())
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    solidity = area / max(_hull_area(corners), 1.0)
    filled, aspect = area / (w * h), w / h
    if solidity < 0.85 and star_points(mask) == 5:
        return "star"
    if solidity < 0.75:
        return "none"  # ragged: no shape we know
    if filled > 0.88 and 0.75 <= aspect <= 1.33:
        return "square"
    radius = _radius_profile(mask, bins=24)  # coarse: a small disc's pixels leave fine bins short
    if 0.66 < filled <= 0.88 and 0.8 <= aspect <= 1.25 and radius.max() <= 1.3 * radius.min():
        return "circle"
    if 0.4 <= filled <= 0.66 and solidity > 0.85:
        return "triangle"
    return "none"


def _erode(mask: np.ndarray) -> np.ndarray:
    """Pixels whose four neighbours are in the mask too: the fill, without anti-aliased edges."""
    m = np.pad(mask, 1)
    return mask & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]


def _radius_profile(mask: np.ndarray, bins: int = 72) -> np.ndarray:
    """The region's reach from its centroid in each of `bins` directions, lightly smoothed."""
    ys, xs = np.nonzero(mask)
    dy, dx = ys - ys.mean(), xs - xs.mean()
    angle = ((np.arctan2(dy, dx) + np.pi) / (2 * np.pi) * bins).astype(int) % bins
    radius = np.zeros(bins)
    np.maximum.at(radius, angle, np.hypot(dy, dx) + 0.5)
    return np.convolve(np.concatenate([radius[-1:], radius, radius[:1]]), np.ones(3) / 3, "valid")


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


def star_points(mask: np.ndarray, bins: int = 72) -> int:
    """How many evenly spaced points the region has: 5 for a star. The radius of the region's
    edge is read around its centroid; a point is a peak of it that stands well above the
    valleys either side. Ragged blobs have low solidity too, but not five regular points."""
    radius = _radius_profile(mask, bins)
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
