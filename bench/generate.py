"""Generation overhead, measured side by side in one run on a tiny model.

1. warm `POST /generate` over HTTP to a real engine vs a direct `pipe(...)` call in-process;
2. then a cached two-LoRA stack vs no LoRA, both over HTTP, alternating.
Targets: HTTP <= 1.10x direct; cached stack <= 1.3x no LoRA.

    .venv/bin/python -m bench.generate [--family sd|sdxl] [--runs 15] [--steps 4]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from engine.pipelines import load_model, render
from engine.values import RenderParams
from tests.engine_process import EngineProcess
from tests.tiny import random_lora, tiny_sd, tiny_sdxl


def interleaved_medians(
    fns: dict[str, Callable[[], object]], runs: int, samples: dict[str, list[float]] | None = None
) -> dict[str, float]:
    """Time each fn once per round, round-robin, so drift on a shared CPU hits all alike;
    every time taken also goes into `samples` when given."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up: loads LoRAs into the cache, fills allocator pools
    for _ in range(runs):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    if samples is not None:
        samples.update(times)
    return {name: statistics.median(ts) for name, ts in times.items()}


def throughput(post, bare, count: int, rounds: int, connections: int):
    """Seconds for `count` requests over HTTP (on `connections` at once, so the next request
    waits at the engine while one renders) and for `count` bare calls, alternating `rounds`
    times: two lists."""
    http_s, bare_s = [], []
    with ThreadPoolExecutor(connections) as pool:
        for _ in range(rounds):
            t = time.perf_counter()
            list(pool.map(lambda _i: post(), range(count)))
            http_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            for _ in range(count):
                bare()
            bare_s.append(time.perf_counter() - t)
    return http_s, bare_s


def measure(
    model: Path,
    loras: list[Path],
    body: dict,
    runs: int,
    work: Path,
    device: str = "cpu",
    samples: dict[str, list[float]] | None = None,
    rounds: int = 0,
    **engine_env: str,
) -> dict[str, float]:
    """Median seconds of one generation four ways: a direct `pipe(...)` call in this process,
    `POST /generate` to a real engine on the same model, and over HTTP with no LoRA and with
    the cached `loras` stack (strength 0.8 each). `body` holds prompt, seed, steps,
    guidance_scale, width and height. Into `samples` also go each request's time less its
    render ("added", from the engine's Server-Timing) and, with `rounds`, the seconds of 16
    requests back to back over HTTP ("16 http") and of 16 bare calls ("16 bare"); the
    engine's warm-up compile, when `engine_env` turns it on, is "compile_s"."""
    direct_pipe, _ = load_model(str(model), device)
    params = RenderParams(
        body["prompt"], "", body["steps"], body["guidance_scale"], body["width"],
        body["height"], (body["seed"],),
    )  # fmt: skip
    engine = EngineProcess(
        str(model), work / "data", work / "engine.log", LORAMINT_DEVICE=device, **engine_env
    )
    engine.start(timeout=900)
    samples = {} if samples is None else samples
    try:
        with engine.client(timeout=900) as c:
            for path in loras:
                files = {"file": (path.name, path.read_bytes())}
                c.post("/loras", files=files).raise_for_status()

            def post(extra: dict[str, object], alone: bool = False) -> None:
                """`alone`: nothing else in flight; its time less its render is recorded."""
                t = time.perf_counter()
                r = c.post("/generate", json={**body, **extra})
                if r.is_error:  # the engine's error body says why
                    raise RuntimeError(f"/generate answered {r.status_code}: {r.text}")
                if alone:
                    parts = dict(p.split(";dur=") for p in r.headers["server-timing"].split(", "))
                    added = time.perf_counter() - t - float(parts["render"]) / 1000
                    samples.setdefault("added", []).append(added)

            stack = [{"file": p.name, "strength": 0.8} for p in loras]
            # Two phases, so each ratio measures one thing: first the HTTP path on an engine
            # that has never loaded a LoRA, then no LoRA vs the cached stack (alternating, so
            # every call also pays for switching adapters on or off).
            t = interleaved_medians(
                {"direct": lambda: render(direct_pipe, params), "http": lambda: post({}, True)},
                runs,
                samples,
            )
            t |= interleaved_medians(
                {"no_lora": lambda: post({}), "stack": lambda: post({"loras": stack})},
                runs,
                samples,
            )
            if rounds:
                bare = lambda: render(direct_pipe, params)  # noqa: E731
                samples["16 http"], samples["16 bare"] = throughput(
                    lambda: post({}), bare, 16, rounds, connections=2
                )
            if compile_s := c.get("/health").json().get("compile_s"):
                t["compile_s"] = compile_s
    finally:
        engine.stop()
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--family", choices=["sd", "sdxl"], default="sd")
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=4)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="loramint-bench-"))
    pipe = (tiny_sdxl if args.family == "sdxl" else tiny_sd)(seed=0)
    pipe.save_pretrained(work / "model", safe_serialization=True)
    loras = [random_lora(pipe, work / f"l{i}.safetensors", seed=i, scale=4.0) for i in (1, 2)]
    side = pipe.unet.config.sample_size * pipe.vae_scale_factor
    del pipe
    body = {"prompt": "a red fox", "seed": 1, "steps": args.steps, "guidance_scale": 3.0,
            "width": side, "height": side}  # fmt: skip
    t = measure(work / "model", loras, body, args.runs, work)

    print(f"tiny {args.family}, {args.steps} steps, {side}px, {args.runs} runs")
    print(f"direct pipe(...)          {t['direct'] * 1000:8.1f} ms")
    print(f"HTTP /generate, no LoRA   {t['http'] * 1000:8.1f} ms")
    print(f"HTTP, no LoRA (phase 2)   {t['no_lora'] * 1000:8.1f} ms")
    print(f"HTTP, 2 cached LoRAs      {t['stack'] * 1000:8.1f} ms")
    print(f"ratio HTTP / direct       {t['http'] / t['direct']:8.3f}   (target <= 1.10)")
    print(f"ratio 2-LoRA / no LoRA    {t['stack'] / t['no_lora']:8.3f}   (target <= 1.30)")


if __name__ == "__main__":
    main()
