"""What the engine adds to a generation, on the CPU, side by side in one run (#31).

A tiny UNet with a full-size output (1024 px SDXL-shaped, 512 px SD-shaped): the denoising is
cheap, so what the engine does around it (PNG and metadata, saving, HTTP, JSON) shows.

1. Per request: `POST /generate` to a real engine against an in-process `pipe()` call
   (`engine.pipelines.render`, PIL images out), interleaved. Target: <= 40 ms added per
   1024 px image.
   The engine also says how long the request's render took (its Server-Timing header), so
   each request's own added time is printed too: its latency less its render.
2. Throughput: 16 requests back to back over HTTP (2 and 4 client connections, so the next
   request waits at the engine while one renders) against a bare loop of 16 `pipe()` calls.
   Target: >= 0.97x the bare loop.
3. The PNG encoders on the engine's own picture and on a photo-like one: Pillow's levels 1
   and 6 against `engine.png`.

    .venv/bin/python -m bench.overhead [--family sdxl|sd] [--runs 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from bench.generate import interleaved_medians, throughput
from engine import png
from engine.pipelines import load_model, render
from engine.values import RenderParams
from tests.engine_process import EngineProcess
from tests.tiny import _vae, tiny_sd, tiny_sdxl

SIDES = {"sdxl": 1024, "sd": 512}


def full_output(family: str, folder: Path) -> Path:
    """The tiny pipeline with an 8x VAE (four blocks, no mid-block attention: at 1024 px its
    attention alone would outweigh everything measured) and a UNet whose native size is the
    family's, saved as a model folder."""
    pipe = (tiny_sdxl if family == "sdxl" else tiny_sd)(seed=0)
    pipe.vae = _vae([4, 4, 4, 4], 2, mid_block_add_attention=False)
    pipe.unet.register_to_config(sample_size=SIDES[family] // 8)
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def quartiles(xs: list[float]) -> str:
    q1, q2, q3 = statistics.quantiles(xs, n=4) if len(xs) > 1 else (xs[0],) * 3
    return f"median {q2 * 1000:.1f} ms, IQR {q1 * 1000:.1f}-{q3 * 1000:.1f}"


def encoders(picture: Image.Image, runs: int = 5) -> dict[str, tuple[float, int]]:
    """Best time (s) and size (bytes) of each encoder on `picture`."""

    def pillow(level: int) -> bytes:
        buf = io.BytesIO()
        picture.save(buf, format="PNG", compress_level=level)
        return buf.getvalue()

    out = {}
    for name, fn in {
        "Pillow, level 6 (its default)": lambda: pillow(6),
        "Pillow, level 1": lambda: pillow(1),
        "engine.png (Sub filter, ISA-L)": lambda: png.encode(picture),
    }.items():
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            data = fn()
            times.append(time.perf_counter() - t)
        out[name] = (min(times), len(data))
    return out


def photo_like(side: int) -> Image.Image:
    """Smooth colour fields with sensor-like noise: compresses as photographs do."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    fields = np.stack([(x / 4) % 256, (y / 4) % 256, ((x + y) / 8) % 256], -1)
    return Image.fromarray((fields + rng.normal(0, 6, fields.shape)).clip(0, 255).astype(np.uint8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--family", choices=list(SIDES), default="sdxl")
    ap.add_argument("--runs", type=int, default=10, help="single requests per side (median)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of 16 back-to-back requests")
    ap.add_argument("--steps", type=int, default=1)
    args = ap.parse_args()
    side = SIDES[args.family]
    work = Path(tempfile.mkdtemp(prefix="loramint-overhead-"))
    model = full_output(args.family, work / "model")
    pipe, _ = load_model(str(model), "cpu")
    body = {"prompt": "a red fox", "seed": 1, "steps": args.steps, "guidance_scale": 0.0,
            "width": side, "height": side}  # fmt: skip
    params = RenderParams(body["prompt"], "", args.steps, 0.0, side, side, (1,))
    engine = EngineProcess(str(model), work / "data", work / "engine.log")
    engine.start(timeout=900)
    try:
        with engine.client(timeout=900) as c:
            added: list[float] = []  # each request's time less its render, as measured

            def post() -> None:
                t = time.perf_counter()
                r = c.post("/generate", json=body)
                if r.is_error:
                    raise RuntimeError(f"/generate answered {r.status_code}: {r.text}")
                parts = r.headers["server-timing"].split(", ")
                render_ms = float(dict(p.split(";dur=") for p in parts)["render"])
                added.append(time.perf_counter() - t - render_ms / 1000)

            def bare() -> list[Image.Image]:
                return render(pipe, params)

            samples: dict[str, list[float]] = {}
            med = interleaved_medians({"bare": bare, "http": post}, args.runs, samples)
            single = added[-args.runs :]
            rounds = {n: throughput(post, bare, 16, args.rounds, n) for n in (2, 4)}
    finally:
        engine.stop()
    print(f"tiny UNet, {args.family}-shaped, {side} px, {args.steps} step(s), CPU")
    print(f"  bare pipe() call, in-process   {quartiles(samples['bare'])} ({args.runs} runs)")
    print(f"  POST /generate                 {quartiles(samples['http'])}")
    print(f"    its latency less its render  {quartiles(single)}   (target <= 40 ms)")
    print(f"    difference of the medians    {(med['http'] - med['bare']) * 1000:.1f} ms")
    for n, (http_s, bare_s) in rounds.items():
        ratios = [b / h for b, h in zip(bare_s, http_s, strict=True)]
        print(f"  16 back to back, {n} connections: HTTP {', '.join(f'{s:.2f}' for s in http_s)} "
              f"s; bare loop {', '.join(f'{s:.2f}' for s in bare_s)} s")  # fmt: skip
        print(f"    throughput HTTP / bare: median {statistics.median(ratios):.3f}x (rounds: "
              f"{', '.join(f'{r:.3f}' for r in ratios)})   (target >= 0.97x)")  # fmt: skip
    pictures = {"the engine's picture": bare()[0], "a photo-like one": photo_like(side)}
    for label, picture in pictures.items():
        print(f"  PNG of {label}, {side} px:")
        for name, (seconds, size) in encoders(picture).items():
            print(f"    {name:<32} {seconds * 1000:6.1f} ms  {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
