"""The levers for a cached LoRA stack (#17), measured in-process on one pipe, one after another,
each against no LoRA on the same pipe: the stack as the engine runs it (fused into the base
weights by its LoRA cache, engine/lora_fusion.py), the same stack as active PEFT adapters
(`set_adapters`, what the engine did before), no LoRA with no adapters loaded at all (what the
PEFT wrappers cost that stay on every layer a cached LoRA touches), and channels_last. A stack
switch costs each approach something once per change: a round trip (no LoRA, then the stack)
is timed for both. And after a stack, no LoRA must draw exactly what it drew before.

Used by `bench/gpu.py` for each generation case; `python -m bench.levers` runs it on a tiny
SD model on this machine's device.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from bench.generate import interleaved_medians
from engine.contract.records import ImageParameters
from engine.generation import png_bytes
from engine.loras import LoraCache
from engine.pipelines import load_model, render
from engine.values import LoraRef, RenderParams


def _median(fn: Callable[[], object], runs: int, spread: dict, name: str) -> float:
    samples: dict[str, list[float]] = {}
    median = interleaved_medians({name: fn}, runs, samples)[name]
    spread[name] = [round(min(samples[name]), 4), round(max(samples[name]), 4)]
    return median


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def levers(model: Path, loras: list[Path], params: RenderParams, runs: int, device: str) -> dict:
    """Median seconds per image for each lever, their ratios to no LoRA, the switch costs."""
    pipe, _ = load_model(str(model), device)
    pipe.set_progress_bar_config(disable=True)
    cache = LoraCache(pipe, capacity=len(loras))
    stack = [LoraRef("bench", p.name, p, 0.8) for p in loras]

    def draw() -> np.ndarray:
        return np.asarray(render(pipe, params)[0], dtype=np.int16)

    def peft_on() -> None:
        pipe.enable_lora()
        pipe.set_adapters(names, adapter_weights=[r.strength for r in stack])

    cache.activate(stack)  # loads both adapters, so "none" below has them loaded but off
    names = list(dict.fromkeys(n for ns in pipe.get_list_adapters().values() for n in ns))
    cache.activate([])
    before, spread = draw(), {}
    t = {"none": _median(draw, runs, spread, "none")}
    cache.activate(stack)
    t["stack, fused (engine)"] = _median(draw, runs, spread, "stack, fused (engine)")
    switch = {"fused (engine)": _timed(lambda: (cache.activate([]), cache.activate(stack)))}
    cache.invalidate()  # the base weights back, for PEFT's own adapters
    peft_on()
    t["stack, PEFT adapters"] = _median(draw, runs, spread, "stack, PEFT adapters")
    switch["PEFT adapters"] = _timed(lambda: (pipe.disable_lora(), peft_on()))
    pipe.disable_lora()
    after = draw()
    # What the adapters' wrappers cost with no LoRA on: the same pipe without them.
    pipe.unload_lora_weights()
    t["none, no adapters loaded"] = _median(draw, runs, spread, "none, no adapters loaded")
    pipe.unet.to(memory_format=torch.channels_last)
    t["none, channels_last"] = _median(draw, runs, spread, "none, channels_last")
    image = render(pipe, params)[0]
    # What the engine adds to every image: its PNG, with the parameters in it.
    meta = ImageParameters(
        user_id="bench", prompt=params.prompt, negative_prompt="", loras=[], model=str(model),
        family="sd", scheduler=type(pipe.scheduler).__name__, steps=params.steps,
        guidance_scale=params.guidance_scale, width=params.width, height=params.height,
        seed=params.seeds[0],
    )  # fmt: skip
    png_s = _median(lambda: png_bytes(image, meta), runs, spread, "png")
    base = t["none"]
    return {
        "seconds": {k: round(v, 4) for k, v in t.items()},
        "spread": spread,
        "ratios": {f"{k} / none": round(v / base, 4) for k, v in t.items() if k != "none"},
        "switch_s": {k: round(v, 4) for k, v in switch.items()},
        "png_s": round(png_s, 4),
        "after_stack_vs_none_max_pixel_diff": int(np.abs(after - before).max()),
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
