"""Checkpoints, resume, continue and the report card (#28) over HTTP, on an engine running the
built-in demo model (its reader judges the samples for real)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import load_file

from engine.demo_model.acceptance import CAPTIONS, TRIGGER, star_images
from engine.lora_metadata import rewrite_metadata
from tests.engine_process import EngineProcess
from tests.helpers import (
    ALICE,
    assert_error,
    decode_data_url,
    encoded,
    generate,
    start_training,
    wait_job,
)

BOB = {"user_id": "bob"}
QUICK = {"trigger_word": TRIGGER, "captions": list(CAPTIONS), "seed": "5"}


def stars() -> list[bytes]:
    return [encoded(image) for image in star_images()]


def train(client, name: str, **form) -> dict:
    started = start_training(client, stars(), name=name, **{**QUICK, **form})
    return wait_job(client, started["job_id"], timeout=600)


def job_files(engine: EngineProcess) -> set[str]:
    folder = engine.data_dir / "jobs" / "alice"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.fixture(scope="module")
def short(demo):
    """60 steps: too few for the demo model to learn a star. Checkpoints every 20, 2 kept."""
    with demo.client() as c:
        return train(c, "short", steps="60", sample_every="20", keep_checkpoints="2")


def test_checkpoints_are_listed_kept_and_dropped(short, demo):
    assert short["status"] == "succeeded", short["error"]
    points = short["checkpoints"]
    assert [(c["step"], c["kept"]) for c in points] == [(20, False), (40, True), (60, True)]
    files = job_files(demo)
    assert points[0]["file"] not in files  # the oldest was dropped from the store
    assert {points[1]["file"], points[2]["file"], f"{short['id']}-state.safetensors"} <= files
    # Each checkpoint lists the samples drawn at its step.
    for c in points:
        assert {short["samples"][i]["step"] for i in c["samples"]} == {c["step"]}
    with demo.client() as c:
        usage = c.get("/usage", params=ALICE).json()
    assert usage["training_bytes"] > 0 and usage["training"] >= 3


def test_the_report_card_says_undertrained_and_to_continue(short):
    report = short["report"]
    assert report["final"] and report["judge"].startswith("the demo model's reader")
    assert report["verdict"] == "undertrained", report
    assert report["advice"][0]["action"] == "continue" and report["advice"][0]["steps"] >= 100
    # Every checkpoint judged at full strength; the last also at lower strengths.
    assert set(report["scores"]) == {"20", "40", "60"}
    assert set(report["scores"]["60"]) == {"0.6", "0.8", "1"}
    for cell in report["scores"]["60"].values():
        assert all(0 <= cell[k] <= 1 for k in ("learned", "follows_prompts", "keeps_rest"))
    assert short["checkpoints"][-1]["grid"]["1"].startswith("data:image/png;base64,")
    # The card costs a fraction of the run (measured at length in bench/report_card.py).
    assert report["seconds"] < short["result"]["training_seconds"]


def test_a_rate_that_breaks_the_model_is_told_to_go_back_to_the_default(demo):
    """5x the demo's default rate breaks it within 50 steps (engine/demo_model/README.md):
    the card says so, and its advice carries the rate to train again at."""
    with demo.client() as c:
        hot = train(c, "hot", steps="40", sample_every="20", learning_rate="0.0075")
    report = hot["report"]
    assert report["verdict"] == "overtrained", report
    advice = report["advice"][0]
    assert advice["action"] == "retrain" and advice["settings"] == {"learning_rate": 0.0015}
    assert "(0.0075) is too high" in advice["text"]


def test_a_checkpoint_saved_becomes_a_lora_usable_at_once(short, demo):
    job_id = short["id"]
    with demo.client() as c:
        url = f"/jobs/{job_id}/checkpoints/40/save"
        r = c.post(url, params=ALICE, json={"name": "short-40", "strength": 0.7})
        assert r.status_code == 201, r.text
        assert r.json()["file"] == "short-40.safetensors"
        path = demo.data_dir / "loras/alice/short-40.safetensors"
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata()
        assert meta["loramint.step"] == "40" and meta["loramint.preferred_strength"] == "0.7"
        assert meta["loramint.trigger_word"] == TRIGGER and meta["ss_output_name"] == "short-40"
        kept = load_file(demo.data_dir / "jobs/alice" / short["checkpoints"][1]["file"])
        assert load_file(path).keys() == kept.keys()
        job = c.get(f"/jobs/{job_id}", params=ALICE).json()
        assert job["checkpoints"][1]["saved_as"] == "short-40.safetensors"
        made = generate(c, prompt=f"a red {TRIGGER}", loras=[{"file": "short-40", "strength": 0.7}])
        assert made["images"]
        # What can't be saved says why.
        assert_error(c.post(url, params=ALICE, json={"name": "short-40"}), 409)
        dropped = c.post(f"/jobs/{job_id}/checkpoints/20/save", params=ALICE, json={"name": "a"})
        assert_error(dropped, 409, "checkpoint_dropped")
        none = c.post(f"/jobs/{job_id}/checkpoints/30/save", params=ALICE, json={"name": "a"})
        assert "kept: 40, 60" in assert_error(none, 404)["message"]
        assert_error(c.post(url, params=BOB, json={"name": "mine"}), 404)
        assert_error(c.post(url, params=ALICE, json={"name": "../x"}), 422, "invalid_file_name")
        assert_error(c.post(url, params=ALICE, json={"name": "x", "strength": 5}), 422)
        bad_step = c.post(f"/jobs/{job_id}/checkpoints/abc/save", params=ALICE, json={"name": "x"})
        assert_error(bad_step, 422)


def test_the_grid_draws_a_checkpoint_at_another_strength_on_demand(short, demo):
    job_id, last = short["id"], short["checkpoints"][-1]
    url = f"/jobs/{job_id}/checkpoints/{{}}/draw"
    with demo.client() as c:
        r = c.post(url.format(40), params=ALICE, json={"strength": 0.6})
        assert r.status_code == 200, r.text
        drawn = r.json()
        assert (drawn["step"], drawn["strength"]) == (40, "0.6")
        job = c.get(f"/jobs/{job_id}", params=ALICE).json()
        assert job["checkpoints"][1]["grid"]["0.6"] == drawn["picture"]
        assert job["checkpoints"][1]["grid"]["1"] == short["checkpoints"][1]["grid"]["1"]
        # Drawn as the card draws (its prompt, seed, size, steps) with the checkpoint fused in
        # at that strength: next to the card's own picture at 0.8, nearer than to its 0.6.
        near = c.post(url.format(60), params=ALICE, json={"strength": 0.79}).json()["picture"]
        ours, card = decode_data_url(near), decode_data_url(last["grid"]["0.8"])
        assert ours.shape == card.shape
        diffs = [np.abs(ours - decode_data_url(last["grid"][s])).mean() for s in ("0.8", "0.6")]
        assert diffs[0] < min(0.5, diffs[1] / 4), diffs  # measured: 0.05 and 0.72 levels
        # One already drawn comes back as it is, without drawing.
        again = c.post(url.format(60), params=ALICE, json={"strength": 1.0}).json()
        assert again["picture"] == last["grid"]["1"]
        # What can't be drawn says why.
        assert_error(c.post(url.format(20), params=ALICE, json={"strength": 1}), 409)
        assert (
            "kept: 40, 60"
            in assert_error(c.post(url.format(30), params=ALICE, json={"strength": 1}), 404)[
                "message"
            ]
        )
        assert_error(c.post(url.format(40), params=BOB, json={"strength": 0.6}), 404)
        for bad in ({"strength": 0}, {"strength": 3}, {}, {"strength": "x"}):
            assert_error(c.post(url.format(40), params=ALICE, json=bad), 422)
        assert_error(c.post(url.format("x"), params=ALICE, json={"strength": 1}), 422)


def test_a_grid_picture_asked_for_mid_training_comes_between_steps_and_stays(demo):
    form = {"steps": "3000", "sample_every": "0", "checkpoint_every": "10"}
    with demo.client() as c:
        job_id = start_training(c, stars(), name="busy", **{**QUICK, **form})["job_id"]
        try:
            wait_job(c, job_id, until=lambda j: len(j["checkpoints"]) >= 1, timeout=300)
            url = f"/jobs/{job_id}/checkpoints/10/draw"
            r = c.post(url, params=ALICE, json={"strength": 0.5})
            assert r.status_code == 200, r.text
            # The training goes on, and its next checkpoints keep the picture drawn meanwhile.
            job = wait_job(c, job_id, until=lambda j: len(j["checkpoints"]) >= 3, timeout=300)
            assert job["status"] == "running"
            assert job["checkpoints"][0]["grid"]["0.5"] == r.json()["picture"]
        finally:
            c.post(f"/jobs/{job_id}/cancel", params=ALICE)
            wait_job(c, job_id)


def test_continue_goes_on_with_the_kept_state(short, demo):
    with demo.client() as c:
        r = c.post("/loras/short.safetensors/continue", params=ALICE, data={"steps": "20"})
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["job_id"], timeout=600)
        assert job["status"] == "succeeded", job["error"]
        assert job["resumed_from"] == {
            "job_id": short["id"],
            "step": 60,
            "how": "continue",
            "fresh_optimizer": False,
            "lora": None,
        }
        assert job["total_steps"] == 80 and [p["step"] for p in job["checkpoints"]] == [80]
        with safe_open(str(demo.data_dir / "loras/alice/short.safetensors"), "pt") as f:
            assert f.metadata()["loramint.steps"] == "80"
        # A checkpoint saved as a LoRA goes on from its own step, from its weights.
        r = c.post("/loras/short-40/continue", params=ALICE, data={"steps": "10"})
        assert r.status_code == 202, r.text
        more = wait_job(c, r.json()["job_id"], timeout=600)
        assert more["status"] == "succeeded", more["error"]
        assert more["resumed_from"]["step"] == 40 and more["resumed_from"]["fresh_optimizer"]
        assert more["total_steps"] == 50
        assert_error(c.post("/loras/short/continue", params=ALICE, data={"steps": "0"}), 422)
        too_many = c.post("/loras/short/continue", params=ALICE, data={"steps": "4950"})
        assert "at most 4920 more" in assert_error(too_many, 422, "too_many_steps")["message"]
        assert_error(c.post("/loras/nope/continue", params=ALICE, data={"steps": "5"}), 404)
        assert_error(c.post("/loras/short/continue", params=BOB, data={"steps": "5"}), 404)


def test_a_lora_not_trained_here_can_not_be_continued(short, demo, tmp_path):
    """A LoRA made elsewhere (here: ours with the record of its training taken out)."""
    foreign = tmp_path / "foreign.safetensors"
    source = demo.data_dir / "jobs/alice" / short["checkpoints"][-1]["file"]
    rewrite_metadata(source, foreign, {"loramint.job_id": None}, "foreign")
    with demo.client() as c:
        files = {"file": ("x.safetensors", foreign.read_bytes(), "application/octet-stream")}
        assert c.post("/loras", params=ALICE, files=files, data={"name": "imported"}).is_success
        r = c.post("/loras/imported/continue", params=ALICE, data={"steps": "5"})
        assert "not trained here" in assert_error(r, 409, "not_continuable")["message"]


@pytest.mark.slow
def test_a_cancelled_run_resumed_ends_with_the_same_lora(demo):
    form = {"steps": "40", "sample_every": "0", "checkpoint_every": "10"}
    with demo.client() as c:
        whole = train(c, "whole", **form)
        assert whole["status"] == "succeeded"
        started = start_training(c, stars(), name="parted", **{**QUICK, **form})
        wait_job(c, started["job_id"], until=lambda j: j["step"] >= 15)
        c.post(f"/jobs/{started['job_id']}/cancel", params=ALICE)
        cancelled = wait_job(c, started["job_id"])
        assert cancelled["status"] == "cancelled"
        step = cancelled["checkpoints"][-1]["step"]
        assert step < 40
        # What can't be resumed says why.
        assert_error(c.post(f"/jobs/{whole['id']}/resume", params=ALICE), 409, "not_resumable")
        assert_error(c.post(f"/jobs/{started['job_id']}/resume", params=BOB), 404)
        r = c.post(f"/jobs/{started['job_id']}/resume", params=ALICE)
        assert r.status_code == 202, r.text
        resumed = wait_job(c, r.json()["job_id"], timeout=600)
    assert resumed["status"] == "succeeded", resumed["error"]
    assert resumed["resumed_from"]["job_id"] == started["job_id"]
    assert resumed["resumed_from"]["step"] == step
    assert [p["step"] for p in resumed["checkpoints"]] == [s for s in (10, 20, 30, 40)]
    a = load_file(demo.data_dir / "loras/alice/whole.safetensors")
    b = load_file(demo.data_dir / "loras/alice/parted.safetensors")
    assert a.keys() == b.keys()
    for key, tensor in a.items():
        assert (b[key].float() - tensor.float()).abs().max() <= 1e-6, key


KILL_DURING_WRITE = """
import os, signal, sys
from pathlib import Path
from engine.blobs.local import LocalBlobStore
from engine.storage import UserStore
store = UserStore(LocalBlobStore(Path(sys.argv[1])), Path(sys.argv[1]) / ".cache")
with store.writing("jobs", "alice", sys.argv[2]) as tmp:
    with tmp.open("wb") as f:
        f.write(b"half of a checkpoint")
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)
"""


def test_kill_9_during_a_checkpoint_write_keeps_the_last_one(short, demo):
    """The process dies with the new state half written: the old state is what is stored."""
    name = f"{short['id']}-state.safetensors"
    path = demo.data_dir / "jobs/alice" / name
    before = path.read_bytes()
    proc = subprocess.run(
        [sys.executable, "-c", KILL_DURING_WRITE, str(demo.data_dir), name],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert all("half" not in p.name for p in path.parent.iterdir())
    with demo.client() as c:
        r = c.post("/loras/short/continue", params=ALICE, data={"steps": "1"})
        assert wait_job(c, r.json()["job_id"], timeout=600)["status"] == "succeeded"


@pytest.mark.slow
def test_a_run_killed_with_the_engine_resumes_after_a_restart(tmp_path):
    engine = EngineProcess("builtin:demo", tmp_path / "data", tmp_path / "engine.log").start()
    form = {"steps": "200", "sample_every": "0", "checkpoint_every": "10"}
    try:
        with engine.client() as c:
            job_id = start_training(c, stars(), name="crash", **{**QUICK, **form})["job_id"]
            wait_job(c, job_id, until=lambda j: len(j["checkpoints"]) >= 1, timeout=300)
        engine.proc.send_signal(signal.SIGKILL)
        engine.proc.wait(10)
        engine.start()
        with engine.client() as c:
            failed = c.get(f"/jobs/{job_id}", params=ALICE).json()
            assert failed["status"] == "failed" and "restarted" in failed["error"]
            assert failed["cut_short"]
            r = c.post(f"/jobs/{job_id}/resume", params=ALICE)
            assert r.status_code == 202, r.text
            time.sleep(0.1)
            resumed = wait_job(c, r.json()["job_id"], timeout=600)
        assert resumed["status"] == "succeeded", resumed["error"]
        assert resumed["resumed_from"]["step"] == failed["checkpoints"][-1]["step"]
    finally:
        engine.stop()
