"""Score the demo model as a person would read its pictures: `python -m engine.demo_model.evaluate`.

Every colour x shape x background, at the standard seeds and at held-apart seeds that no
training or tuning looked at; each picture is read by `reading.classify` (colour by hue and
saturation, background by the border, shape by outline). Prints the accuracies per seed set,
what the misses were read as, and the seconds per image at the model's default steps.
`--sheet PATH` also writes a contact sheet of the standard cases, one row per prompt.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from engine.demo_model import MODEL_ID
from engine.demo_model.reading import Reading, classify
from engine.demo_model.shapes import BACKGROUNDS, COLOURS, SHAPES

BARS = {"colour": 0.95, "background": 0.95, "shape": 0.85, "seconds_per_image": 0.5}
STANDARD_SEEDS = range(1000, 1008)
HELD_APART_SEEDS = range(7919, 7919 + 8)


@dataclass(frozen=True)
class Case:
    prompt: str
    seed: int
    colour: str
    shape: str
    background: str


def cases(seeds) -> list[Case]:
    """Every colour x shape x background at each seed."""
    return [
        Case(f"a {c} {s} on a {b} background", seed, c, s, b)
        for c in COLOURS
        for s in SHAPES
        for b in BACKGROUNDS
        for seed in seeds
    ]


@dataclass
class Report:
    readings: list[tuple[Case, Reading]] = field(default_factory=list)
    images: list[Image.Image] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def accuracy(self, attr: str) -> float:
        hits = sum(getattr(c, attr) == getattr(r, attr) for c, r in self.readings)
        return hits / max(1, len(self.readings))

    def spread(self, attr: str) -> tuple[float, float]:
        """The lowest and highest accuracy of any one seed: how much a score rides on seeds."""
        per_seed: dict[int, list[bool]] = {}
        for c, r in self.readings:
            per_seed.setdefault(c.seed, []).append(getattr(c, attr) == getattr(r, attr))
        shares = [sum(v) / len(v) for v in per_seed.values()] or [0.0]
        return min(shares), max(shares)

    def misses(self, attr: str) -> Counter:
        """(asked, read) -> count, for the pictures that missed."""
        return Counter(
            (getattr(c, attr), getattr(r, attr))
            for c, r in self.readings
            if getattr(c, attr) != getattr(r, attr)
        )

    @property
    def seconds_per_image(self) -> float:
        return sum(self.seconds) / max(1, len(self.seconds))

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.readings),
            **{k: self.accuracy(k) for k in ("colour", "background", "shape")},
            "seconds_per_image": round(self.seconds_per_image, 3),
        }


def run(pipe: Any, defaults: Any, todo: list[Case], keep_images: bool = False) -> Report:
    from engine.pipelines import RenderParams, render

    report = Report()
    for case in todo:
        params = RenderParams(
            case.prompt,
            "",
            defaults.steps,
            defaults.guidance_scale,
            defaults.width,
            defaults.height,
            (case.seed,),
        )
        started = time.perf_counter()
        image = render(pipe, params)[0]
        report.seconds.append(time.perf_counter() - started)
        report.readings.append((case, classify(image)))
        if keep_images:
            report.images.append(image)
    return report


def contact_sheet(report: Report, per_row: int, scale: int = 2) -> Image.Image:
    """The pictures in case order, `per_row` to a row, each scaled up without smoothing."""
    w, h = report.images[0].size
    rows = -(-len(report.images) // per_row)
    sheet = Image.new("RGB", (w * per_row, h * rows), "white")
    for i, image in enumerate(report.images):
        sheet.paste(image, ((i % per_row) * w, (i // per_row) * h))
    return sheet.resize((sheet.width * scale, sheet.height * scale), Image.Resampling.NEAREST)


def print_report(name: str, report: Report) -> None:
    s = report.summary()
    print(f"{name}: {s['images']} images")
    for k in ("colour", "background", "shape"):
        misses = ", ".join(f"{a}->{r} x{n}" for (a, r), n in report.misses(k).most_common(6))
        low, high = report.spread(k)
        print(f"  {k:<11} {s[k]:6.1%}  (bar {BARS[k]:.0%}; seeds {low:.0%}-{high:.0%})  {misses}")
    print(f"  seconds per image {s['seconds_per_image']:.3f} (bar {BARS['seconds_per_image']})")


def main() -> None:
    from engine.pipelines import load_model

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=MODEL_ID, help="builtin:demo or a diffusers folder")
    ap.add_argument("--seeds", type=int, default=len(STANDARD_SEEDS), help="standard seeds")
    ap.add_argument("--held-apart", type=int, default=len(HELD_APART_SEEDS), help="0: skip")
    ap.add_argument("--sheet", help="write a contact sheet PNG of the standard cases here")
    ap.add_argument("--steps", type=int, help="sampling steps (default: the model's)")
    args = ap.parse_args()
    pipe, info = load_model(args.model, "cpu")
    d = dataclasses.replace(info.defaults, steps=args.steps or info.defaults.steps)
    print(f"model {info.model}: {d.steps} steps, guidance {d.guidance_scale}")
    seeds = STANDARD_SEEDS[: args.seeds]
    standard = run(pipe, d, cases(seeds), keep_images=bool(args.sheet))
    print_report(f"standard seeds {seeds.start}-{seeds.stop - 1}", standard)
    if args.sheet:
        contact_sheet(standard, per_row=len(seeds) * len(BACKGROUNDS)).save(args.sheet)
    if args.held_apart:
        held = HELD_APART_SEEDS[: args.held_apart]
        print_report(f"held-apart seeds {held.start}-{held.stop - 1}", run(pipe, d, cases(held)))


if __name__ == "__main__":
    main()
