"""On an NVIDIA GPU: the engine generates and trains in half precision on tiny models, and a
LoRA trained there is used there. Skipped without CUDA (the `cuda` marker); the GPU machine
runs them with `./test.sh -m cuda`."""

from __future__ import annotations

import pytest

from tests.engine_process import EngineProcess
from tests.helpers import (
    ALICE,
    FAST,
    assert_error,
    generate,
    pixels,
    png_bytes,
    start_training,
    wait_job,
)

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


def test_out_of_memory_is_a_clear_error_and_the_next_request_runs(tiny_models, tmp_path):
    import torch

    total = torch.cuda.get_device_properties(0).total_memory
    eng = EngineProcess(
        str(tiny_models["sdxl"].folder),
        tmp_path / "data",
        tmp_path / "engine.log",
        LORAMINT_DEVICE="cuda",
        LORAMINT_GPU_MEMORY_FRACTION=f"{(300 << 20) / total:.6f}",  # 300 MB of the card
        LORAMINT_MAX_SIZE_RATIO="40",
    ).start()
    try:
        with eng.client() as c:
            huge = {"prompt": "x", **FAST, "width": 2048, "height": 2048, "num_images": 4}
            err = assert_error(c.post("/generate", params=ALICE, json=huge), 503, "out_of_memory")
            assert (
                "4 image(s) of 2048x2048" in err["message"] and "fewer or smaller" in err["message"]
            )
            assert generate(c)["images"]
            assert eng.health()["status"] == "ready"
    finally:
        eng.stop()
