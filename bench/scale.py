"""Celery mode's gain and cost, measured side by side in one run on a tiny model:

1. throughput: the same batch of generations through the dispatcher with one worker, then
   with two (ratio of the batch times; target >= 1.6x);
2. latency: one small generation through the queue (dispatcher + worker) against a local
   engine, alternating (the queue's added milliseconds; target <= 50 ms).

Each process's torch runs one thread, so on a machine with two or more cores each worker
stands for one device, as one GPU each would be. A real redis-server is started for the run.

    .venv/bin/python -m bench.scale [--batch 12] [--rounds 3] [--runs 15] [--steps 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.generate import interleaved_medians
from tests.engine_process import EngineProcess, QueueCluster
from tests.services import RedisServer
from tests.tiny import tiny_sd

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def batch_seconds(url: str, body: dict, size: int) -> float:
    """Wall time of `size` generations sent at once, as a team would."""

    def one(seed: int) -> None:
        r = httpx.post(url + "/generate", json={**body, "seed": seed}, timeout=600)
        r.raise_for_status()

    started = time.perf_counter()
    with ThreadPoolExecutor(size) as pool:
        list(pool.map(one, range(size)))
    return time.perf_counter() - started


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times):.2f} s (min {min(times):.2f}, max {max(times):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=12, help="generations per batch")
    ap.add_argument("--rounds", type=int, default=3, help="batches timed per worker count")
    ap.add_argument("--runs", type=int, default=15, help="single generations timed each way")
    ap.add_argument("--steps", type=int, default=8)
    args = ap.parse_args()
    body = {"prompt": "a red fox", "steps": args.steps, "guidance_scale": 3.0}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        model = work / "model"
        tiny_sd(seed=0).save_pretrained(model, safe_serialization=True)
        for folder in ("redis", "q"):
            (work / folder).mkdir()
        redis = RedisServer(work / "redis")
        cluster = QueueCluster(str(model), redis.url, work / "q", workers=1, **ONE_THREAD)
        local = EngineProcess(str(model), work / "local", work / "local.log", **ONE_THREAD)
        try:
            local.start()
            url = cluster.dispatcher.url
            batch_seconds(url, body, args.batch)  # warm-up
            one = [batch_seconds(url, body, args.batch) for _ in range(args.rounds)]
            cluster.add_worker()
            batch_seconds(url, body, args.batch)
            two = [batch_seconds(url, body, args.batch) for _ in range(args.rounds)]
            with local.client() as lc, cluster.dispatcher.client() as qc:
                medians = interleaved_medians(
                    {
                        "local": lambda: lc.post("/generate", json=body).raise_for_status(),
                        "queue": lambda: qc.post("/generate", json=body).raise_for_status(),
                    },
                    args.runs,
                )
        finally:
            local.stop()
            cluster.stop()
            redis.stop()
    ratio = statistics.median(one) / statistics.median(two)
    added_ms = (medians["queue"] - medians["local"]) * 1000
    print(f"batch of {args.batch} generations, {args.steps} steps, tiny SD model:")
    print(f"  1 worker:  {spread(one)}")
    print(f"  2 workers: {spread(two)}")
    print(f"  throughput 2 vs 1 workers: {ratio:.2f}x (target >= 1.6x)")
    print(f"one generation, median of {args.runs}:")
    print(
        f"  local engine {medians['local'] * 1000:.0f} ms, queue {medians['queue'] * 1000:.0f} ms"
    )
    print(f"  the queue adds {added_ms:.0f} ms ({medians['queue'] / medians['local']:.2f}x; "
          "target <= 50 ms)")  # fmt: skip


if __name__ == "__main__":
    main()
