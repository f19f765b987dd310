"""An engine whose LoRAs and images live in Azure Blob Storage (a real Azurite): the whole
file flow over HTTP, per-user isolation, and nothing of anyone's on the engine's own disk."""

from __future__ import annotations

import json
import uuid

import pytest
from azure.storage.blob import ContainerClient

from orchestrator.config import OrchestratorSettings
from tests.engine_process import ROOT, EngineProcess, OrchestratorProcess
from tests.helpers import (
    ALICE,
    FAST,
    assert_error,
    generate,
    is_png,
    png_bytes,
    start_training,
    wait_job,
)

BOB = {"user_id": "bob"}


@pytest.fixture(scope="module")
def azure_engine(tiny_models, azurite, tmp_path_factory):
    work = tmp_path_factory.mktemp("azure-engine")
    container = f"t{uuid.uuid4().hex[:12]}"
    eng = EngineProcess(
        str(tiny_models["sd"].folder),
        work / "data",
        work / "engine.log",
        LORAMINT_STORAGE__BACKEND="azure",
        LORAMINT_STORAGE__AZURE__CONNECTIONSTRING=azurite,
        LORAMINT_STORAGE__AZURE__CONTAINER=container,
    ).start()
    eng.blobs = ContainerClient.from_connection_string(azurite, container)  # type: ignore[attr-defined]
    yield eng
    eng.stop()


def blob_names(eng) -> set[str]:
    return {b.name for b in eng.blobs.list_blobs()}


def test_loras_and_images_live_in_the_container(azure_engine, tiny_models):
    eng, lora = azure_engine, tiny_models["sd"].loras["style_a"]
    with eng.client() as c:
        r = c.post("/loras", params=ALICE, files={"file": ("s.safetensors", lora.read_bytes())})
        assert r.status_code == 201, r.text
        image = generate(c, loras=[{"file": "s.safetensors", "strength": 0.8}])["images"][0]
        assert {"loras/alice/s.safetensors", f"outputs/alice/{image['file']}"} <= blob_names(eng)
        stored = eng.blobs.download_blob(f"outputs/alice/{image['file']}").readall()
        served = c.get(f"/images/{image['file']}", params=ALICE)
        assert served.content == stored and is_png(stored)
        assert int(served.headers["content-length"]) == len(stored)
        assert c.get("/loras/s.safetensors", params=ALICE).content == lora.read_bytes()
        listed = c.get("/images", params=ALICE).json()["images"]
        assert [im["file"] for im in listed] == [image["file"]]
        assert listed[0]["parameters"]["loras"][0]["file"] == "s.safetensors"
        assert c.get("/usage", params=ALICE).json()["loras_bytes"] == lora.stat().st_size
    # The engine's disk holds copies of what it used, never the users' folders.
    assert not (eng.data_dir / "loras").exists() and not (eng.data_dir / "outputs").exists()


def test_an_edited_lora_is_fetched_again_once(azure_engine, tiny_models):
    eng, lora = azure_engine, tiny_models["sd"].loras["style_b"]
    with eng.client() as c:
        c.post("/loras", params=ALICE, files={"file": ("e.safetensors", lora.read_bytes())})
        generate(c, loras=[{"file": "e.safetensors"}])
        before = eng.blobs.get_blob_client("loras/alice/e.safetensors").get_blob_properties()
        r = c.patch("/loras/e.safetensors", params=ALICE, json={"trigger_word": "sks"})
        assert r.status_code == 200 and r.json()["metadata"]["loramint.trigger_word"] == "sks"
        after = eng.blobs.get_blob_client("loras/alice/e.safetensors").get_blob_properties()
        assert after.etag != before.etag
        generate(c, loras=[{"file": "e.safetensors"}])
    copies = list((eng.data_dir / ".cache/blobs/loras/alice/e.safetensors").glob("*.safetensors"))
    assert len(copies) == 1  # the new version; the old copy was dropped


def test_training_saves_into_the_container(azure_engine):
    with azure_engine.client() as c:
        job = start_training(
            c, [png_bytes((200, 0, 0))], name="trained", steps="3", prior_preservation="false"
        )
        assert wait_job(c, job["job_id"])["status"] == "succeeded"
        assert "loras/alice/trained.safetensors" in blob_names(azure_engine)
        names = [lo["file"] for lo in c.get("/loras", params=ALICE).json()["loras"]]
        assert "trained.safetensors" in names
        assert generate(c, loras=[{"file": "trained.safetensors"}])["images"]


def test_users_reach_only_their_own_blobs(azure_engine, tiny_models):
    eng, lora = azure_engine, tiny_models["sd"].loras["style_a"]
    with eng.client() as c:
        c.post("/loras", params=ALICE, files={"file": ("mine.safetensors", lora.read_bytes())})
        image = generate(c)["images"][0]["file"]
        assert c.get("/loras", params=BOB).json()["loras"] == []
        assert c.get("/images", params=BOB).json()["images"] == []
        assert_error(c.get("/loras/mine.safetensors", params=BOB), 404)
        assert_error(c.get(f"/images/{image}", params=BOB), 404)
        assert_error(c.delete(f"/images/{image}", params=BOB), 404)
        r = c.post(
            "/generate",
            params=BOB,
            json={"prompt": "x", **FAST, "loras": [{"file": "mine.safetensors"}]},
        )
        assert_error(r, 404)
        for path in ("/loras/..%2Falice%2Fmine.safetensors", "/images/..%2F..%2Fx.png"):
            assert_error(c.get(path, params=BOB), 422, "invalid_file_name")
        assert c.delete(f"/images/{image}", params=ALICE).status_code == 200
        assert c.delete("/loras/mine.safetensors", params=ALICE).status_code == 200
    assert not {f"outputs/alice/{image}", "loras/alice/mine.safetensors"} & blob_names(eng)


def test_the_app_hands_its_storage_settings_to_its_engine(tiny_models, azurite, tmp_path):
    """Storage set in the app's settings file only: the engine it starts stores in the same
    container, and the browser gets the files through the app, never from a blob URL."""
    container = f"t{uuid.uuid4().hex[:12]}"
    storage = {"Backend": "azure", "Azure": {"ConnectionString": azurite, "Container": container}}
    settings = tmp_path / "appsettings.json"
    engine = {"Path": str(ROOT / "engine")}  # the default is relative to the settings file
    settings.write_text(json.dumps({"Engine": engine, "Storage": storage}))
    app = OrchestratorProcess(
        str(tiny_models["sd"].folder), tmp_path, LORAMINT_SETTINGS=str(settings)
    )
    assert OrchestratorSettings(Settings=str(settings), Storage=storage).requirements.name == (
        "requirements-scale.txt"  # the engine's venv gets the Azure SDK
    )
    app.start_ready()
    try:
        with app.client() as c:
            r = c.post("/generate", json={"prompt": "a red fox", **FAST})
            assert r.status_code == 200, r.text
            image = r.json()["images"][0]
            served = c.get(image["url"])
            assert served.status_code == 200 and is_png(served.content)
        blobs = ContainerClient.from_connection_string(azurite, container)
        stored = blobs.download_blob(f"outputs/local/{image['file']}").readall()
        assert served.content == stored
        assert not (app.data_dir / "outputs").exists()
    finally:
        app.stop()
