"""What the orchestrator adds: `GET /loras` and a small `/generate`, through the orchestrator
vs straight to its engine, median of many requests, interleaved in one run.
Targets: /generate <= 1.05x; < 3 ms added per /loras request.

    .venv/bin/python -m bench.proxy [--runs 60]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import httpx

from bench.generate import interleaved_medians
from engine.tiny import random_lora, tiny_sd
from tests.engine_process import OrchestratorProcess


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="loramint-proxy-"))
    pipe = tiny_sd(seed=0)
    pipe.save_pretrained(work / "model", safe_serialization=True)
    loras = [random_lora(pipe, work / f"l{i}.safetensors", seed=i) for i in range(5)]
    app = OrchestratorProcess(str(work / "model"), work).start_ready()
    engine_url = f"http://127.0.0.1:{app.engine_port}"
    body = {"prompt": "a red fox", "seed": 1, "steps": 2, "guidance_scale": 3.0}
    try:
        with (
            httpx.Client(base_url=app.url, timeout=60) as via,
            httpx.Client(base_url=engine_url, timeout=60) as direct,
        ):
            for path in loras:
                via.post(
                    "/loras", files={"file": (path.name, path.read_bytes())}
                ).raise_for_status()
            user = {"user_id": "local"}
            t = interleaved_medians(
                {
                    "loras_direct": lambda: direct.get("/loras", params=user).raise_for_status(),
                    "loras_via": lambda: via.get("/loras").raise_for_status(),
                    "gen_direct": lambda: direct.post(
                        "/generate", json={**body, **user}
                    ).raise_for_status(),
                    "gen_via": lambda: via.post("/generate", json=body).raise_for_status(),
                },
                args.runs,
            )
    finally:
        app.stop()
    added_ms = (t["loras_via"] - t["loras_direct"]) * 1000
    print(f"tiny SD, {args.runs} interleaved rounds, medians")
    print(
        f"GET /loras   engine {t['loras_direct'] * 1000:7.2f} ms   via orchestrator "
        f"{t['loras_via'] * 1000:7.2f} ms   added {added_ms:5.2f} ms   (target < 3 ms)"
    )
    print(
        f"POST /generate engine {t['gen_direct'] * 1000:7.1f} ms   via orchestrator "
        f"{t['gen_via'] * 1000:7.1f} ms   ratio {t['gen_via'] / t['gen_direct']:5.3f}   "
        f"(target <= 1.05)"
    )


if __name__ == "__main__":
    main()
