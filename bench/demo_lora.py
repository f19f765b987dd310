"""The demo model's LoRA acceptance case, timed: default-settings training against the
2-minute budget, and what the saved LoRA draws.

Trains on the acceptance images (engine/demo_model/acceptance.py) with exactly the settings
`POST /train-lora` would use, once with the captions the Train page writes and once with the
bare trigger word, saves each LoRA as the engine does, loads it back through the engine's LoRA
cache and scores the acceptance prompts with the evaluator's reader. Training time is printed
as a ratio of the budget (target <= 1), the scores against the acceptance bars.

    .venv/bin/python -m bench.demo_lora [--model DIR] [--steps N] [--prior-every K]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

from safetensors.torch import save_file

from engine.contract.schemas import TrainOptions
from engine.demo_model import MODEL_ID
from engine.demo_model.acceptance import (
    BARS,
    BUDGET_S,
    CAPTIONS,
    TRIGGER,
    misses,
    score_bare,
    score_captioned,
    star_images,
)
from engine.loras import LoraCache
from engine.pipelines import load_model as load
from engine.pipelines import render
from engine.training.defaults import train_config
from engine.training.trainer import Hooks, LoraTrainer
from engine.values import LoraRef, RenderParams


def train(pipe, info, captions, args) -> tuple[dict, float, object]:
    opts = TrainOptions(name="star", trigger_word=TRIGGER, captions=captions)
    cfg = dataclasses.replace(train_config(opts, len(CAPTIONS), info), sample_every=0)
    if args.steps:
        cfg = dataclasses.replace(cfg, steps=args.steps)
    if args.prior_every and cfg.prior:
        cfg = dataclasses.replace(cfg, prior=dataclasses.replace(cfg.prior, every=args.prior_every))
    trainer = LoraTrainer(
        pipe, cfg, Hooks(lambda step, loss: None, lambda: False, lambda: False, lambda: None)
    )
    started = time.perf_counter()
    result = trainer.run(star_images())
    seconds = time.perf_counter() - started
    trainer.remove()
    return result.state, seconds, cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--model", default=MODEL_ID)
    ap.add_argument("--steps", type=int, help="override the default step count")
    ap.add_argument("--prior-every", type=int, help="override the prior term's spacing")
    args = ap.parse_args()
    pipe, info = load(args.model, args.device)
    d = info.defaults
    cache = LoraCache(pipe, 1)

    def with_lora(path: Path):
        cache.activate([LoraRef(path.stem, path.name, path, 1.0)])

        def draw(prompt: str, seed: int):
            params = RenderParams(prompt, "", d.steps, d.guidance_scale, d.width, d.height, (seed,))
            return render(pipe, params)[0]

        return draw

    runs = {"captioned": (list(CAPTIONS), score_captioned), "bare trigger": (None, score_bare)}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (captions, score) in runs.items():
            # As the engine's training service does: the last run's LoRA is fused into the
            # base weights, and a LoRA trained on top of it is wrong on the plain model.
            cache.invalidate()
            state, seconds, cfg = train(pipe, info, captions, args)
            path = Path(tmp) / f"{name.replace(' ', '-')}.safetensors"
            save_file(state, str(path))
            scores = score(with_lora(path))
            prior = f"prior every {cfg.prior.every} step(s)" if cfg.prior else "no prior"
            print(
                f"{name}: {cfg.steps} steps, rank {cfg.rank}, lr {cfg.learning_rate}, {prior}: "
                f"{seconds:.1f} s = {seconds / BUDGET_S:.2f}x of the {BUDGET_S:.0f} s budget "
                f"({seconds / cfg.steps:.3f} s/step)"
            )
            for k, v in scores.items():
                print(f"  {k:<13} {v:6.0%}  (bar {BARS[k]:.0%})")
            print("  " + ("; ".join(misses(scores)) or "meets every bar"))


if __name__ == "__main__":
    main()
