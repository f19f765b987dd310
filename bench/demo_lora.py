"""The demo model's LoRA acceptance case, timed: default-settings training against the
3-minute budget, and what the saved LoRA draws.

Trains on the acceptance images (engine/demo_model/acceptance.py) with exactly the settings
`POST /train-lora` would use, saves the LoRA as the engine does, loads it back through the
engine's LoRA cache and scores the acceptance prompts with the evaluator's classifier. The
training time is printed as a ratio of the budget (target <= 1); the issue's bars for the
images are stars >= 80 % and plain-prompt colour >= 85 %.

    .venv/bin/python -m bench.demo_lora [--device cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from safetensors.torch import save_file

from engine.contract.schemas import TrainOptions
from engine.demo_model import MODEL_ID
from engine.demo_model.acceptance import (
    CAPTIONS,
    PLAIN_CASES,
    STAR_PROMPTS,
    STAR_SEEDS,
    TRIGGER,
    star_images,
)
from engine.demo_model.reading import classify
from engine.loras import LoraCache
from engine.pipelines import load_model as load
from engine.pipelines import render
from engine.training.defaults import train_config
from engine.training.trainer import Hooks, LoraTrainer
from engine.values import LoraRef, RenderParams

BUDGET_S = 180.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    pipe, info = load(MODEL_ID, args.device)
    opts = TrainOptions(name="star", trigger_word=TRIGGER, captions=list(CAPTIONS))
    cfg = train_config(opts, len(CAPTIONS), info)
    hooks = Hooks(lambda step, loss: None, lambda: False, lambda: False, lambda: None)
    trainer = LoraTrainer(pipe, cfg, hooks)
    started = time.perf_counter()
    result = trainer.run(star_images())
    seconds = time.perf_counter() - started
    trainer.remove()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "star.safetensors"
        save_file(result.state, str(path))
        LoraCache(pipe, 1).activate([LoraRef("bench", path, 1.0)])
        d = info.defaults

        def draw(prompt: str, seed: int):
            params = RenderParams(prompt, "", d.steps, d.guidance_scale, d.width, d.height, (seed,))
            return classify(render(pipe, params)[0])

        stars = [draw(p, s).shape == "star" for p in STAR_PROMPTS for s in STAR_SEEDS]
        colours = [draw(p, s).colour == c for c, p, s in PLAIN_CASES]
    print(
        f"demo model, {len(CAPTIONS)} star images, defaults: {cfg.steps} steps, rank {cfg.rank}, "
        f"lr {cfg.learning_rate}, prior preservation {'on' if cfg.prior else 'off'}"
    )
    print(f"training                {seconds:7.1f} s  ({seconds / cfg.steps:.3f} s/step)")
    print(f"vs the budget           {seconds / BUDGET_S:7.2f}x of {BUDGET_S:.0f} s (target <= 1)")
    print(f"stars with the LoRA     {sum(stars) / len(stars):7.0%}  (target >= 80 %)")
    print(f"plain-prompt colour     {sum(colours) / len(colours):7.0%}  (target >= 85 %)")


if __name__ == "__main__":
    main()
