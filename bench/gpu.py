"""Full-size numbers on one card (#17), measured side by side in one run:

1. `POST /generate` through the engine's HTTP API vs a bare `pipe()` call, on the same card:
   SDXL at 1024 px, 30 steps, and SD-Turbo at 512 px, 1 step. Target: <= 1.02x.
2. A cached stack of two LoRAs (rank 16, the attention layers) vs no LoRA, the same request.
   Target: <= 1.10x.
3. LoRA training, SDXL at 1024 px and SD 1.5 at 512 px, batch 1, rank 16, LoraMint's defaults
   for the card (on CUDA: bf16 autocast, gradient checkpointing, frozen parts offloaded):
   seconds per step and peak memory, with and without prior preservation, beside diffusers'
   own train_dreambooth_lora(_sdxl).py at the same settings when `--diffusers` names a
   checkout. Targets: <= 0.8x the script's seconds per step; peak <= 14 GB (a 16 GB card).

The models are the published architectures with random weights (`bench/full_size`): speed and
memory don't depend on the weights' values, and nothing is downloaded. On CUDA the engine's own
choice of dtype is used (bf16, or fp16 where the card lacks it). `--size tiny` runs the same
code on the CPU at 64 px and at most 4 steps.

    .venv/bin/python -m bench.gpu [--size full|tiny] [--runs 5] [--out results.json]
        [--case NAME ...] [--diffusers CHECKOUT] [--train-steps 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import tempfile
from pathlib import Path

import torch

from bench.full_size import build
from bench.generate import measure
from bench.levers import levers
from bench.train import PROMPT, SCRIPT, SD_SCRIPT, image, ours, script
from engine.contract.schemas import TrainOptions
from engine.pipelines import pick_device
from engine.training.defaults import train_config
from engine.values import ModelDefaults, ModelInfo, RenderParams
from tests.tiny import random_lora

# name: (architecture, side in px, steps, guidance)
CASES = {
    "sdxl-1024px-30-steps": ("sdxl", 1024, 30, 5.0),
    "sd-turbo-512px-1-step": ("sd-turbo", 512, 1, 0.0),
}
TRAIN_CASES = {"sdxl-1024px-train": ("sdxl", 1024), "sd15-512px-train": ("sd15", 512)}
TARGETS = {"http / direct": 1.02, "2 LoRAs / none": 1.10, "LoraMint / script": 0.8}
GB = 1 << 30


def run_case(arch: str, side: int, steps: int, guidance: float, args, work: Path) -> dict:
    device, dtype = pick_device("auto")
    if args.size == "tiny":
        side, steps = 64, min(steps, 4)
    pipe = build(arch, args.size, str(device), dtype)
    pipe.save_pretrained(work / "model", safe_serialization=True)
    loras = [random_lora(pipe, work / f"lora{i}.safetensors", seed=i, rank=16) for i in (1, 2)]
    del pipe
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    body = {"prompt": "a red fox in the snow", "seed": 1, "steps": steps,
            "guidance_scale": guidance, "width": side, "height": side}  # fmt: skip
    samples: dict[str, list[float]] = {}
    t = measure(work / "model", loras, body, args.runs, work, device.type, samples)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    params = RenderParams(body["prompt"], "", steps, guidance, side, side, (body["seed"],))
    return {
        "side": side,
        "steps": steps,
        "dtype": str(dtype).removeprefix("torch."),
        "seconds": {k: round(v, 4) for k, v in t.items()},
        "spread": {k: [round(min(v), 4), round(max(v), 4)] for k, v in samples.items()},
        "ratios": {
            "http / direct": round(t["http"] / t["direct"], 4),
            "2 LoRAs / none": round(t["stack"] / t["no_lora"], 4),
        },
        "levers": levers(work / "model", loras, params, args.runs, device.type),
    }


def train_case(arch: str, side: int, args, work: Path) -> dict:
    device, dtype = pick_device("auto")
    cuda = device.type == "cuda"
    side = 64 if args.size == "tiny" else side
    steps = args.train_steps + 5  # the first 5 are warm-up, as in bench/train.py
    pipe = build(arch, args.size, str(device), dtype)
    pipe.set_progress_bar_config(disable=True)
    family = "sdxl" if arch == "sdxl" else "sd"
    info = ModelInfo(arch, family, device.type, str(dtype), ModelDefaults(30, 5.0, side, side))
    if args.diffusers:  # saved before LoraMint's runs have touched its modules
        pipe.save_pretrained(work / "model", safe_serialization=True)
    out: dict[str, dict] = {}
    for label, prior in (("LoraMint", False), ("LoraMint, prior preservation", True)):
        opts = TrainOptions(
            name="bench", trigger_word="ohwx", captions=[PROMPT], steps=steps, rank=16,
            learning_rate=1e-4, flip=False, prior_preservation=prior,
        )  # fmt: skip
        cfg = dataclasses.replace(train_config(opts, 1, info), sample_every=0)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        out[label] = {"s_per_step": round(ours(pipe, cfg), 4)}
        if cuda:
            out[label]["peak_gb"] = round(torch.cuda.max_memory_allocated() / GB, 2)
    if args.diffusers:
        (work / "data").mkdir()
        image().resize((side, side)).save(work / "data" / "a.png")
        del pipe
        gc.collect()
        extra = ["--mixed_precision", "no"]
        if cuda:
            precision = "bf16" if dtype == torch.bfloat16 else "fp16"
            extra = ["--mixed_precision", precision, "--gradient_checkpointing"]
        which = SCRIPT if arch == "sdxl" else SD_SCRIPT
        seconds = script(args.diffusers, work / "model", work / "data", steps, work / "out",
                         *extra, resolution=side, rank=16, which=which)  # fmt: skip
        out["diffusers' script"] = {"s_per_step": round(seconds, 4)}
        peak = work / "stamps.txt.peak"
        if peak.exists():
            out["diffusers' script"]["peak_gb"] = round(int(peak.read_text()) / GB, 2)
    result = {"side": side, "steps": args.train_steps, "dtype": str(dtype).removeprefix("torch.")}
    result["training"] = out
    if "diffusers' script" in out:
        ratio = out["LoraMint"]["s_per_step"] / out["diffusers' script"]["s_per_step"]
        result["ratios"] = {"LoraMint / script": round(ratio, 4)}
    return result


def report(name: str, case: dict, card: str, args) -> None:
    print(f"{name} ({args.size}, {case['side']} px, {case['steps']} steps, {case['dtype']}) "
          f"on {card}:")  # fmt: skip
    for label, seconds in case.get("seconds", {}).items():
        low, high = case["spread"][label]
        print(f"  {label:<10} {seconds * 1000:10.1f} ms (median of {args.runs}; "
              f"{low * 1000:.1f}-{high * 1000:.1f})")  # fmt: skip
    for label, t in case.get("training", {}).items():
        peak = f", peak {t['peak_gb']:.2f} GB" if "peak_gb" in t else ""
        print(f"  {label:<30} {t['s_per_step']:8.4f} s/step{peak}")
    for label, ratio in case.get("ratios", {}).items():
        print(f"  {label:<18} {ratio:7.3f}x  (target <= {TARGETS[label]:.2f}x)")
    if lev := case.get("levers"):
        print("  levers, in-process:", ", ".join(f"{k} {v:.3f}x" for k, v in lev["ratios"].items()))
        print(f"    a switch of stacks, there and back: the engine's fusion "
              f"{lev['switch_s']['fused (engine)']:.3f} s, PEFT's set_adapters "
              f"{lev['switch_s']['PEFT adapters']:.3f} s; after a stack, no LoRA differs from "
              f"before by {lev['after_stack_vs_none_max_pixel_diff']} levels; the engine's "
              f"PNG of one image {lev['png_s'] * 1000:.1f} ms")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=["full", "tiny"], default="full")
    ap.add_argument("--runs", type=int, default=5, help="rounds per comparison (median)")
    names = [*CASES, *TRAIN_CASES]
    ap.add_argument("--case", choices=names, action="append", help="default: all")
    ap.add_argument("--diffusers", type=lambda p: Path(p).resolve(), help="a diffusers checkout")
    ap.add_argument("--train-steps", type=int, default=20, help="timed training steps")
    ap.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = ap.parse_args()
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    results = {"device": card, "size": args.size, "runs": args.runs, "cases": {}}
    for name in args.case or names:
        with tempfile.TemporaryDirectory(prefix="loramint-gpu-") as work:
            if name in CASES:
                case = run_case(*CASES[name], args, Path(work))
            else:
                case = train_case(*TRAIN_CASES[name], args, Path(work))
        results["cases"][name] = case
        report(name, case, card, args)
        if args.out:  # after each case: a run cut short keeps what it measured
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
