"""LORAMINT_COMPILE=1: a real engine with its UNet and VAE decoder compiled (inductor, on the
CPU here) draws what the uncompiled model draws, with and without a fused LoRA stack, and
still trains (uncompiled inside, engine/gpu.py)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.loras import LoraCache
from engine.pipelines import load_model, render
from engine.values import LoraRef, RenderParams
from tests.engine_process import EngineProcess
from tests.helpers import ALICE, pixels, png_bytes, start_training, wait_job

pytestmark = pytest.mark.slow  # compiling takes ~40 s on 2 cores, twice (the first LoRA)


def test_compiled_engine_draws_as_eager_and_trains(tiny_models, tmp_path) -> None:
    model = tiny_models["sd"]
    lora = model.loras["style_a"]
    pipe, info = load_model(str(model.folder), "cpu")
    params = RenderParams("a red fox", "", 2, 3.0, 64, 64, (42,))
    eager = np.asarray(render(pipe, params)[0], dtype=int)
    cache = LoraCache(pipe, 2)
    cache.activate([LoraRef("alice", lora.name, lora, 0.8)])
    eager_lora = np.asarray(render(pipe, params)[0], dtype=int)
    body = {"prompt": "a red fox", "seed": 42, "steps": 2, "guidance_scale": 3.0}

    engine = EngineProcess(str(model.folder), tmp_path / "data", tmp_path / "engine.log",
                           LORAMINT_COMPILE="1")  # fmt: skip
    engine.start(timeout=900)
    try:
        with engine.client(timeout=900) as c:
            assert c.get("/health").json()["compile_s"] > 0  # the warm-up compiled it

            def drawn(**extra) -> np.ndarray:
                r = c.post("/generate", params=ALICE, json={**body, **extra})
                assert r.status_code == 200, r.text
                return pixels(c, r.json()["images"][0]).astype(int)

            base = drawn()
            assert np.abs(base - eager).max() <= 2  # inductor's sums, in another order
            files = {"file": (lora.name, lora.read_bytes())}
            assert c.post("/loras", params=ALICE, files=files).status_code in (200, 201)
            stacked = drawn(loras=[{"file": lora.name, "strength": 0.8}])
            assert np.abs(stacked - eager_lora).max() <= 2 and np.abs(stacked - base).max() > 20

            job = start_training(c, [png_bytes((200, 0, 0))], name="compiled", steps="4",
                                 sample_every="0", checkpoint_every="0")  # fmt: skip
            assert wait_job(c, job["job_id"])["status"] == "succeeded"
            assert np.array_equal(drawn(), base)  # the base weights as they were
    finally:
        engine.stop()
