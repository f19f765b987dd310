"""DoRA (#30): `adapter=dora` trains PEFT's weight-decomposed LoRA. On tiny real engines over
HTTP: the file holds the magnitudes and says so, it loads as an adapter (not fused), stacks with
a plain LoRA, refuses kohya conversion with a 422, imports, and goes on from its own weights."""

from __future__ import annotations

import numpy as np
from safetensors import safe_open

from engine.training.adapter import TrainingAdapter
from tests.helpers import (
    ALICE,
    SDXL_IN_SLOW_TIER,
    assert_error,
    encoded,
    render,
    start_training,
    wait_job,
)
from tests.test_masked_training import picture

LEARN = {"learning_rate": "0.01", "rank": "4", "sample_every": "0", "prior_preservation": "false"}


def test_a_magnitude_is_named_as_peft_saves_it():
    name = "0.up.0.to_q.lora_magnitude_vector.loramint_training.weight"
    assert TrainingAdapter.exported_name(name) == "unet.up.0.to_q.lora_magnitude_vector"
    assert TrainingAdapter.exported_name("1.q_proj.lora_A.loramint_training.weight") == (
        "text_encoder.q_proj.lora_A.weight"
    )


@SDXL_IN_SLOW_TIER
def test_a_dora_trains_loads_stacks_imports_and_goes_on(client, engine):
    red = encoded(picture((250, 20, 20)))
    job = start_training(
        client, [red], name="dora", adapter="dora", steps="6", checkpoint_every="3", **LEARN
    )
    done = wait_job(client, job["job_id"])
    assert done["status"] == "succeeded", done
    assert done["params"]["adapter"] == "dora"
    path = engine.data_dir / "loras" / "alice" / "dora.safetensors"
    with safe_open(str(path), framework="pt") as f:
        keys, meta = list(f.keys()), f.metadata()
    assert any(k.endswith("lora_magnitude_vector") for k in keys)
    assert meta["loramint.adapter"] == "dora"
    listed = {lo["file"]: lo for lo in client.get("/loras", params=ALICE).json()["loras"]}
    assert listed["dora.safetensors"]["adapter"] == "dora"

    plain = render(client, seed=3)
    dora = render(client, seed=3, loras=[{"file": "dora.safetensors", "strength": 1.0}])
    assert np.abs(dora - plain).mean() > 1  # the DoRA runs (as an adapter: it can't be fused)
    # Stacked with a plain LoRA, and back to nothing: the base model's picture again.
    job = start_training(client, [red], name="plain", steps="4", **LEARN)
    assert wait_job(client, job["job_id"])["status"] == "succeeded"
    stack = [{"file": "dora.safetensors", "strength": 1.0}, {"file": "plain.safetensors"}]
    both = render(client, seed=3, loras=stack)
    assert np.abs(both - dora).mean() > 0.1
    assert np.array_equal(render(client, seed=3), plain)

    r = client.get("/loras/dora.safetensors", params={**ALICE, "format": "kohya"})
    assert "adapter=lora" in assert_error(r, 422, "dora_not_convertible")["message"]
    r = client.post(
        "/loras",
        params=ALICE,
        files={"file": ("theirs.safetensors", path.read_bytes(), "application/octet-stream")},
    )
    assert r.status_code == 201, r.text
    imported = render(client, seed=3, loras=[{"file": "theirs.safetensors", "strength": 1.0}])
    assert np.array_equal(imported, dora)

    # A checkpoint saved as a LoRA goes on from its own weights, magnitudes included.
    r = client.post(f"/jobs/{done['id']}/checkpoints/3/save", params=ALICE, json={"name": "dora-3"})
    assert r.status_code == 201, r.text
    r = client.post("/loras/dora-3.safetensors/continue", params=ALICE, data={"steps": "2"})
    assert r.status_code == 202, r.text
    more = wait_job(client, r.json()["job_id"])
    assert more["status"] == "succeeded", more["error"]
    assert more["params"]["adapter"] == "dora" and more["total_steps"] == 5
    assert more["resumed_from"]["fresh_optimizer"]  # from the file's tensors, by their names
