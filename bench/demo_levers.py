"""Which training lever makes the demo LoRA draw stars on held-out prompts? (#28)

    .venv/bin/python -m bench.demo_levers --sets fresh1 fresh2 --variants default noprior+noflip

Trains in-process on the demo model, one upload set and one variant of the default settings at a
time, and scores each LoRA with the acceptance evaluator (engine/demo_model/acceptance.py: stars,
their colour and plain prompts' colour) and the trigger prompts it missed. Upload sets as in
bench/report_card.py (`acceptance`, `yellow`, `freshN`), captioned by the demo reader. A variant
is the defaults with `+`-joined changes: `noprior`, `noflip`, `te` (train the text encoder),
`lrX`, `stN` (steps), `rkN` (rank), `pwX` (prior weight), `peN` (prior every N steps), `sdN`
(the training seed: the spread of one setting), `dora` (adapter=dora). Runs one thread:
start two at once on two cores. One JSON line per (set, variant).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from bench.report_card import upload_set
from engine.contract.schemas import TrainOptions
from engine.demo_model import MODEL_ID
from engine.demo_model.acceptance import STAR_CASES, TRIGGER, score_captioned
from engine.demo_model.reading import classify
from engine.loras import LoraCache
from engine.pipelines import load_model, render
from engine.training.config import TrainConfig
from engine.training.defaults import train_config
from engine.training.trainer import Hooks, LoraTrainer
from engine.values import LoraRef, RenderParams

CHANGES = {
    "noprior": lambda cfg, _: {"prior": None},
    "noflip": lambda cfg, _: {"flip": False},
    "te": lambda cfg, _: {"train_text_encoder": True},
    "lr": lambda cfg, v: {"learning_rate": float(v)},
    "st": lambda cfg, v: {"steps": int(v)},
    "rk": lambda cfg, v: {"rank": int(v)},
    "pw": lambda cfg, v: {"prior": dataclasses.replace(cfg.prior, weight=float(v))},
    "pe": lambda cfg, v: {"prior": dataclasses.replace(cfg.prior, every=int(v))},
    "sd": lambda cfg, v: {"seed": int(v)},
    "dora": lambda cfg, _: {"dora": True},
}


def variant(cfg: TrainConfig, name: str) -> TrainConfig:
    for part in name.split("+"):
        if part == "default":
            continue
        key = next((k for k in CHANGES if part.startswith(k)), None)
        if key is None:
            raise SystemExit(f"unknown change {part!r}: one of {', '.join(CHANGES)}")
        cfg = dataclasses.replace(cfg, **CHANGES[key](cfg, part.removeprefix(key)))
    return cfg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=["fresh1", "fresh2"])
    ap.add_argument("--variants", nargs="+", default=["default"])
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe, info = load_model(MODEL_ID, "cpu")
    d, cache = info.defaults, LoraCache(pipe, 1)

    def draw(prompt: str, seed: int):
        params = RenderParams(prompt, "", d.steps, d.guidance_scale, d.width, d.height, (seed,))
        return render(pipe, params)[0]

    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets:
            images = upload_set(set_name)
            caps = [
                f"a {r.colour} {TRIGGER} on a {r.background} background"
                for r in map(classify, images)
            ]
            opts = TrainOptions(name="levers", trigger_word=TRIGGER, captions=caps)
            base = train_config(opts, len(images), info)
            base = dataclasses.replace(base, sample_every=0, checkpoint_every=0)
            for name in args.variants:
                cache.invalidate()  # the base weights: nothing fused from the last LoRA
                cfg = variant(base, name)
                noop = Hooks(lambda step, loss: None, lambda: False, lambda: False, lambda: None)
                trainer = LoraTrainer(pipe, cfg, noop)
                started = time.perf_counter()
                state = trainer.run(images).state
                seconds = time.perf_counter() - started
                trainer.remove()
                path = Path(tmp) / f"{set_name}-{name}.safetensors"
                save_file(state, str(path))
                cache.activate([LoraRef(path.stem, path.name, path, 1.0)])
                scores = score_captioned(draw)
                missed: dict[str, int] = {}
                for _, prompt, seed in STAR_CASES:
                    if classify(draw(prompt, seed)).shape != "star":
                        missed[prompt] = missed.get(prompt, 0) + 1
                own = [classify(draw(caps[0], 600 + i)).shape == "star" for i in range(8)]
                row = {"set": set_name, "variant": name, "seconds": round(seconds)}
                row |= {k: round(v, 3) for k, v in scores.items()}
                row |= {"own_caption_stars": sum(own) / 8, "missed": missed}
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
