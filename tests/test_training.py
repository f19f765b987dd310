"""LoRA training over HTTP on tiny SD and SDXL pipelines: the job, the file, and learning."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from diffusers import AutoPipelineForText2Image
from safetensors.torch import load_file

from tests.engine_process import EngineProcess
from tests.helpers import (
    ALICE,
    SDXL_IN_SLOW_TIER,
    assert_error,
    decode_data_url,
    generate,
    pixels,
    png_bytes,
    render,
    sse_events,
    start_training,
    wait_job,
)

RED, BLUE = (220, 30, 30), (30, 30, 220)
LEARN = {"steps": "150", "learning_rate": "0.01", "rank": "16", "seed": "7", "trigger_word": "zqx"}


@pytest.fixture(scope="module")
def trained(engine):
    """One real training run per family, shared by the tests that inspect its result."""
    with engine.client() as c:
        started = start_training(c, [png_bytes(RED), png_bytes(BLUE)], name="solid", **LEARN)
        events = sse_events(c, f"/jobs/{started['job_id']}/events")
        job = wait_job(c, started["job_id"])
    return {"job": job, "events": events, "path": engine.data_dir / "loras/alice/solid.safetensors"}


def test_progress_events_arrive_in_order_and_end_in_succeeded(trained):
    events = trained["events"]
    assert events[-1][0] == "succeeded", events[-1]
    steps = [data["step"] for _, data in events]
    assert steps == sorted(steps) and steps[-1] == 150
    running = [data for name, data in events if name == "running" and data["step"] > 0]
    assert running and all(d["loss"] is not None for d in running)
    # No time left until the step rate is measured, then always one.
    assert all(d["eta_s"] is None for d in running if d["step"] < 3)
    assert all(d["eta_s"] is not None for d in running if d["step"] >= 3)


def test_phases_tell_what_the_job_is_doing(trained):
    sampling = [d for _, d in trained["events"] if d["phase"] == "sampling"]
    # Drawing samples says so, one image of the two at a time (they interrupt the steps).
    assert sampling and {(d["phase_step"], d["phase_total"]) for d in sampling} <= {(1, 2), (2, 2)}
    phases = [d["phase"] for name, d in trained["events"] if d["phase"] != "sampling"]
    order = ["queued", "preparing", "training", "saving", "done"]
    seen = [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]]
    assert [p for p in order if p in seen] == seen and seen[-1] == "done", seen
    preparing = [d for _, d in trained["events"] if d["phase"] == "preparing" and d["phase_total"]]
    # The tiny models are small: prior preservation draws its images first, counted.
    assert preparing and preparing[-1]["phase_step"] == preparing[-1]["phase_total"]
    assert {d["step"] for _, d in trained["events"] if d["phase"] == "saving"} == {150}


def test_the_report_card_says_why_it_has_no_scores_and_checkpoints_are_kept(trained):
    """Tests are offline, and the default judge model is not cached: the card says so."""
    job = trained["job"]
    assert job["report"]["verdict"] is None
    assert "could not be loaded" in job["report"]["unavailable"]
    assert "LORAMINT_JUDGE_MODEL" in job["report"]["unavailable"]
    assert [p["step"] for p in job["checkpoints"]] == [30, 60, 90, 120, 150]
    assert all(p["kept"] for p in job["checkpoints"])  # 5 kept by default


def test_samples_are_drawn_every_n_steps_with_the_adapter(trained):
    job = trained["job"]
    samples = job["samples"]
    assert job["params"]["sample_every"] == 30  # 150 steps: 5 samples of each prompt
    prompts = job["params"]["sample_prompts"]
    assert prompts[0] == job["params"]["captions"][0] and len(prompts) == 2
    assert [s["step"] for s in samples] == [st for st in (30, 60, 90, 120, 150) for _ in prompts]
    first, last = (decode_data_url(s["image"]) for s in (samples[0], samples[-2]))
    assert np.abs(first - last).mean() > 1  # the LoRA changed what the prompt draws
    # The loss chart's points, thinned, end at the last step.
    history = job["loss_history"]
    assert history[-1][0] == 150 and len(history) <= 200
    assert (
        trained["job"]["progress"] == 1.0
        and trained["job"]["result"]["file"] == "solid.safetensors"
    )


def test_trained_lora_is_listed_with_metadata_and_works_in_generate(client, trained):
    listed = {
        lo["file"]: lo for lo in client.get("/loras", params={"user_id": "alice"}).json()["loras"]
    }
    meta = listed["solid.safetensors"]["metadata"]
    assert meta["loramint.trigger_word"] == "zqx"
    assert json.loads(meta["loramint.rank"]) == 16 and json.loads(meta["loramint.steps"]) == 150
    assert json.loads(meta["loramint.image_count"]) == 2
    assert len(json.loads(meta["loramint.image_sha256"])) == 2
    assert meta["loramint.thumbnail"].startswith("data:image/png;base64,")
    assert "unet.r" in json.loads(meta["lora_adapter_metadata"])
    base = render(client, prompt="zqx", seed=3)
    with_lora = render(client, prompt="zqx", seed=3, loras=[{"file": "solid.safetensors"}])
    assert np.abs(base - with_lora).mean() > 1.0


def _stock_pipeline(tiny_models, family):
    pipe = AutoPipelineForText2Image.from_pretrained(str(tiny_models[family].folder))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _latents(pipe, prompt="zqx", seed=0):
    out = pipe(
        prompt,
        num_inference_steps=20,
        guidance_scale=1.0,
        output_type="latent",
        generator=torch.Generator().manual_seed(seed),
        width=64,
        height=64,
    )
    return out.images


def test_stock_diffusers_loads_the_file_and_the_kohya_download(
    client, engine, tiny_models, trained, tmp_path
):
    pipe = _stock_pipeline(tiny_models, engine.family)
    base = _latents(pipe)
    pipe.load_lora_weights(str(trained["path"]), adapter_name="ours")
    # Every trained layer must come back: diffusers silently skipped some when key styles mixed.
    downs = (".lora_A.weight", ".lora.down.weight")  # PEFT's and diffusers' old names
    in_file = {
        k.removesuffix(d) for k in load_file(trained["path"]) for d in downs if k.endswith(d)
    }
    loaded = {n for n, m in pipe.unet.named_modules() if "ours" in getattr(m, "lora_A", {})}
    assert {f"unet.{n}" for n in loaded} == in_file
    assert any(".conv1" in n for n in loaded) and any(".to_q" in n for n in loaded)
    ours = _latents(pipe)
    assert (base - ours).abs().mean() > 1e-3
    r = client.get("/loras/solid.safetensors", params={"user_id": "alice", "format": "kohya"})
    assert r.status_code == 200
    kohya = tmp_path / "solid_kohya.safetensors"
    kohya.write_bytes(r.content)
    pipe.load_lora_weights(str(kohya), adapter_name="kohya")
    pipe.set_adapters(["kohya"])  # and "ours" off
    assert torch.allclose(_latents(pipe), ours, atol=1e-2)


def test_learning_is_real(engine, tiny_models, trained):
    # Measured on the same fixed (timestep, noise) draws before and after training.
    result = trained["job"]["result"]
    assert result["loss_after"] < 0.95 * result["loss_before"], result
    pipe = _stock_pipeline(tiny_models, engine.family)
    with torch.no_grad():
        target = (
            torch.cat(
                [
                    pipe.vae.encode(
                        torch.tensor(c).view(1, 3, 1, 1).expand(1, 3, 64, 64) / 127.5 - 1
                    ).latent_dist.mean
                    for c in (RED, BLUE)
                ]
            )
            * pipe.vae.config.scaling_factor
        )

    def distance(lat):
        return min(float(((lat - t) ** 2).mean()) for t in target)

    seeds = range(4)
    without = np.mean([distance(_latents(pipe, seed=s)) for s in seeds])
    pipe.load_lora_weights(str(trained["path"]))
    with_lora = np.mean([distance(_latents(pipe, seed=s)) for s in seeds])
    assert with_lora < 0.95 * without, (with_lora, without)


def test_cancel_stops_and_leaves_no_file(client, engine):
    # Prior preservation off: its draws for 5000 steps would be made before step 1.
    started = start_training(
        client, [png_bytes(RED)], name="cancel_me", steps="5000", prior_preservation="false"
    )
    wait_job(client, started["job_id"], until=lambda j: j["step"] >= 2)
    assert client.post(f"/jobs/{started['job_id']}/cancel", params=ALICE).status_code == 200
    job = wait_job(client, started["job_id"], timeout=30)
    assert job["status"] == "cancelled" and job["step"] < 5000
    assert not (engine.data_dir / "loras/alice/cancel_me.safetensors").exists()
    cancel_again = client.post(f"/jobs/{started['job_id']}/cancel", params=ALICE)
    assert_error(cancel_again, 409, "conflict")


@SDXL_IN_SLOW_TIER
def test_generate_during_training_runs_between_steps_and_is_unaffected(
    engine, tiny_models, tmp_path
):
    # A fresh engine, so no LoRA was ever loaded: the training adapter is the only one live.
    model = str(tiny_models[engine.family].folder)
    fresh = EngineProcess(model, tmp_path / "data", tmp_path / "engine.log").start()
    try:
        with fresh.client() as client:
            before = render(client, seed=21, prompt="a blue fox")
            started = start_training(
                client,
                [png_bytes(BLUE)],
                name="busy",
                steps="5000",
                learning_rate="0.01",
                prior_preservation="false",
            )
            wait_job(client, started["job_id"], until=lambda j: j["step"] >= 10)
            during = generate(client, seed=21, prompt="a blue fox")
            job = client.get(f"/jobs/{started['job_id']}", params=ALICE).json()
            client.post(f"/jobs/{started['job_id']}/cancel", params=ALICE)
            assert job["status"] == "running" and job["step"] < 5000
            assert np.array_equal(before, pixels(client, during["images"][0]))
            wait_job(client, started["job_id"], timeout=30)
    finally:
        fresh.stop()


@SDXL_IN_SLOW_TIER
def test_a_lora_stack_drawn_between_steps_leaves_the_training_as_it_was(
    client, engine, upload_lora
):
    """Generations between training steps fuse their stack into the base weights
    (engine/lora_fusion.py); the steps after them must train on the weights as loaded."""
    stack = [{"file": upload_lora("style_a"), "strength": 1.0}]
    learnt = []
    for name, busy in (("quiet", False), ("busy_stack", True)):
        job = start_training(client, [png_bytes(RED)], name=name, steps="60", seed="5",
                             prior_preservation="false", sample_every="0")  # fmt: skip
        if busy:
            wait_job(client, job["job_id"], until=lambda j: j["step"] >= 3)
            generate(client, seed=1, loras=stack)
            running = client.get(f"/jobs/{job['job_id']}", params=ALICE).json()
            assert running["status"] == "running", "the generation came after the training"
        assert wait_job(client, job["job_id"])["status"] == "succeeded"
        learnt.append(load_file(engine.data_dir / f"loras/alice/{name}.safetensors"))
    assert all(torch.equal(learnt[0][k], learnt[1][k]) for k in learnt[0])


def test_jobs_listing_and_unknown_job(client, trained):
    jobs = client.get("/jobs", params={"user_id": "alice"}).json()["jobs"]
    assert trained["job"]["id"] in [j["id"] for j in jobs]
    assert client.get("/jobs", params={"user_id": "bob"}).json()["jobs"] == []
    assert_error(client.get("/jobs/nope", params=ALICE), 404, "not_found")
    # Another user's job reads as no job at all, the same 404.
    other = client.get(f"/jobs/{trained['job']['id']}", params={"user_id": "bob"})
    assert_error(other, 404, "not_found")
    cancel = client.post(f"/jobs/{trained['job']['id']}/cancel", params={"user_id": "bob"})
    assert_error(cancel, 404, "not_found")


@SDXL_IN_SLOW_TIER
def test_seeded_runs_are_reproducible(client, engine):
    from safetensors.torch import load_file

    tensors = []
    for name in ("seeded_1", "seeded_2"):
        job = start_training(
            client, [png_bytes(RED), png_bytes(BLUE)], name=name, steps="8", seed="11",
            sample_every="0",  # samples are drawn, not trained: only the time they'd cost
        )  # fmt: skip
        assert wait_job(client, job["job_id"])["status"] == "succeeded"
        tensors.append(load_file(engine.data_dir / f"loras/alice/{name}.safetensors"))
    assert tensors[0].keys() == tensors[1].keys()
    assert all(torch.equal(tensors[0][k], tensors[1][k]) for k in tensors[0])


@SDXL_IN_SLOW_TIER
def test_prior_preservation_is_on_for_small_models_and_can_be_turned_off(client, engine):
    from safetensors.torch import load_file

    jobs = {}
    for name, form in (("prior_default", {}), ("prior_off", {"prior_preservation": "false"})):
        started = start_training(
            client, [png_bytes(RED)], name=name, steps="8", sample_every="0", **form
        )
        jobs[name] = wait_job(client, started["job_id"])
        assert jobs[name]["status"] == "succeeded", jobs[name]
    assert jobs["prior_default"]["params"]["prior_preservation"] is True
    assert jobs["prior_off"]["params"]["prior_preservation"] is False
    on, off = (load_file(engine.data_dir / f"loras/alice/{n}.safetensors") for n in jobs)
    assert any(not torch.equal(on[k], off[k]) for k in on)
    r = client.post(
        "/train-lora",
        files=[("images", ("a.png", png_bytes(RED), "image/png"))],
        params=ALICE,
        data={"name": "x", "prior_preservation": "maybe"},
    )
    assert "prior_preservation" in assert_error(r, 422)["message"]
