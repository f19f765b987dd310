"""The levers for a cached LoRA stack (#17), measured in-process on one pipe, one after another:
the stack as the engine runs it (unfused PEFT adapters, `set_adapters`), the same stack fused
into the base weights, and channels_last, each against no LoRA on the same pipe. Fusing pays
off only for a stack that stays the same across requests, so its one-off cost (fuse, then
unfuse) is timed too, and unfusing is checked against no LoRA pixel for pixel: PEFT's unmerge
subtracts what merge added, which in half precision need not give back the same weights.

Used by `bench/gpu.py` for each generation case; `python -m bench.levers` runs it on a tiny
SD model on this machine's device.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from engine.loras import LoraCache
from engine.pipelines import load_model, render
from engine.values import LoraRef, RenderParams


def _median(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def levers(model: Path, loras: list[Path], params: RenderParams, runs: int, device: str) -> dict:
    """Median seconds per image for each lever, their ratios to no LoRA, and the fuse costs."""
    pipe, _ = load_model(str(model), device)
    pipe.set_progress_bar_config(disable=True)
    cache = LoraCache(pipe, capacity=len(loras))
    stack = [LoraRef("bench", p.name, p, 0.8) for p in loras]

    def draw() -> np.ndarray:
        return np.asarray(render(pipe, params)[0], dtype=np.int16)

    cache.activate(stack)  # loads both adapters, so "none" below has them loaded but off
    cache.activate([])
    before = draw()
    t = {"none": _median(draw, runs)}
    cache.activate(stack)
    t["unfused stack"] = _median(draw, runs)
    names = pipe.get_active_adapters()
    fuse_s = _timed(lambda: pipe.fuse_lora(components=["unet"], adapter_names=names))
    t["fused stack"] = _median(draw, runs)
    unfuse_s = _timed(pipe.unfuse_lora)
    cache.activate([])
    after = draw()
    pipe.unet.to(memory_format=torch.channels_last)
    t["none, channels_last"] = _median(draw, runs)
    base = t["none"]
    return {
        "seconds": {k: round(v, 4) for k, v in t.items()},
        "ratios": {f"{k} / none": round(v / base, 4) for k, v in t.items() if k != "none"},
        "fuse_s": round(fuse_s, 4),
        "unfuse_s": round(unfuse_s, 4),
        # 0 when unfusing gives back exactly what no LoRA drew
        "unfused_vs_none_max_pixel_diff": int(np.abs(after - before).max()),
    }


def main() -> None:
    from tests.tiny import random_lora, tiny_sd

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pipe = tiny_sd()
        pipe.save_pretrained(work / "model", safe_serialization=True)
        loras = [random_lora(pipe, work / f"l{i}.safetensors", seed=i) for i in (1, 2)]
        params = RenderParams("a red fox", "", 4, 5.0, 64, 64, (1,))
        print(levers(work / "model", loras, params, runs=5, device="auto"))


if __name__ == "__main__":
    main()
