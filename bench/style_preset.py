"""The `style` preset on the demo model (#30): does a LoRA learn a look (a colour the model never
saw) from three pictures of different shapes, and draw it on shapes and backgrounds the
pictures did not pair?

    .venv/bin/python -m bench.style_preset --sets pink cyan --variants default noprior

A demo model's "style" is a colour: three uploads of one new colour (pink or cyan) as a
circle, a square and a triangle on three backgrounds, captioned with the trigger in place of
the colour ("a zxq circle on a white background", the style preset's caption form), or with
the bare template (`--captions template`: "a zxq shape"). Trained in-process with the style
preset's settings changed as bench/demo_levers.py's variants name them. Scored: trigger
prompts of each shape on the backgrounds its upload was not on (6 pairs x 2 seeds), drawn in
the set's colour and shape ("styled"); plain prompts keep their colour (the acceptance set's
24). One JSON line per (set, variant). Runs one thread: start two at once on two cores.
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

from bench.demo_levers import variant
from engine.contract.schemas import TrainOptions
from engine.demo_model import MODEL_ID
from engine.demo_model.acceptance import PLAIN_CASES, TRIGGER
from engine.demo_model.reading import classify
from engine.demo_model.shapes import BACKGROUNDS, SHAPES, Scene, draw
from engine.loras import LoraCache
from engine.pipelines import load_model, render
from engine.training.defaults import train_config
from engine.training.trainer import Hooks, LoraTrainer
from engine.values import LoraRef, RenderParams

# Each set: its colour, and the background of each shape's upload. `pink` was the set the
# preset was chosen on; the others were held apart.
SETS = {
    "pink": ("pink", ("white", "black", "gray")),
    "cyan": ("cyan", ("gray", "white", "black")),
    "pink2": ("pink", ("black", "gray", "white")),
}


def uploads(name: str) -> tuple[str, list, list[str]]:
    colour, grounds = SETS[name]
    images = [draw(Scene(colour, s, b, 32, 32, 18)) for s, b in zip(SHAPES, grounds, strict=True)]
    captions = [
        f"a {TRIGGER} {s} on a {b} background" for s, b in zip(SHAPES, grounds, strict=True)
    ]
    return colour, images, captions


def cases(name: str) -> list[tuple[str, str, int]]:
    """(shape, prompt, seed): each shape on the two backgrounds its upload was not on."""
    _, grounds = SETS[name]
    return [
        (s, f"a {TRIGGER} {s} on a {b} background", seed)
        for s, own in zip(SHAPES, grounds, strict=True)
        for b in BACKGROUNDS
        if b != own
        for seed in (11, 12)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", nargs="+", default=["pink"], choices=list(SETS))
    ap.add_argument("--variants", nargs="+", default=["default"])
    ap.add_argument("--captions", choices=("style", "template"), default="style")
    args = ap.parse_args()
    torch.set_num_threads(1)
    pipe, info = load_model(MODEL_ID, "cpu")
    d, cache = info.defaults, LoraCache(pipe, 1)

    def look(prompt: str, seed: int):
        params = RenderParams(prompt, "", d.steps, d.guidance_scale, d.width, d.height, (seed,))
        return classify(render(pipe, params)[0])

    with tempfile.TemporaryDirectory() as tmp:
        for set_name in args.sets:
            colour, images, caps = uploads(set_name)
            sent = caps if args.captions == "style" else None
            opts = TrainOptions(name="style", preset="style", trigger_word=TRIGGER, captions=sent)
            base = train_config(opts, len(images), info)
            base = dataclasses.replace(base, sample_every=0, checkpoint_every=0)
            for name in args.variants:
                cache.invalidate()
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
                read = [(s, look(p, seed)) for s, p, seed in cases(set_name)]
                plain = [look(p, seed).colour == c for c, p, seed in PLAIN_CASES]
                row = {
                    "set": set_name,
                    "variant": name,
                    "captions": args.captions,
                    "seconds": round(seconds),
                    "styled": round(
                        sum(r.colour == colour and r.shape == s for s, r in read) / len(read), 3
                    ),
                    "colour": round(sum(r.colour == colour for _, r in read) / len(read), 3),
                    "shape": round(sum(r.shape == s for s, r in read) / len(read), 3),
                    "plain_colour": round(sum(plain) / len(plain), 3),
                    "drawn": [f"{r.colour} {r.shape}" for _, r in read],
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
