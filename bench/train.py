"""LoRA training step time, LoraMint's trainer beside diffusers' train_dreambooth_lora_sdxl.py.

Tiny SDXL (tests/tiny.py), 64 px, batch 1, rank 4, lr 1e-4, one image, in one run: the rounds
alternate between the script and each LoraMint setting, so drift on a shared CPU hits all
alike. Both sides are timed from inside, the same way: the mean gap between optimizer steps
after the first four (the script's through a global optimizer-step hook, see
stand_ins/run_script.py). Target: LoraMint at equal settings <= 0.8x the script.

    .venv/bin/python -m bench.train [--diffusers PATH] [--steps 30] [--rounds 3]

PATH is a diffusers checkout (`git clone --depth 1 https://github.com/huggingface/diffusers`);
without one the bench prints how to get it and times LoraMint alone.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from engine.contract.schemas import TrainOptions
from engine.training.config import TrainConfig
from engine.training.defaults import train_config
from engine.training.trainer import Hooks, LoraTrainer
from engine.values import ModelDefaults, ModelInfo
from tests.tiny import tiny_sdxl

SCRIPT = Path("examples/dreambooth/train_dreambooth_lora_sdxl.py")
SD_SCRIPT = Path("examples/dreambooth/train_dreambooth_lora.py")  # SD 1.x/2.x
RUNNER = Path(__file__).resolve().parent / "stand_ins" / "run_script.py"
PROMPT = "a photo of ohwx"
TARGET = 0.8


def image() -> Image.Image:
    return Image.new("RGB", (64, 64), (200, 40, 40))


def settings(steps: int) -> dict[str, TrainConfig]:
    """Equal settings: the script's (attention layers everywhere, no prior preservation) with
    the thread count LoraMint picks for a small model; then the small-model defaults."""
    info = ModelInfo("tiny-sdxl", "sdxl", "cpu", "float32", ModelDefaults(8, 5.0, 64, 64))
    opts = TrainOptions(
        name="bench",
        trigger_word="ohwx",
        captions=[PROMPT],
        steps=steps,
        rank=4,
        learning_rate=1e-4,
        flip=False,
    )
    small = train_config(opts, 1, info)
    equal = TrainConfig((PROMPT,), steps, 4, 1e-4, 64, 0, flip=False, cpu_threads=small.cpu_threads)
    return {
        "LoraMint, equal settings": equal,
        "LoraMint, equal settings, encoding every step": dataclasses.replace(
            equal, cache_inputs=False
        ),
        "LoraMint, small-model defaults, prior off": dataclasses.replace(
            small, prior=None, sample_every=0
        ),
        "LoraMint, small-model defaults (prior on)": dataclasses.replace(small, sample_every=0),
    }


def ours(pipe, cfg: TrainConfig) -> float:
    stamps: list[float] = []
    hooks = Hooks(
        lambda s, loss: stamps.append(time.perf_counter()),
        lambda: False,
        lambda: False,
        lambda: None,
    )
    trainer = LoraTrainer(pipe, cfg, hooks)
    try:
        trainer.run([image()])
    finally:
        trainer.remove()
    return (stamps[-1] - stamps[4]) / (len(stamps) - 5)  # after warm-up


def script(
    checkout: Path,
    model: Path,
    data: Path,
    steps: int,
    out: Path,
    *extra: str,
    resolution: int = 64,
    rank: int = 4,
    which: Path = SCRIPT,
) -> float:
    """The script's seconds per step; `extra` are more of its arguments."""
    stamps_file = out.parent / "stamps.txt"
    argv = [sys.executable, str(RUNNER), str(stamps_file), str(checkout / which)]
    argv += ["--pretrained_model_name_or_path", str(model), "--instance_data_dir", str(data)]
    argv += ["--instance_prompt", PROMPT, "--resolution", str(resolution)]
    argv += ["--train_batch_size", "1", "--rank", str(rank), "--learning_rate", "1e-4"]
    argv += ["--max_train_steps", str(steps), "--output_dir", str(out), "--seed", "0"]
    argv += ["--report_to", "all", "--center_crop", "--checkpointing_steps", "100000"]
    argv += list(extra) or ["--mixed_precision", "no"]
    run = subprocess.run(argv, capture_output=True, text=True, cwd=out.parent)
    if run.returncode:
        raise RuntimeError(f"{which.name} failed ({run.returncode}):\n{run.stderr[-3000:]}")
    stamps = [float(line) for line in stamps_file.read_text().split()]
    return (stamps[-1] - stamps[4]) / (len(stamps) - 5)  # after warm-up, as ours()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--diffusers", type=Path, help="a diffusers checkout")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    checkout = args.diffusers
    if checkout is None or not (checkout / SCRIPT).exists():
        print(
            "No diffusers checkout given: timing LoraMint alone. To compare, run\n"
            "  git clone --depth 1 https://github.com/huggingface/diffusers /tmp/diffusers\n"
            "  .venv/bin/python -m bench.train --diffusers /tmp/diffusers"
        )
        checkout = None
    pipe = tiny_sdxl(seed=0)
    pipe.set_progress_bar_config(disable=True)
    configs = settings(args.steps + 5)
    times: dict[str, list[float]] = {name: [] for name in ["diffusers' script", *configs]}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if checkout:
            pipe.save_pretrained(work / "model")
            (work / "data").mkdir()
            image().save(work / "data" / "a.png")
        for _ in range(args.rounds):
            if checkout:
                times["diffusers' script"].append(
                    script(checkout, work / "model", work / "data", args.steps + 5, work / "out")
                )
            for name, cfg in configs.items():
                times[name].append(ours(pipe, cfg))
    report(times, args)


def report(times: dict[str, list[float]], args) -> None:
    print(f"tiny SDXL, 64 px, batch 1, rank 4, lr 1e-4, {args.steps} steps x {args.rounds} rounds")
    base = times["diffusers' script"]
    anchor = statistics.median(base) if base else None
    for name, ts in times.items():
        if not ts:
            continue
        med, spread = statistics.median(ts), f"{min(ts):.4f}-{max(ts):.4f}"
        ratio = f"{med / anchor:5.2f}x the script" if anchor else ""
        print(f"{name:<48} {med:7.4f} s/step ({spread})  {ratio}")
    if anchor:
        ratio = statistics.median(times["LoraMint, equal settings"]) / anchor
        print(f"equal settings: {ratio:.2f}x the script's seconds per step (target <= {TARGET})")


if __name__ == "__main__":
    main()
