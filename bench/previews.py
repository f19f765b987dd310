"""What live previews cost: a render with a preview made at every step (what a generation job
does) vs the same render without, alternating, on the tiny model and the built-in demo model.
Target: <= 5 % of a step on the tiny model.

    .venv/bin/python -m bench.previews [--runs 15] [--steps 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from engine.pipelines import load_model, own_settings, render
from engine.previews import data_url, previewer_for
from engine.values import RenderParams
from tests.tiny import tiny_sd


def measure(model: str, steps: int, runs: int) -> tuple[list[float], list[float], float]:
    """Seconds per render without and with previews, one pair per run, and the preview
    maker's own time per step."""
    pipe, info = load_model(model, "cpu")
    preview = previewer_for(info.family, own_settings(model).get("preview"), None, pipe)
    d = info.defaults
    params = RenderParams(
        "a red circle on a white background", "", steps, 5.0, d.width, d.height, (1,)
    )
    spent: list[float] = []

    def hook(step: int, latents) -> None:
        t = time.perf_counter()
        data_url(preview(latents))
        spent.append(time.perf_counter() - t)

    plain, with_previews = [], []
    render(pipe, params)  # warm-up
    render(pipe, params, hook)
    spent.clear()
    for _ in range(runs):
        t = time.perf_counter()
        render(pipe, params)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        render(pipe, params, hook)
        with_previews.append(time.perf_counter() - t)
    return plain, with_previews, statistics.median(spent)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loramint-bench-"))
    tiny_sd(seed=0).save_pretrained(work / "tiny", safe_serialization=True)
    for label, model in (("tiny sd", str(work / "tiny")), ("demo", "builtin:demo")):
        plain, with_p, one = measure(model, args.steps, args.runs)
        ratios = sorted(w / p for w, p in zip(with_p, plain, strict=True))
        step = statistics.median(plain) / args.steps
        q1, q3 = ratios[len(ratios) // 4], ratios[3 * len(ratios) // 4]
        print(
            f"{label}: step {step * 1000:.2f} ms; preview {one * 1000:.3f} ms "
            f"= {100 * one / step:.1f} % of a step; render with/without previews "
            f"{statistics.median(ratios):.3f}x (IQR {q1:.3f}-{q3:.3f}, {args.runs} pairs)"
        )


if __name__ == "__main__":
    main()
