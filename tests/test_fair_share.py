"""Sharing one engine fairly: one user can't fill the queue or run several trainings at once,
an optional storage quota, and work whose client left is dropped before it runs."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.engine_process import EngineProcess, OrchestratorProcess
from tests.helpers import FAST, assert_error, png_bytes, start_training, wait_job

SLOW = {"prompt": "busy", "steps": 150, "num_images": 2}  # a few seconds on the tiny model


@pytest.fixture(scope="module")
def shared(tiny_models, tmp_path_factory):
    work = tmp_path_factory.mktemp("shared")
    proc = EngineProcess(
        str(tiny_models["sd"].folder),
        work / "data",
        work / "engine.log",
        LORAMINT_USER_QUEUE_SIZE="1",
        LORAMINT_QUEUE_SIZE="3",
    )
    proc.start()
    yield proc
    proc.stop()


def post_as(engine: EngineProcess, user: str, body: dict, timeout: float = 120) -> httpx.Response:
    with engine.client(timeout=timeout) as c:
        return c.post("/generate", params={"user_id": user}, json=body)


def wait_until(check, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_one_user_cannot_fill_the_queue(shared):
    with ThreadPoolExecutor(3) as pool:
        busy = pool.submit(post_as, shared, "alice", SLOW)
        wait_until(lambda: shared.health()["status"] == "busy")
        queued = pool.submit(post_as, shared, "alice", {"prompt": "next", **FAST})
        wait_until(lambda: shared.health()["queue_depth"] == 1)
        r = post_as(shared, "alice", {"prompt": "one more", **FAST})
        err = assert_error(r, 429, "queue_full")
        assert "LORAMINT_USER_QUEUE_SIZE" in err["message"]
        assert int(r.headers["retry-after"]) >= 1
        others = pool.submit(post_as, shared, "bob", {"prompt": "bob's turn", **FAST})
        assert [f.result().status_code for f in (busy, queued, others)] == [200, 200, 200]


def test_a_request_whose_client_left_is_dropped_before_it_runs(shared):
    with ThreadPoolExecutor(1) as pool:
        busy = pool.submit(post_as, shared, "alice", SLOW)
        wait_until(lambda: shared.health()["status"] == "busy")
        with pytest.raises(httpx.ReadTimeout):  # the client gives up and hangs up
            post_as(shared, "bob", {"prompt": "never mind", **FAST, "seed": 424242}, timeout=1)
        assert busy.result().status_code == 200
    time.sleep(0.5)
    assert not list((shared.data_dir / "outputs" / "bob").glob("*-424242.png"))
    assert "dropped a queued generation" in shared.log_path.read_text()
    assert shared.health()["queue_depth"] == 0


def test_one_training_at_a_time_per_user(shared):
    with shared.client() as c:
        long = {"steps": "5000", "prior_preservation": "false"}
        first = start_training(c, [png_bytes((200, 0, 0))], name="first", **long)
        files = [("images", ("a.png", png_bytes((0, 0, 200)), "image/png"))]
        r = c.post("/train-lora", params={"user_id": "alice"}, files=files, data={"name": "second"})
        err = assert_error(r, 429, "too_many_jobs")
        assert "LORAMINT_USER_TRAINING_JOBS" in err["message"] and r.headers["retry-after"]
        bobs = start_training(
            c, [png_bytes((0, 200, 0))], params={"user_id": "bob"}, name="b", **long
        )
        for job, user in ((first, "alice"), (bobs, "bob")):
            assert (
                c.post(f"/jobs/{job['job_id']}/cancel", params={"user_id": user}).status_code == 200
            )
            wait_job(c, job["job_id"], params={"user_id": user}, timeout=60)


def test_a_storage_quota_refuses_new_files_past_it(tiny_models, tmp_path):
    engine = EngineProcess(
        str(tiny_models["sd"].folder),
        tmp_path / "data",
        tmp_path / "e.log",
        LORAMINT_USER_QUOTA_MB="0.001",  # about 1 KB: one small image passes it
    ).start()
    try:
        with engine.client() as c:
            alice = {"user_id": "alice"}
            image = c.post("/generate", params=alice, json={"prompt": "x", **FAST}).json()
            r = c.post("/generate", params=alice, json={"prompt": "y", **FAST})
            assert "quota" in assert_error(r, 413, "quota_exceeded")["message"]
            lora = tiny_models["sd"].loras["style_a"]
            r = c.post("/loras", params=alice, files={"file": (lora.name, lora.read_bytes())})
            assert_error(r, 413, "quota_exceeded")
            assert not (engine.data_dir / "loras" / "alice").exists() or not list(
                (engine.data_dir / "loras" / "alice").iterdir()
            )
            files = [("images", ("a.png", png_bytes((1, 2, 3)), "image/png"))]
            r = c.post("/train-lora", params=alice, files=files, data={"name": "t"})
            assert_error(r, 413, "quota_exceeded")
            # Other users have their own quota; deleting makes room again.
            bob = c.post("/generate", params={"user_id": "bob"}, json={"prompt": "x", **FAST})
            assert bob.status_code == 200
            assert c.delete(image["images"][0]["url"]).status_code == 200
            assert (
                c.post("/generate", params=alice, json={"prompt": "y", **FAST}).status_code == 200
            )
    finally:
        engine.stop()


def test_through_the_orchestrator_a_client_that_left_frees_its_place(tiny_models, tmp_path):
    app = OrchestratorProcess(str(tiny_models["sd"].folder), tmp_path).start_ready()
    try:
        with ThreadPoolExecutor(1) as pool, app.client() as c:
            busy = pool.submit(c.post, "/generate", json=SLOW)
            wait_until(lambda: app.health()["engine"]["health"]["status"] == "busy")
            with pytest.raises(httpx.ReadTimeout), app.client(timeout=1) as quitter:
                quitter.post("/generate", json={"prompt": "never mind", **FAST, "seed": 434343})
            assert busy.result().status_code == 200
        time.sleep(0.5)
        assert not list((app.data_dir / "outputs" / "local").glob("*-434343.png"))
        assert "dropped a queued generation" in app.log_path.read_text()
    finally:
        app.stop()
