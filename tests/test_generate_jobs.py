"""Generation as a job (`?async=true`): queue position, steps, live previews, cancel; and
stopping work: a client that hangs up mid-render, and an engine told to stop."""

from __future__ import annotations

import json
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from tests.engine_process import EngineProcess
from tests.helpers import (
    ALICE,
    FAST,
    assert_error,
    decode_data_url,
    pixels,
    render,
    sse_events,
    wait_job,
)

# About 30 s on the tiny model: work that is still running when the tests stop it.
LONG = {"prompt": "a long one", "steps": 120, "num_images": 4, "width": 128, "height": 128}


def start(client: httpx.Client, **body) -> dict:
    r = client.post("/generate", params={**ALICE, "async": "true"}, json=body)
    assert r.status_code == 202, r.text
    return r.json()


def outputs(engine: EngineProcess, user: str = "alice") -> set[str]:
    folder = engine.data_dir / "outputs" / user
    return {p.name for p in folder.glob("*.png")} if folder.exists() else set()


def test_async_generation_streams_steps_and_changing_previews(client):
    started = start(client, prompt="a red fox", seed=11, steps=6, guidance_scale=3.0)
    assert started["status_url"] == f"/jobs/{started['job_id']}"
    assert started["job"]["kind"] == "generate"
    events = sse_events(client, started["status_url"] + "/events")
    assert events[-1][0] == "succeeded"
    running = [d for name, d in events if name == "running" and d["preview"]]
    steps = [d["step"] for d in running]
    assert steps == sorted(steps) and steps[-1] == 6 and len(set(steps)) >= 3
    assert all(d["total_steps"] == 6 and d["phase"] == "generating" for d in running)
    previews = [decode_data_url(d["preview"]) for d in running]
    assert all(np.abs(a - b).mean() > 0 for a, b in zip(previews, previews[1:], strict=False))
    job = events[-1][1]
    assert job["preview"] is None and job["phase"] == "done"
    image = job["result"]["images"][0]
    # The same request answered synchronously draws the same picture.
    same = render(client, prompt="a red fox", seed=11, steps=6, guidance_scale=3.0)
    assert np.array_equal(pixels(client, image), same)
    assert job["result"]["parameters"]["seed"] == 11


def test_queued_job_shows_its_place_and_cancelling_it_takes_it_out(client, engine):
    before = outputs(engine)
    first = start(client, **LONG, seed=1)
    running = wait_job(client, first["job_id"], until=lambda j: j["status"] == "running")
    assert running["queue_position"] is None
    second = start(client, prompt="waiting", seed=2, **FAST)
    assert second["job"]["queue_position"] == 1 and second["job"]["status"] == "queued"
    assert client.get("/health").json()["queue_depth"] == 1
    r = client.post(f"/jobs/{second['job_id']}/cancel", params=ALICE)
    assert r.json()["status"] == "cancelled"
    assert client.get("/health").json()["queue_depth"] == 0
    # The running one stops within a step: cancelled, and no image saved.
    asked = time.monotonic()
    client.post(f"/jobs/{first['job_id']}/cancel", params=ALICE)
    job = wait_job(client, first["job_id"], timeout=30)
    assert job["status"] == "cancelled" and job["step"] < 120
    assert time.monotonic() - asked < 5
    assert outputs(engine) == before
    assert_error(client.post(f"/jobs/{first['job_id']}/cancel", params=ALICE), 409, "conflict")
    # Other users can't see or cancel it.
    other = {"user_id": "mallory"}
    assert_error(client.get(f"/jobs/{first['job_id']}", params=other), 404)
    assert_error(client.post(f"/jobs/{second['job_id']}/cancel", params=other), 404)


def test_sizes_far_above_the_native_size_are_refused(client):
    r = client.post("/generate", params=ALICE, json={"prompt": "x", "width": 512, "height": 512})
    err = assert_error(r, 422, "size_too_large")
    assert "64x64" in err["message"] and "LORAMINT_MAX_SIZE_RATIO" in err["message"]
    r = client.post(
        "/generate", params={**ALICE, "async": "true"}, json={"prompt": "x", "width": 512}
    )
    assert_error(r, 422, "size_too_large")
    assert client.post(
        "/generate", params=ALICE, json={"prompt": "x", "width": 128, **FAST}
    ).is_success


def test_a_render_whose_client_hangs_up_stops_at_the_next_step(tiny_models, tmp_path):
    eng = EngineProcess(str(tiny_models["sd"].folder), tmp_path / "data", tmp_path / "e.log")
    eng.start()
    try:
        with pytest.raises(httpx.ReadTimeout), eng.client(timeout=1.5) as c:
            c.post("/generate", params=ALICE, json={**LONG, "seed": 99})
        deadline = time.monotonic() + 5
        while eng.health()["status"] == "busy":
            assert time.monotonic() < deadline, "still rendering for a client that left"
            time.sleep(0.05)
        assert "stopping a running generation" in eng.log_path.read_text()
        assert not outputs(eng)
    finally:
        eng.stop()


@pytest.mark.parametrize("work", ["render", "training"])
def test_sigterm_stops_running_work_within_seconds(tiny_models, tmp_path, work):
    eng = EngineProcess(str(tiny_models["sd"].folder), tmp_path / "data", tmp_path / "e.log")
    eng.start()
    with ThreadPoolExecutor(1) as pool, eng.client(timeout=120) as c:
        if work == "render":
            answer = pool.submit(c.post, "/generate", params=ALICE, json=LONG)
        else:
            from tests.helpers import png_bytes, start_training

            start_training(c, [png_bytes((200, 0, 0))], name="long", steps="5000")
        deadline = time.monotonic() + 30
        while eng.health()["status"] != "busy":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.5)
        asked = time.monotonic()
        eng.proc.send_signal(signal.SIGTERM)
        eng.proc.wait(timeout=20)
        assert time.monotonic() - asked < 8, "the engine finished its work before stopping"
        if work == "render":
            assert_error(answer.result(), 503, "shutting_down")
        else:  # nobody cancelled it: it failed, and says why
            (saved,) = [json.loads(p.read_text()) for p in (tmp_path / "data/jobs").glob("*.json")]
            assert saved["status"] == "failed" and "engine stopped" in saved["error"]
            assert saved["cut_short"]


def test_previews_from_a_tiny_autoencoder_when_one_is_named(tiny_models, tmp_path):
    """LORAMINT_PREVIEW_VAE: a TAESD-style AutoencoderTiny (here a tiny one from its config)
    decodes the previews; one that can't be loaded falls back to the linear preview."""
    from diffusers import AutoencoderTiny

    taesd = AutoencoderTiny(
        encoder_block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        num_encoder_blocks=(1, 1, 1, 1),
        num_decoder_blocks=(1, 1, 1, 1),
    )
    taesd.save_pretrained(tmp_path / "taesd", safe_serialization=True)
    sides = {}
    for where, used in ((tmp_path / "taesd", True), (tmp_path / "missing", False)):
        eng = EngineProcess(
            str(tiny_models["sd"].folder),
            tmp_path / f"data-{used}",
            tmp_path / f"e-{used}.log",
            LORAMINT_PREVIEW_VAE=str(where),
        ).start()
        try:
            with eng.client() as c:
                started = start(c, prompt="x", steps=3, guidance_scale=3.0, seed=1)
                events = sse_events(c, started["status_url"] + "/events")
            previews = [decode_data_url(d["preview"]) for _, d in events if d["preview"]]
            assert len(previews) >= 2
            assert ("could not be loaded" in eng.log_path.read_text()) is not used
            sides[used] = previews[-1].shape[0]
        finally:
            eng.stop()
    # The autoencoder decodes the latents to pixels (this one 8x up, shrunk to 256 px); the
    # linear map gives one pixel per latent (the browser scales it up).
    assert sides[True] == 256 and sides[False] < 256


def test_previews_show_the_predicted_picture_laid_out_as_the_batch(demo):
    """The demo model at its 10 steps: the preview of step 3 is already near the last one (it
    shows the step's predicted clean image; the noisy latents were 67 levels off there, x0
    12), and four images preview as a 2 x 2 grid, not a strip."""
    with demo.client() as c:
        body = {"prompt": "a red circle on a white background", "seed": 4, "num_images": 4}
        events = sse_events(c, start(c, **body)["status_url"] + "/events")
    running = {
        d["step"]: decode_data_url(d["preview"])
        for n, d in events
        if n == "running" and d["preview"]
    }
    last = running[max(running)]
    assert last.shape[0] == last.shape[1]  # 2 x 2
    early = min(step for step in running if step >= 3)
    assert early <= 5 and np.abs(running[early] - last).mean() < 30, early
