"""Full-size numbers on one card (#17, #31), measured side by side in one run:

1. `POST /generate` through the engine's HTTP API vs a bare `pipe()` call, on the same card:
   SDXL at 1024 px, 30 steps (target <= 1.03x) and SD-Turbo at 512 px, 1 step (<= 1.15x);
   each request's time less its render (the engine's Server-Timing); 16 requests back to back
   over HTTP (2 connections) vs a bare loop of 16 (>= 0.98x the throughput).
2. A fused stack of two LoRAs (rank 16, the attention layers) vs no LoRA, over HTTP,
   alternating: target <= 1.05x.
3. `LORAMINT_COMPILE=1`: the same request on a compiled engine vs the plain one, and the
   compile's warm-up seconds (`--case compile-...`).
4. LoRA training, SDXL at 1024 px and SD 1.5 at 512 px, batch 1, rank 16, with the settings
   LoraMint plans for this card (engine/training/memory.py: gradient checkpointing only when
   memory needs it; bf16 autocast, cached inputs, frozen parts offloaded): seconds per step and
   peak memory, with and without prior preservation, beside diffusers'
   train_dreambooth_lora(_sdxl).py at the same settings when `--diffusers` names a checkout.
   Targets: <= 0.8x the script's seconds per step; peak <= 14 GB for SDXL.
5. `card-plan`: SDXL training planned under 12 and 16 GB caps (LORAMINT_GPU_MEMORY_FRACTION's
   mechanism): the plan in words, its seconds per step, and its peak <= the cap.

Every timing is the median of `--runs` with its IQR. The models are the published
architectures with random weights (`bench/full_size`): speed and memory don't depend on the
weights' values, and nothing is downloaded. On CUDA the engine's own choice of dtype is used
(bf16, or fp16 where the card lacks it). `--size tiny` runs the same code on the CPU at 64 px
and at most 4 steps.

    .venv/bin/python -m bench.gpu [--size full|tiny] [--runs 10] [--out results.json]
        [--case NAME ...] [--diffusers CHECKOUT] [--train-steps 20]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import statistics
import tempfile
from pathlib import Path

import torch

from bench.full_size import build
from bench.generate import measure
from bench.levers import levers
from bench.train import PROMPT, SCRIPT, SD_SCRIPT, image, ours, script
from engine.contract.schemas import TrainOptions
from engine.gpu import card_memory
from engine.pipelines import pick_device
from engine.training.defaults import train_config
from engine.training.memory import fit_to_card
from engine.values import ModelDefaults, ModelInfo, RenderParams
from tests.tiny import random_lora

# name: (architecture, side in px, steps, guidance, LORAMINT_COMPILE)
CASES = {
    "sdxl-1024px-30-steps": ("sdxl", 1024, 30, 5.0, False),
    "sd-turbo-512px-1-step": ("sd-turbo", 512, 1, 0.0, False),
    "compile-sdxl-1024px-30-steps": ("sdxl", 1024, 30, 5.0, True),
}
TRAIN_CASES = {"sdxl-1024px-train": ("sdxl", 1024), "sd15-512px-train": ("sd15", 512)}
# ratio: (target, at most / at least); "http / direct" per case
TARGETS = {
    "sdxl-1024px-30-steps": 1.03,
    "sd-turbo-512px-1-step": 1.15,
    "2 LoRAs / none": 1.05,
    "16 back to back, throughput / bare": 0.98,
    "LoraMint / script": 0.8,
}
GB = 1 << 30


def iqr(xs: list[float]) -> list[float]:
    """[25th, 50th, 75th] percentiles."""
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return [round(v, 4) for v in q]


def run_case(arch, side, steps, guidance, compile_, name, args, work: Path) -> dict:
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
    env = {"LORAMINT_COMPILE": "1"} if compile_ else {}
    rounds = 0 if compile_ else args.rounds
    t = measure(work / "model", loras, body, args.runs, work, device.type, samples, rounds, **env)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    ratios = {
        "http / direct": round(t["http"] / t["direct"], 4),
        "2 LoRAs / none": round(t["stack"] / t["no_lora"], 4),
    }
    if rounds:
        per_round = [b / h for b, h in zip(samples["16 bare"], samples["16 http"], strict=True)]
        ratios["16 back to back, throughput / bare"] = round(statistics.median(per_round), 4)
    out = {
        "side": side,
        "steps": steps,
        "dtype": str(dtype).removeprefix("torch."),
        "compiled": compile_,
        "seconds": {k: round(v, 4) for k, v in t.items()},
        "quartiles": {k: iqr(v) for k, v in samples.items()},
        "ratios": ratios,
    }
    if args.levers:
        params = RenderParams(body["prompt"], "", steps, guidance, side, side, (body["seed"],))
        out["levers"] = levers(work / "model", loras, params, args.runs, device.type)
    return out


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
        out[label] = timed_run(pipe, info, family, steps, prior, card_memory(device))
    if args.diffusers:
        (work / "data").mkdir()
        image().resize((side, side)).save(work / "data" / "a.png")
        del pipe
        gc.collect()
        extra = ["--mixed_precision", "no"]
        if cuda:  # the settings LoraMint's plan chose: equal settings
            precision = "bf16" if dtype == torch.bfloat16 else "fp16"
            extra = ["--mixed_precision", precision]
            extra += ["--gradient_checkpointing"] if out["LoraMint"]["checkpointing"] else []
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


def timed_run(pipe, info, family: str, steps: int, prior: bool, memory) -> dict:
    """Seconds per step and peak GB of a run with the settings planned for `memory`."""
    opts = TrainOptions(
        name="bench", trigger_word="ohwx", captions=[PROMPT], steps=steps, rank=16,
        learning_rate=1e-4, flip=False, prior_preservation=prior,
    )  # fmt: skip
    cfg, words = fit_to_card(train_config(opts, 1, info), family, memory)
    cfg = dataclasses.replace(cfg, sample_every=0)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    out = {"s_per_step": round(ours(pipe, cfg), 4), "plan": words}
    out["checkpointing"], out["resolution"] = cfg.gradient_checkpointing, cfg.resolution
    if cuda:
        out["peak_gb"] = round(torch.cuda.max_memory_allocated() / GB, 2)
    return out


def card_plan_case(args, work: Path) -> dict:
    """SDXL training planned under 12 and 16 GB caps; each run's peak must stay under."""
    device, dtype = pick_device("auto")
    side = 64 if args.size == "tiny" else 1024
    pipe = build("sdxl", args.size, str(device), dtype)
    pipe.set_progress_bar_config(disable=True)
    info = ModelInfo("sdxl", "sdxl", device.type, str(dtype), ModelDefaults(30, 5.0, side, side))
    out: dict[str, dict] = {}
    for cap in (12, 16):
        if device.type == "cuda":
            total = torch.cuda.get_device_properties(device).total_memory
            torch.cuda.set_per_process_memory_fraction(min(1.0, cap * GB / total), device)
            torch.cuda.empty_cache()
            memory = card_memory(device)
        else:  # the code path only: figures as on a card of that size with SDXL loaded
            memory = (cap - 7.4, float(cap))
        run = timed_run(pipe, info, "sdxl", args.train_steps + 5, False, memory)
        run["fits"] = run.get("peak_gb", 0.0) <= cap
        out[f"{cap} GB"] = run
    if device.type == "cuda":
        torch.cuda.set_per_process_memory_fraction(1.0, device)
    return {"side": side, "steps": args.train_steps, "dtype": str(dtype).removeprefix("torch."),
            "training": out}  # fmt: skip


def report(name: str, case: dict, card: str, args) -> None:
    print(f"{name} ({args.size}, {case['side']} px, {case['steps']} steps, {case['dtype']}) "
          f"on {card}:")  # fmt: skip
    for label, seconds in case.get("seconds", {}).items():
        if label == "compile_s":
            print(f"  compile and warm-up {seconds:.1f} s")
            continue
        low, _, high = case["quartiles"][label]
        print(f"  {label:<10} {seconds * 1000:10.1f} ms (median of {args.runs}; IQR "
              f"{low * 1000:.1f}-{high * 1000:.1f})")  # fmt: skip
    for label in ("added", "16 http", "16 bare"):
        if label in case.get("quartiles", {}):
            low, mid, high = case["quartiles"][label]
            print(f"  {label:<10} {mid * 1000:10.1f} ms (IQR {low * 1000:.1f}-{high * 1000:.1f})")
    for label, t in case.get("training", {}).items():
        peak = f", peak {t['peak_gb']:.2f} GB" if "peak_gb" in t else ""
        print(f"  {label:<30} {t['s_per_step']:8.4f} s/step{peak}")
        if t.get("plan"):
            print(f"    plan: {t['plan']}")
    for label, ratio in case.get("ratios", {}).items():
        target = TARGETS.get(label, TARGETS.get(name))
        if label == "http / direct" and case.get("compiled"):
            print(f"  {label:<18} {ratio:7.3f}x  (compiled engine against the plain pipe)")
            continue
        bound = "at least" if "throughput" in label else "at most"
        print(f"  {label:<18} {ratio:7.3f}x  (target {bound} {target:.2f}x)")
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
    ap.add_argument("--runs", type=int, default=10, help="rounds per comparison (median)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of 16 back-to-back requests")
    ap.add_argument("--levers", action="store_true", help="also the in-process LoRA levers")
    names = [*CASES, *TRAIN_CASES, "card-plan"]
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
                case = run_case(*CASES[name], name, args, Path(work))
            elif name in TRAIN_CASES:
                case = train_case(*TRAIN_CASES[name], args, Path(work))
            else:
                case = card_plan_case(args, Path(work))
        results["cases"][name] = case
        report(name, case, card, args)
        if args.out:  # after each case: a run cut short keeps what it measured
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
