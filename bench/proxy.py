"""What the orchestrator adds: `GET /loras` and a small `/generate`, through the orchestrator
vs straight to its engine, median of many requests, interleaved in one run.
Targets: /generate <= 1.05x; < 3 ms added per /loras request.

"Small /generate" is one image from the built-in demo model at its defaults, the smallest
generation the product makes. The same hop is also timed on a tiny random SD at 2 steps
(~45 ms, smaller than any real model), where the fixed cost of the hop shows most.

    .venv/bin/python -m bench.proxy [--runs 60]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx

from bench.generate import interleaved_medians
from tests.engine_process import OrchestratorProcess
from tests.tiny import random_lora, tiny_sd

USER = {"user_id": "local"}


def through_and_direct(model: str, work: Path, body: dict, runs: int, loras=()) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    app = OrchestratorProcess(model, work).start_ready()
    engine_url = f"http://127.0.0.1:{app.engine_port}"
    try:
        with (
            httpx.Client(base_url=app.url, timeout=60) as via,
            httpx.Client(base_url=engine_url, timeout=60) as direct,
        ):
            for path in loras:
                via.post(
                    "/loras", files={"file": (path.name, path.read_bytes())}
                ).raise_for_status()
            return interleaved_medians(
                {
                    "loras_direct": lambda: direct.get("/loras", params=USER).raise_for_status(),
                    "loras_via": lambda: via.get("/loras").raise_for_status(),
                    "gen_direct": lambda: direct.post(
                        "/generate", params=USER, json=body
                    ).raise_for_status(),
                    "gen_via": lambda: via.post("/generate", json=body).raise_for_status(),
                },
                runs,
            )
    finally:
        app.stop()


def report(name: str, t: dict, note: str) -> None:
    print(
        f"POST /generate, {name:<24} engine {t['gen_direct'] * 1000:7.1f} ms   via orchestrator "
        f"{t['gen_via'] * 1000:7.1f} ms   ratio {t['gen_via'] / t['gen_direct']:5.3f}   ({note})"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loramint-proxy-"))
    pipe = tiny_sd(seed=0)
    pipe.save_pretrained(work / "model", safe_serialization=True)
    loras = [random_lora(pipe, work / f"l{i}.safetensors", seed=i) for i in range(5)]
    tiny = through_and_direct(
        str(work / "model"),
        work / "tiny",
        {"prompt": "a red fox", "seed": 1, "steps": 2, "guidance_scale": 3.0},
        args.runs,
        loras,
    )
    demo = through_and_direct(
        "builtin:demo", work / "demo", {"prompt": "a red circle", "seed": 1}, args.runs
    )
    print(f"{args.runs} interleaved rounds, medians")
    added_ms = (tiny["loras_via"] - tiny["loras_direct"]) * 1000
    print(
        f"GET /loras (5 LoRAs){' ' * 21}engine {tiny['loras_direct'] * 1000:7.2f} ms   "
        f"via orchestrator {tiny['loras_via'] * 1000:7.2f} ms   added {added_ms:5.2f} ms   "
        f"(target < 3 ms)"
    )
    report("demo model, defaults", demo, "target <= 1.05")
    added_gen = (tiny["gen_via"] - tiny["gen_direct"]) * 1000
    report("tiny SD, 2 steps", tiny, f"the hop's fixed cost: {added_gen:.2f} ms")


if __name__ == "__main__":
    main()
