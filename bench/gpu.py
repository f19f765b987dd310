"""Full-size numbers on one card (#17), measured side by side in one run:

1. `POST /generate` through the engine's HTTP API vs a bare `pipe()` call, on the same card:
   SDXL at 1024 px, 30 steps, and SD-Turbo at 512 px, 1 step. Target: <= 1.02x.
2. A cached stack of two LoRAs (rank 16, the attention layers) vs no LoRA, the same request.
   Target: <= 1.10x.

The models are the published architectures with random weights (`bench/full_size`): speed and
memory don't depend on the weights' values, and nothing is downloaded. On CUDA the engine's own
choice of dtype is used (bf16, or fp16 where the card lacks it). `--size tiny` runs the same
code on the CPU at 64 px and at most 4 steps.

    .venv/bin/python -m bench.gpu [--size full|tiny] [--runs 5] [--out results.json]
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
from pathlib import Path

import torch

from bench.full_size import build
from bench.generate import measure
from engine.pipelines import pick_device
from tests.tiny import random_lora

# name: (architecture, side in px, steps, guidance)
CASES = {
    "sdxl-1024px-30-steps": ("sdxl", 1024, 30, 5.0),
    "sd-turbo-512px-1-step": ("sd-turbo", 512, 1, 0.0),
}
TARGETS = {"http / direct": 1.02, "2 LoRAs / none": 1.10}


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
    t = measure(work / "model", loras, body, args.runs, work, device.type)
    return {
        "side": side,
        "steps": steps,
        "dtype": str(dtype).removeprefix("torch."),
        "seconds": {k: round(v, 4) for k, v in t.items()},
        "ratios": {
            "http / direct": round(t["http"] / t["direct"], 4),
            "2 LoRAs / none": round(t["stack"] / t["no_lora"], 4),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", choices=["full", "tiny"], default="full")
    ap.add_argument("--runs", type=int, default=5, help="rounds per comparison (median)")
    ap.add_argument("--case", choices=list(CASES), action="append", help="default: all")
    ap.add_argument("--out", type=Path, help="also write the results here as JSON")
    args = ap.parse_args()
    card = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    results = {"device": card, "size": args.size, "runs": args.runs, "cases": {}}
    for name in args.case or CASES:
        with tempfile.TemporaryDirectory(prefix="loramint-gpu-") as work:
            case = run_case(*CASES[name], args, Path(work))
        results["cases"][name] = case
        print(f"{name} ({args.size}, {case['side']} px, {case['steps']} steps, {case['dtype']}) "
              f"on {card}, median of {args.runs}:")  # fmt: skip
        for label, seconds in case["seconds"].items():
            print(f"  {label:<10} {seconds * 1000:10.1f} ms")
        for label, ratio in case["ratios"].items():
            print(f"  {label:<16} {ratio:7.3f}x  (target <= {TARGETS[label]:.2f}x)")
        if args.out:  # after each case: a run cut short keeps what it measured
            args.out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
