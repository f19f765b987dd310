"""LoRA training step time: cached latents/embeddings vs encoding every step, one run.

Tiny SDXL (diffusers' test size), 64 px, batch 1, rank 4. Runs alternate between the two
modes on the same pipeline, so drift on a shared CPU hits both alike. Also prints the VAE and
text-encoder memory that caching frees (on a GPU they are moved off once cached).
Anchor: diffusers' train_dreambooth_lora_sdxl.py, ~0.24 s/step here (encodes every step).

    .venv/bin/python -m bench.train [--steps 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from PIL import Image

from engine.training.config import TrainConfig
from engine.training.data import text_encoders
from engine.training.trainer import Hooks, LoraTrainer
from tests.tiny import tiny_sdxl

ANCHOR_S = 0.24


def seconds_per_step(pipe, cache: bool, steps: int) -> float:
    stamps: list[float] = []
    hooks = Hooks(
        lambda s, loss: stamps.append(time.perf_counter()),
        lambda: False,
        lambda: False,
        lambda: None,
    )
    cfg = TrainConfig(("a photo of ohwx",), steps, 4, 1e-4, 64, 0, cache_inputs=cache)
    trainer = LoraTrainer(pipe, cfg, hooks)
    try:
        trainer.run([Image.new("RGB", (64, 64), (200, 40, 40))])
    finally:
        trainer.remove()
    gaps = [b - a for a, b in zip(stamps[4:], stamps[5:], strict=False)]  # skip warm-up
    return statistics.median(gaps)


def module_mb(*modules) -> float:
    return (
        sum(t.numel() * t.element_size() for m in modules for t in (*m.parameters(), *m.buffers()))
        / 2**20
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    pipe = tiny_sdxl(seed=0)
    pipe.set_progress_bar_config(disable=True)
    cached, encoded = [], []
    for _ in range(args.rounds):
        cached.append(seconds_per_step(pipe, True, args.steps))
        encoded.append(seconds_per_step(pipe, False, args.steps))
    c, e = statistics.median(cached), statistics.median(encoded)
    freed = module_mb(pipe.vae, *text_encoders(pipe))
    print(f"tiny SDXL, 64 px, batch 1, rank 4, {args.steps} steps x {args.rounds} rounds")
    print(f"cached latents + embeddings   {c:7.4f} s/step")
    print(f"encode every step             {e:7.4f} s/step")
    print(f"speed-up from caching         {e / c:7.2f}x   (target >= 1.05)")
    print(f"vs diffusers' script anchor   {c / ANCHOR_S:7.2f}x of {ANCHOR_S} s/step (target <= 1)")
    print(
        f"VAE + text encoders freed     {freed:7.2f} MB  (moved off the GPU once cached; "
        f"SDXL base: ~1.7 GB in fp16)"
    )


if __name__ == "__main__":
    main()
