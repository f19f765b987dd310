"""Training uploads are checked by content; a killed engine leaves no partial LoRA."""

from __future__ import annotations

import io
import os
import signal

import pytest
from PIL import Image

from tests.engine_process import EngineProcess
from tests.helpers import ALICE, assert_error, png_bytes, start_training, wait_job

OK = png_bytes((200, 0, 0))


def _post(client, images, **form):
    files = [("images", (f"f{i}", data, "image/png")) for i, data in enumerate(images)]
    params = {"user_id": form.pop("user_id", "alice")}
    return client.post("/train-lora", params=params, files=files, data={"name": "x", **form})


def _bomb() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (12000, 12000)).save(buf, format="PNG")
    return buf.getvalue()


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 255, 0)).save(buf, format="GIF")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("images", "form", "status", "code"),
    [
        ([OK] * 6, {}, 422, "invalid_request"),
        ([b""], {}, 422, "empty_image"),
        ([b"\x89PNG" + b"\0" * (21 * 1024 * 1024)], {}, 422, "image_too_large"),
        ([b"just some text"], {}, 422, "invalid_image"),
        ([_gif()], {}, 422, "invalid_image"),
        ([OK[: len(OK) // 2]], {}, 422, "invalid_image"),
        ([png_bytes((1, 2, 3), (4100, 16))], {}, 422, "image_too_large"),
        ([OK], {"name": "../escape"}, 422, "invalid_file_name"),
        ([OK], {"name": ""}, 422, "invalid_request"),
        ([OK, OK], {"captions": "only one"}, 422, "invalid_captions"),
        ([OK], {"steps": "0"}, 422, "invalid_request"),
        ([OK], {"resolution": "100"}, 422, "invalid_resolution"),
        ([OK], {"learning_rate": "5"}, 422, "invalid_request"),
        ([OK], {"user_id": "../bob"}, 422, "invalid_user_id"),
    ],
)
def test_bad_training_requests_get_4xx(client, images, form, status, code):
    assert_error(_post(client, images, **form), status, code)


def test_decompression_bomb_is_refused(client):
    assert_error(_post(client, [_bomb()]), 422, "image_too_large")


def test_no_images_at_all(client):
    r = client.post("/train-lora", params=ALICE, data={"name": "x"})
    assert_error(r, 422, "invalid_request")


def test_too_many_images_says_how_many(client):
    err = assert_error(_post(client, [OK] * 6), 422, "invalid_request")
    assert "send 1 to 5 images; got 6" in err["message"]


def test_user_id_in_the_training_form_is_refused(client, engine):
    files = [("images", ("a.png", OK, "image/png"))]
    data = {"name": "form_user", "user_id": "bob", "overwrite": "true"}
    r = client.post("/train-lora", params=ALICE, files=files, data=data)
    assert "user_id" in assert_error(r, 422, "invalid_request")["message"]
    for user in ("alice", "bob"):
        jobs = client.get("/jobs", params={"user_id": user}).json()["jobs"]
        assert "form_user" not in [j["params"].get("name") for j in jobs]
        assert not (engine.data_dir / "loras" / user / "form_user.safetensors").exists()


def test_existing_name_conflicts_unless_overwrite(client, upload_lora):
    upload_lora("style_a", as_name="taken.safetensors")
    assert_error(_post(client, [OK], name="taken"), 409, "conflict")


@pytest.mark.slow
def test_killed_engine_leaves_no_partial_file_and_job_reads_failed(tmp_path, tiny_models):
    def engine():
        return EngineProcess(
            str(tiny_models["sd"].folder), tmp_path / "data", tmp_path / "engine.log"
        ).start()

    eng = engine()
    with eng.client() as c:
        job = start_training(c, [OK], name="doomed", steps="5000", prior_preservation="false")
        wait_job(c, job["job_id"], until=lambda j: j["step"] >= 2)
    os.kill(eng.proc.pid, signal.SIGKILL)
    eng.proc.wait()
    folder = tmp_path / "data" / "loras" / "alice"
    assert not list(folder.glob("*.safetensors")) and not list(folder.glob(".tmp-*"))
    eng = engine()
    try:
        with eng.client() as c:
            after = c.get(f"/jobs/{job['job_id']}", params=ALICE).json()
        assert after["status"] == "failed" and after["error"] == "engine restarted"
        assert after["cut_short"]
    finally:
        eng.stop()
