"""What images from images cost, measured side by side in one run (#29):

- time: img2img at strength s against a text-to-image render of the same size and steps,
  alternating, on the demo model (expect about s; the ratio is printed per strength);
- memory: what the img2img and inpainting pipelines made from the loaded components add to
  the process (RSS, and on CUDA the allocated memory), against what the model itself takes.
  Target: < 5 %.

    .venv/bin/python -m bench.images [--runs 7] [--steps 20] [--model builtin:demo]
"""

from __future__ import annotations

import argparse
import base64
import gc
import io
import statistics
import time

import psutil
import torch
from PIL import Image

from engine.contract.generation import GenerateRequest
from engine.demo_model.shapes import Scene, draw
from engine.editing.passes import derived
from engine.editing.passes import draw as draw_passes
from engine.editing.plan import plan_passes
from engine.pipelines import load_model
from engine.runtime import LoadedModel
from engine.values import RenderParams

PROMPT = "a blue circle on a white background"


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def cuda() -> int:
    return torch.cuda.memory_allocated() if torch.cuda.is_available() else 0


def picture_url(size: int) -> str:
    image = draw(Scene("red", "circle", "white", 32, 32, 18)).resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="builtin:demo")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()

    before = rss(), cuda()
    pipe, info = load_model(args.model, "auto")
    loaded = rss(), cuda()
    model = LoadedModel(pipe, info, None, None)  # type: ignore[arg-type]
    for kind in ("img2img", "inpaint"):
        derived(model, kind)
    made = rss(), cuda()
    side = info.defaults.width
    model_bytes = sum(
        p.numel() * p.element_size()
        for part in pipe.components.values()
        if isinstance(part, torch.nn.Module)
        for p in part.parameters()
    )
    print(f"{args.model} on {info.device} ({info.dtype}), {side} px, {args.steps} steps")
    grew = (loaded[0] - before[0]) / 2**20
    print(f"  weights {model_bytes / 2**20:.1f} MB; loading added RSS {grew:.1f} MB")
    added = made[0] - loaded[0]
    print(
        f"  img2img + inpainting pipelines added RSS {added / 2**20:.2f} MB "
        f"= {100 * added / max(loaded[0] - before[0], 1):.2f} % of what loading added"
        + (f"; CUDA {(made[1] - loaded[1]) / 2**20:.2f} MB" if torch.cuda.is_available() else "")
    )

    text = RenderParams(PROMPT, "", args.steps, 5.0, side, side, (1,))
    url = picture_url(side)
    how = dict(
        read_file=lambda _: b"",
        check_size=lambda _: None,
        steps=args.steps,
        size=(side, side),
        native=side,
        seed=1,
    )
    plans = {
        s: plan_passes(GenerateRequest(prompt=PROMPT, init_image=url, strength=s), **how)
        for s in (0.3, 0.6, 0.9)
    }
    txt = plan_passes(GenerateRequest(prompt=PROMPT), **how)
    timings: dict[str, list[float]] = {"txt2img": [], **{f"img2img {s}": [] for s in plans}}
    for run in range(args.runs + 1):  # the first is a warm-up
        for label, passes in [("txt2img", txt), *((f"img2img {s}", p) for s, p in plans.items())]:
            t = time.perf_counter()
            draw_passes(model, text, passes, None)
            if run:
                timings[label].append(time.perf_counter() - t)
    base = statistics.median(timings["txt2img"])
    print(f"  txt2img: {base * 1000:.0f} ms median of {args.runs}")
    for s in plans:
        t = timings[f"img2img {s}"]
        spread = f"{min(t) * 1000:.0f}-{max(t) * 1000:.0f}"
        print(
            f"  img2img at {s}: {statistics.median(t) * 1000:.0f} ms ({spread}), "
            f"{statistics.median(t) / base:.2f} x the render (steps run: {plans[s].first.runs})"
        )


if __name__ == "__main__":
    main()
