"""On an NVIDIA GPU: the engine generates and trains in half precision on tiny models, and a
LoRA trained there is used there. Skipped without CUDA (the `cuda` marker); the GPU machine
runs them with `./test.sh -m cuda`."""

from __future__ import annotations

import pytest

from tests.engine_process import EngineProcess
from tests.helpers import generate, pixels, png_bytes, start_training, wait_job

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("family", ["sd", "sdxl"])
def test_half_precision_generation_and_training(tiny_models, tmp_path, family):
    eng = EngineProcess(
        str(tiny_models[family].folder),
        tmp_path / "data",
        tmp_path / "engine.log",
        LORAMINT_DEVICE="cuda",
    ).start()
    try:
        health = eng.health()
        assert health["device"].startswith("cuda")
        assert health["dtype"] in ("bfloat16", "float16")
        with eng.client() as c:
            image = generate(c)["images"][0]
            side = health["defaults"]["width"], health["defaults"]["height"]
            assert pixels(c, image).shape[:2] == side[::-1]
            job = start_training(
                c, [png_bytes((200, 0, 0))], name="on_gpu", steps="6", prior_preservation="false"
            )
            done = wait_job(c, job["job_id"])
            assert done["status"] == "succeeded", done.get("error")
            assert generate(c, loras=[{"file": "on_gpu.safetensors"}])["images"]
    finally:
        eng.stop()
