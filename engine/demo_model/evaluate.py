"""Score the demo model's prompt adherence: `python -m engine.demo_model.evaluate`.

Generates a fixed set of prompts and seeds, reads each image's dominant colour, shape and
background with the deterministic classifier in `shapes.py`, and prints the accuracies and
the seconds per image. Bars: colour >= 90 %, shape >= 70 %, <= 1 s per image on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from typing import Any

from engine.demo_model import MODEL_ID
from engine.demo_model.shapes import BACKGROUNDS, COLOURS, SHAPES, Reading, classify

BARS = {"colour": 0.90, "shape": 0.70}


@dataclass(frozen=True)
class Case:
    prompt: str
    seed: int
    colour: str | None = None
    shape: str | None = None
    background: str | None = None


def standard_cases(seeds: int = 2) -> list[Case]:
    """Every colour x shape, the backgrounds taken in turn, `seeds` seeds each."""
    bgs = list(BACKGROUNDS)
    cases = []
    for i, (colour, shape) in enumerate((c, s) for c in COLOURS for s in SHAPES):
        bg = bgs[i % len(bgs)]
        prompt = f"a {colour} {shape} on a {bg} background"
        cases += [Case(prompt, 1000 + s, colour, shape, bg) for s in range(seeds)]
    return cases


@dataclass
class Report:
    readings: list[tuple[Case, Reading]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def accuracy(self, attr: str) -> float:
        scored = [(c, r) for c, r in self.readings if getattr(c, attr) is not None]
        hits = sum(getattr(c, attr) == getattr(r, attr) for c, r in scored)
        return hits / max(1, len(scored))

    @property
    def seconds_per_image(self) -> float:
        return sum(self.seconds) / max(1, len(self.seconds))

    def summary(self) -> dict[str, Any]:
        return {
            "images": len(self.readings),
            "colour": self.accuracy("colour"),
            "shape": self.accuracy("shape"),
            "background": self.accuracy("background"),
            "seconds_per_image": round(self.seconds_per_image, 3),
        }


def run(pipe: Any, defaults: Any, cases: list[Case]) -> Report:
    from engine.pipelines import RenderParams, render

    report = Report()
    for case in cases:
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
    return report


def main() -> None:
    from engine.pipelines import load_model

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default=MODEL_ID, help="builtin:demo or a diffusers folder")
    ap.add_argument("--seeds", type=int, default=2)
    args = ap.parse_args()
    pipe, info = load_model(args.model, "cpu")
    report = run(pipe, info.defaults, standard_cases(args.seeds))
    s = report.summary()
    print(
        f"model {info.model}: {s['images']} images, {info.defaults.steps} steps, "
        f"guidance {info.defaults.guidance_scale}"
    )
    print(f"colour accuracy     {s['colour']:6.1%}   (bar {BARS['colour']:.0%})")
    print(f"shape accuracy      {s['shape']:6.1%}   (bar {BARS['shape']:.0%})")
    print(f"background accuracy {s['background']:6.1%}")
    print(f"seconds per image   {s['seconds_per_image']:6.3f}   (bar 1.0 on 2 CPU cores)")


if __name__ == "__main__":
    main()
