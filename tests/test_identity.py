"""One identity channel: through the orchestrator nobody reaches another user's files or jobs,
whatever user id they put in the query, a JSON body or a form field.

Alice's LoRA, image and running training job are made on the engine directly (its `user_id`
query is the channel the orchestrator uses); then every public route is tried as the
orchestrator's user, carol, naming alice every way a client can. The files on disk and alice's
job are checked afterwards, not only the answers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.engine_process import OrchestratorProcess
from tests.helpers import FAST, assert_error, png_bytes, start_training, wait_job

ALICE = {"user_id": "alice"}
SECRET = "secret.safetensors"


@pytest.fixture(scope="module")
def app(tiny_models, tmp_path_factory):
    proc = OrchestratorProcess(
        str(tiny_models["sd"].folder),
        tmp_path_factory.mktemp("identity"),
        LORAMINT_DEFAULTUSER="carol",
    )
    proc.start_ready()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def alice(app, tiny_models):
    """Alice's things, made on the engine itself: a LoRA, an image and a running job."""
    with app.engine_client() as engine:
        lora = tiny_models["sd"].loras["style_a"]
        r = engine.post("/loras", params=ALICE, files={"file": (SECRET, lora.read_bytes())})
        assert r.status_code == 201, r.text
        r = engine.post("/generate", params=ALICE, json={"prompt": "alice's", **FAST})
        assert r.status_code == 200, r.text
        image = r.json()["images"][0]["file"]
        job = start_training(
            engine,
            [png_bytes((200, 0, 0))],
            name="alice_job",
            steps="5000",
            prior_preservation="false",  # straight into the steps, where generations interleave
        )
        wait_job(engine, job["job_id"], until=lambda j: j["step"] >= 1)
        yield {"image": image, "job": job["job_id"], "engine": engine}
        engine.post(f"/jobs/{job['job_id']}/cancel", params=ALICE)


def snapshot(data_dir: Path) -> dict[str, str]:
    """Every file of alice's, by content."""
    return {
        str(p.relative_to(data_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for kind in ("loras", "outputs")
        for p in sorted((data_dir / kind / "alice").glob("*"))
    }


def lora_form(**fields: str) -> dict:
    return {"files": {"file": (SECRET, b"not even a LoRA")}, "data": {"name": SECRET, **fields}}


def train_form(**fields: str) -> dict:
    files = [("images", ("a.png", png_bytes((0, 0, 200)), "image/png"))]
    return {"files": files, "data": {"name": "secret", "overwrite": "true", **fields}}


def image_form(**fields: str) -> dict:
    return {"files": {"image": ("a.png", png_bytes((0, 200, 0)), "image/png")}, "data": fields}


def attempts(alice: dict) -> list[tuple[str, str, dict, int, str]]:
    """(method, url, request kwargs, status, code) for every route, naming alice in the query,
    a JSON body and a form; the expected answer refuses or acts as carol."""
    img, job = alice["image"], alice["job"]
    body, form = {"json": ALICE}, {"data": ALICE}
    no_body = (422, "unexpected_body")
    refused = (403, "forbidden")
    use_secret = {"prompt": "x", **FAST, "loras": [{"file": SECRET}]}
    cases = [
        ("POST", "/generate", {"params": ALICE, "json": use_secret}, *refused),
        ("POST", "/generate", {"json": {**use_secret, **ALICE}}, 422, "invalid_request"),
        ("POST", "/generate", {"data": {"prompt": "x", **ALICE}}, 415, "unsupported_media_type"),
        ("POST", "/generate", {"json": use_secret}, 404, "not_found"),  # carol has no secret
        ("POST", "/train-lora", {"params": ALICE, **train_form()}, *refused),
        ("POST", "/train-lora", train_form(**ALICE), 422, "invalid_request"),
        ("POST", "/train-lora", {"json": {"name": "secret", **ALICE}}, 422, "invalid_request"),
        ("POST", "/loras", {"params": ALICE, **lora_form(overwrite="true")}, *refused),
        ("POST", "/loras", lora_form(overwrite="true", **ALICE), 422, "invalid_request"),
        ("POST", "/loras", {"json": {"name": SECRET, **ALICE}}, 422, "invalid_request"),
        ("POST", "/images", {"params": ALICE, **image_form()}, *refused),
        ("POST", "/images", image_form(**ALICE), 422, "invalid_request"),
    ]
    for listing in ("/loras", "/images", "/jobs"):
        cases += [
            ("GET", listing, {"params": ALICE}, *refused),
            ("GET", listing, body, *no_body),
            ("GET", listing, form, *no_body),
        ]
    for kind, name in (("loras", SECRET), ("images", img)):
        for method in ("GET", "DELETE"):
            url = f"/{kind}/{name}"
            cases += [
                (method, url, {"params": ALICE}, *refused),
                (method, url, body, *no_body),
                (method, url, form, *no_body),
                (method, url, {}, 404, "not_found"),
            ]
    for method, url in (
        ("GET", f"/jobs/{job}"),
        ("GET", f"/jobs/{job}/events"),
        ("POST", f"/jobs/{job}/cancel"),
        ("POST", f"/jobs/{job}/resume"),
    ):
        cases += [
            (method, url, {"params": ALICE}, *refused),
            (method, url, body, *no_body),
            (method, url, form, *no_body),
            (method, url, {}, 404, "not_found"),
        ]
    # The checkpoint routes (#28) take a JSON body of their own.
    for url, good in (
        (f"/jobs/{job}/checkpoints/10/save", {"name": "mine"}),
        (f"/jobs/{job}/checkpoints/10/draw", {"strength": 1}),
    ):
        cases += [
            ("POST", url, {"params": ALICE, "json": good}, *refused),
            ("POST", url, {"json": {**good, **ALICE}}, 422, "invalid_request"),
            ("POST", url, {"json": good}, 404, "not_found"),
        ]
    url = f"/loras/{SECRET}/continue"
    cases += [
        ("POST", url, {"params": ALICE, "data": {"steps": "5"}}, *refused),
        ("POST", url, {"data": {"steps": "5", **ALICE}}, 422, "invalid_request"),
        ("POST", url, {"data": {"steps": "5"}}, 404, "not_found"),
    ]
    return cases


def test_nobody_reaches_another_users_files_or_jobs(app, alice):
    before = snapshot(app.data_dir)
    assert SECRET in str(before) and alice["image"] in str(before)
    wrong = []
    with app.client(timeout=60) as c:
        for method, url, kwargs, status, code in attempts(alice):
            r = c.request(method, url, **kwargs)
            ok = r.status_code == status and r.json()["error"]["code"] == code
            if not ok:
                wrong.append(f"{method} {url} {sorted(kwargs)}: {r.status_code} {r.text[:200]}")
        listed_loras = c.get("/loras").json()["loras"]
        listed_images = c.get("/images").json()["images"]
        listed_jobs = c.get("/jobs").json()["jobs"]
    assert not wrong, "\n".join(wrong)
    assert snapshot(app.data_dir) == before, "alice's files changed"
    assert SECRET not in [lo["file"] for lo in listed_loras]
    assert alice["image"] not in [im["file"] for im in listed_images]
    assert listed_jobs == [] and not (app.data_dir / "loras" / "carol" / SECRET).exists()
    engine = alice["engine"]
    jobs = engine.get("/jobs", params=ALICE).json()["jobs"]
    assert [j["id"] for j in jobs] == [alice["job"]], "a job was started for alice"
    assert jobs[0]["status"] == "running", "alice's job was stopped"


def test_carol_still_works_as_herself(app, alice):
    """The refusals above are about the user, not the routes: carol's own calls succeed,
    including the URLs the engine hands out, which carry her own id."""
    with app.client(timeout=60) as c:
        r = c.post("/generate", json={"prompt": "carol's", **FAST})
        assert r.status_code == 200, r.text
        image = r.json()["images"][0]
        assert "user_id=carol" in image["url"]
        assert c.get(image["url"]).status_code == 200
        assert c.delete(image["url"]).status_code == 200
        assert_error(c.get(image["url"]), 404, "not_found")
