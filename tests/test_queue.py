"""Celery mode end to end: a real redis-server, two real engine workers on a tiny model, and
the engine's API as a dispatcher in front of them, all over HTTP. The workers and the
dispatcher share one data dir, as they would share a mounted disk; the last test shares an Azure
container (Azurite) instead."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
import uuid

import numpy as np
import pytest
from PIL import Image

from engine.demo_model.acceptance import CAPTIONS, TRIGGER, star_images
from engine.masks import mask_sha256
from tests.engine_process import QUEUE_SECRET, OrchestratorProcess, QueueCluster
from tests.helpers import (
    ALICE,
    decode_data_url,
    encoded,
    generate,
    pixels,
    png_bytes,
    start_training,
    wait_job,
)

pytestmark = pytest.mark.slow  # starts and kills a dozen processes: ~5 minutes

# Long enough on the tiny model (~5 s) to be caught running: a worker's card is refreshed every
# 3 s, and 60 steps once finished in 2 s, unseen.
SLOW = {"steps": 150, "num_images": 4}


@pytest.fixture(scope="module")
def cluster(tiny_models, redis_server, tmp_path_factory):
    model, work = str(tiny_models["sd"].folder), tmp_path_factory.mktemp("q")
    # Short, so that a killed worker's task comes back within the test's patience.
    c = QueueCluster(model, redis_server.url, work, LORAMINT_QUEUE__VISIBILITYSECONDS="5")
    yield c
    c.stop()


def test_health_lists_both_workers_with_their_model(cluster):
    h = cluster.dispatcher.health()
    assert h["status"] == "ready" and h["queue"] == "celery"
    cards = {c["name"]: c for c in h["workers"]}
    assert {"w1", "w2"} <= set(cards)
    assert all(c["model"] == cluster.model and c["device"] == "cpu" for c in cards.values())
    # Presets follow the workers' model: the dispatcher has none of its own.
    with cluster.dispatcher.client() as c:
        presets = c.get("/presets", params=ALICE)
    assert presets.status_code == 200 and presets.json()["group"] == "small", presets.text


def test_a_batch_of_generations_is_shared_by_both_workers(cluster):
    before = {n: w.succeeded("loramint.generate") for n, w in cluster.workers.items()}
    answers: list[dict] = []

    def one(seed: int) -> None:
        with cluster.dispatcher.client() as c:
            answers.append(generate(c, seed=seed, steps=20))

    threads = [threading.Thread(target=one, args=(s,)) for s in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(a["images"][0]["seed"] for a in answers) == list(range(8))
    done = {n: w.succeeded("loramint.generate") - before[n] for n, w in cluster.workers.items()}
    assert sum(done.values()) == 8 and all(v >= 1 for v in done.values()), done
    with cluster.dispatcher.client() as c:  # every image is served from the shared store
        for a in answers:
            p = a["parameters"]
            assert pixels(c, a["images"][0]).shape == (p["height"], p["width"], 3)


def test_bad_requests_come_back_as_the_same_4xx(cluster):
    with cluster.dispatcher.client() as c:
        r = c.post("/generate", params=ALICE, json={"prompt": "x", "width": 512, "height": 512})
        assert r.status_code == 422 and r.json()["error"]["code"] == "size_too_large"
        r = c.post("/generate", params=ALICE, json={"prompt": "x", "loras": [{"file": "no"}]})
        assert r.status_code == 404 and "not found" in r.json()["error"]["message"]
        files = [("images", ("a.png", png_bytes((1, 2, 3)), "image/png"))]
        form = {"name": "x", "captions": ["one", "two"]}
        r = c.post("/train-lora", params=ALICE, files=files, data=form)
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_captions"
        assert c.get("/jobs/0123456789abcdef", params=ALICE).status_code == 404


def test_images_from_images_run_on_the_workers_from_the_shared_store(cluster):
    """A gallery image uploaded through the dispatcher is read by whichever worker takes the
    work: inpainting answered at once, and img2img with the hires pass as a job."""
    from PIL import Image, ImageFilter

    from tests.test_image_modes import data_url, noise_picture

    picture = noise_picture((64, 64), seed=5)
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (0, 0, 32, 64))
    with cluster.dispatcher.client() as c:
        r = c.post("/images", params=ALICE, files={"image": ("p.png", encoded(picture))})
        assert r.status_code == 201, r.text
        file = r.json()["file"]
        body = generate(c, seed=1, init_image=file, mask=data_url(mask), mask_crop=True)
        out = pixels(c, body["images"][0])
        outside = np.asarray(mask.filter(ImageFilter.GaussianBlur(4))) == 0
        assert np.abs(out - np.asarray(picture, np.int16))[outside].max() == 0
        ask = {"prompt": "a fox", "steps": 4, "init_image": file, "strength": 0.5, "upscale": 2}
        r = c.post("/generate", params={**ALICE, "async": "true"}, json=ask)
        assert r.status_code == 202, r.text
        job = wait_job(c, r.json()["job_id"])
        assert job["status"] == "succeeded" and job["total_steps"] == 3, job
        assert pixels(c, job["result"]["images"][0]).shape == (128, 128, 3)
        r = c.post("/generate", params={"user_id": "bob"}, json={**ask, "steps": 2})
        assert r.status_code == 404  # alice's image is not bob's


def test_a_task_put_straight_into_redis_is_refused(cluster):
    """Sent to Redis by anyone but the dispatcher, `loramint.generate` once wrote an image into
    alice's folder: unsigned, wrongly signed and altered tasks are refused and logged."""
    from engine.contract.settings import QueueSettings
    from engine.queue.celery_app import GENERATE, make_celery
    from engine.queue.signing import sign

    url = cluster.env["LORAMINT_QUEUE__BROKERURL"]
    sender = make_celery(QueueSettings(Mode="celery", BrokerUrl=url))
    body = {"prompt": "forged", "steps": 2, "seed": 777001}
    for_bob = sign(QUEUE_SECRET, GENERATE, "t-altered", ["bob", body])
    for args, kwargs, task_id in (
        (["alice", body], {}, "t-unsigned"),
        (["alice", body], {"signature": "0" * 64}, "t-wrong"),
        (["alice", body], {"signature": for_bob}, "t-altered"),  # signed for bob
    ):
        sender.send_task(GENERATE, args=args, kwargs=kwargs, task_id=task_id)
    deadline = time.monotonic() + 60
    refused = lambda: sum(w.log().count("refused task") for w in cluster.workers.values())  # noqa: E731
    while refused() < 3:
        assert time.monotonic() < deadline, "the forged tasks were not refused"
        time.sleep(0.2)
    assert not list((cluster.work / "data" / "outputs").glob("*/*-777001.png"))


def test_a_lora_trained_on_one_worker_is_used_on_the_other(cluster):
    with cluster.dispatcher.client() as c:
        plain = pixels(c, generate(c, seed=5)["images"][0])
        learn = {"steps": "40", "learning_rate": "0.01", "rank": "16", "sample_every": "0"}
        upload = png_bytes((250, 20, 20), fmt="JPEG")  # the dispatcher keeps a PNG copy
        # Masked: the mask is kept with the image, in the shared store, for the worker.
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, (8, 8, 56, 56))
        job = start_training(
            c,
            [upload],
            masks=[encoded(mask)],
            name="red",
            preset="character",
            adapter="dora",  # loaded as an adapter on the other worker, not fused
            prior_preservation="false",
            **learn,
        )
        assert wait_job(c, job["job_id"])["status"] == "succeeded"
        # What the user uploaded, not the dispatcher's PNG copy of it, is what the LoRA records.
        meta = c.get("/loras", params=ALICE).json()["loras"]
        red = next(lo for lo in meta if lo["file"] == "red.safetensors")["metadata"]
        uploaded = hashlib.sha256(upload).hexdigest()
        assert json.loads(red["loramint.image_sha256"]) == [uploaded]
        assert json.loads(red["loramint.mask_sha256"]) == [mask_sha256(mask)]
        assert red["loramint.preset"] == "character" and red["loramint.adapter"] == "dora"
        # Subject masks are a worker's task: its model's absence comes back as the same 503.
        r = c.post("/subject-masks", params=ALICE, files=[("images", ("a.png", upload))])
        assert r.status_code == 503 and r.json()["error"]["code"] == "masker_unavailable"
        # So are captions: Florence-2, then BLIP, neither on this machine, tried on the worker.
        r = c.post("/caption", params=ALICE, files=[("images", ("a.png", upload))])
        assert r.status_code == 503 and "Florence-2" in r.json()["error"]["message"], r.text
        started = f"training job {job['job_id']}: started"
        trainer = next(w for w in cluster.workers.values() if started in w.log())
        trainer.stop()  # only the other worker is left to use it
        del cluster.workers[trainer.name]
        styled = generate(c, seed=5, loras=[{"file": "red.safetensors", "strength": 1.0}])
        assert np.abs(pixels(c, styled["images"][0]).astype(int) - plain).mean() > 1
    cluster.add_worker()


def test_a_worker_killed_mid_generation_leaves_the_request_to_the_other(cluster):
    answer: dict = {}

    def ask() -> None:
        with cluster.dispatcher.client(timeout=180) as c:
            answer["r"] = c.post("/generate", params=ALICE, json={"prompt": "a fox", **SLOW})

    t = threading.Thread(target=ask)
    t.start()
    victim = cluster.running("generate")
    os.kill(cluster.workers[victim["name"]].proc.pid, signal.SIGKILL)
    t.join(180)
    assert answer["r"].status_code == 200, answer["r"].text
    assert len(answer["r"].json()["images"]) == 4
    del cluster.workers[victim["name"]]
    cluster.add_worker()


def test_a_worker_stopped_mid_training_hands_the_job_to_the_other(cluster):
    with cluster.dispatcher.client() as c:
        job = start_training(
            c, [png_bytes((250, 250, 20))], name="yellow", steps="300", sample_every="0"
        )
        running = wait_job(c, job["job_id"], until=lambda j: j["step"] > 0)
        assert running["status"] == "running"
        card = cluster.running("train yellow.safetensors")
        cluster.workers.pop(card["name"]).stop()  # SIGTERM: a warm shutdown
        done = wait_job(c, job["job_id"])
        assert done["status"] == "succeeded", done
        assert "yellow.safetensors" in [
            lo["file"] for lo in c.get("/loras", params=ALICE).json()["loras"]
        ]
    cluster.add_worker()


def test_a_cancelled_training_resumes_and_its_checkpoint_is_saved_on_any_worker(cluster):
    form = {"steps": "400", "sample_every": "0", "checkpoint_every": "10", "seed": "2"}
    with cluster.dispatcher.client() as c:
        job = start_training(c, [png_bytes((250, 20, 20))], name="again", **form)
        wait_job(c, job["job_id"], until=lambda j: len(j["checkpoints"]) >= 1)
        c.post(f"/jobs/{job['job_id']}/cancel", params=ALICE)
        cancelled = wait_job(c, job["job_id"])
        assert cancelled["status"] == "cancelled"
        step = cancelled["checkpoints"][-1]["step"]
        r = c.post(f"/jobs/{job['job_id']}/resume", params=ALICE)
        assert r.status_code == 202, r.text
        done = wait_job(c, r.json()["job_id"], timeout=600)
        assert done["status"] == "succeeded", done["error"]
        assert done["resumed_from"]["step"] == step and done["step"] == 400
        # No judge model here (offline): the card says so, the checkpoints are there.
        assert "could not be loaded" in done["report"]["unavailable"]
        saved = c.post(
            f"/jobs/{job['job_id']}/checkpoints/{step}/save", params=ALICE, json={"name": "a10"}
        )
        assert saved.status_code == 201, saved.text
        assert generate(c, loras=[{"file": "a10.safetensors"}])["images"]


def test_jobs_are_followed_and_cancelled_through_redis(cluster):
    with cluster.dispatcher.client() as c:
        r = c.post("/generate", params={**ALICE, "async": "true"}, json={"prompt": "x", **SLOW})
        assert r.status_code == 202
        job_id = r.json()["job_id"]
        with c.stream("GET", f"/jobs/{job_id}/events", params=ALICE) as events:
            for line in events.iter_lines():
                if line.startswith("data:") and '"status":"running"' in line:
                    break
        assert c.post(f"/jobs/{job_id}/cancel", params=ALICE).status_code == 200
        done = wait_job(c, job_id)
        assert done["status"] == "cancelled" and done["step"] < SLOW["steps"]
        # Another user's view: no such job.
        assert c.get(f"/jobs/{job_id}", params={"user_id": "bob"}).status_code == 404


def test_a_job_outlives_a_redis_restart_without_running_twice(cluster, redis_server):
    with cluster.dispatcher.client() as c:
        job = start_training(
            c,
            [png_bytes((20, 20, 250))],
            name="blue",
            steps="200",
            sample_every="0",
            prior_preservation="false",
        )
        running = wait_job(c, job["job_id"], until=lambda j: j["status"] == "running")
        assert running["status"] == "running"
        for _ in range(3):  # each restart under a running task risks kombu's give-up (below)
            redis_server.restart()
            time.sleep(1)
        done = wait_job(c, job["job_id"])
        assert done["status"] == "succeeded", done
        jobs = [j for j in c.get("/jobs", params=ALICE).json()["jobs"] if j["id"] == done["id"]]
        assert len(jobs) == 1
    runs = sum(
        w.log().count(f"training job {done['id']}: started") for w in cluster.workers.values()
    )
    assert runs == 1
    # kombu's Redis transport gives up under a running task on about one Redis restart in two
    # ("Unrecoverable error"): the workers take tasks again, their models still loaded.
    for _ in range(10):
        assert all(w.proc.poll() is None for w in cluster.workers.values()), "a worker died"
        time.sleep(0.5)
    names = set(cluster.workers)
    cluster.dispatcher.wait(lambda h: {c["name"] for c in h["workers"]} == names, 30)


def test_the_app_in_celery_mode_keeps_its_jobs_across_a_restart(cluster, tmp_path):
    env = {**cluster.env, "LORAMINT_QUEUE__MODE": "celery"}
    env["LORAMINT_STORAGE__DATADIR"] = str(cluster.work / "data")
    app = OrchestratorProcess(cluster.model, tmp_path, **env).start_ready()
    try:
        with app.client() as c:
            job = start_training(
                c, [png_bytes((20, 250, 20))], {}, name="green", steps="200", sample_every="0"
            )
            job_id = job["job_id"]
            running = wait_job(c, job_id, params={}, until=lambda j: j["status"] == "running")
            assert running["status"] == "running"
        app.stop()
        time.sleep(1)
        app.start_ready()
        with app.client() as c:
            assert wait_job(c, job_id, params={})["status"] == "succeeded"
            assert "green.safetensors" in [lo["file"] for lo in c.get("/loras").json()["loras"]]
    finally:
        app.stop()


def test_workers_on_azure_storage_share_loras_through_the_container(
    tiny_models, redis_server, azurite, tmp_path
):
    """As on machines with no shared disk: the training's files, the LoRA and the images go
    through the blob container, and nobody's files land in the data dir."""
    from azure.storage.blob import ContainerClient

    container = f"q{uuid.uuid4().hex[:12]}"
    storage = {
        "LORAMINT_STORAGE__BACKEND": "azure",
        "LORAMINT_STORAGE__AZURE__CONNECTIONSTRING": azurite,
        "LORAMINT_STORAGE__AZURE__CONTAINER": container,
    }
    # Its own Redis database: the module's workers (on local storage) must not take its tasks.
    url = redis_server.url.removesuffix("/0") + "/1"
    c = QueueCluster(str(tiny_models["sd"].folder), url, tmp_path, 1, **storage)
    try:
        with c.dispatcher.client() as client:
            job = start_training(client, [png_bytes((20, 20, 250))], name="az", steps="4")
            assert wait_job(client, job["job_id"])["status"] == "succeeded"
            image = generate(client, loras=[{"file": "az.safetensors"}])["images"][0]
            assert client.get(image["url"]).status_code == 200
    finally:
        c.stop()
    blobs = {
        b.name for b in ContainerClient.from_connection_string(azurite, container).list_blobs()
    }
    assert {"loras/alice/az.safetensors", f"outputs/alice/{image['file']}"} <= blobs
    # The training's images, checkpoints and state: in the container, for any worker.
    assert {f"jobs/alice/{job['job_id']}-state.safetensors"} <= blobs
    assert any(name.startswith("jobs/alice/img-") for name in blobs)
    assert not (tmp_path / "data" / "loras").exists()
    assert not (tmp_path / "data" / "outputs").exists()


def test_the_report_card_is_judged_and_its_grid_drawn_on_demand_by_workers(redis_server, tmp_path):
    """On the demo model, whose reader judges for real: the card comes from the worker that
    trained, and a grid picture asked for later is drawn by a worker (the dispatcher has no
    model) and kept in the job in Redis."""
    url = redis_server.url.removesuffix("/0") + "/2"  # its own database, as above
    c = QueueCluster("builtin:demo", url, tmp_path, 1)
    try:
        with c.dispatcher.client() as client:
            form = {"trigger_word": TRIGGER, "captions": list(CAPTIONS), "sample_every": "20"}
            images = [encoded(im) for im in star_images()]
            job = start_training(client, images, name="stars", steps="40", **form)
            done = wait_job(client, job["job_id"], timeout=600)
            assert done["status"] == "succeeded", done["error"]
            assert done["report"]["verdict"] and done["report"]["grid_seed"] is not None
            assert set(done["checkpoints"][0]["grid"]) == {"1"}
            url = f"/jobs/{job['job_id']}/checkpoints/20/draw"
            r = client.post(url, params=ALICE, json={"strength": 0.6})
            assert r.status_code == 200, r.text
            again = client.get(f"/jobs/{job['job_id']}", params=ALICE).json()
            assert again["checkpoints"][0]["grid"]["0.6"] == r.json()["picture"]
            assert decode_data_url(r.json()["picture"]).shape == (64, 64, 3)
    finally:
        c.stop()


def test_without_redis_the_dispatcher_says_so_at_once(tiny_models, tmp_path):
    from tests.engine_process import EngineProcess, free_port

    nobody = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    eng = EngineProcess(
        str(tiny_models["sd"].folder), tmp_path / "data", tmp_path / "d.log",
        LORAMINT_QUEUE__MODE="celery", LORAMINT_QUEUE__BROKERURL=nobody,
        LORAMINT_QUEUE__SECRET=QUEUE_SECRET,
    ).start(wait_for="waiting")  # fmt: skip
    try:
        assert "can't be reached" in eng.health()["reason"]
        with eng.client() as c:
            for method, path, body in (
                ("GET", "/jobs", None),
                ("POST", "/generate", {"prompt": "x"}),
            ):
                started = time.monotonic()
                r = c.request(method, path, params=ALICE, json=body)
                assert time.monotonic() - started < 10
                assert r.status_code == 503 and r.json()["error"]["code"] == "queue_unavailable"
                assert "LORAMINT_QUEUE__BROKERURL" in r.json()["error"]["message"]
    finally:
        eng.stop()
