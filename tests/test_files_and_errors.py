"""Per-user files over HTTP: listings, downloads, deletes, isolation, and every bad input."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from safetensors.torch import save

from tests.helpers import ALICE, BAD_JSON, FAST, assert_error, generate, render


def test_lora_upload_list_download_delete(client, upload_lora, tiny_models, engine):
    f = upload_lora("style_a", as_name="listing_probe.safetensors")
    listed = client.get("/loras", params={"user_id": "alice"}).json()["loras"]
    entry = next(lo for lo in listed if lo["file"] == f)
    original = tiny_models[engine.family].loras["style_a"].read_bytes()
    assert entry["size"] == len(original) and entry["created"]
    assert entry["metadata"] is not None
    assert client.get(entry["url"]).content == original
    assert client.delete(entry["url"]).status_code == 200
    assert f not in [
        lo["file"] for lo in client.get("/loras", params={"user_id": "alice"}).json()["loras"]
    ]
    assert_error(client.delete(entry["url"]), 404, "not_found")


def test_existing_lora_name_conflicts_unless_overwrite(client, upload_lora):
    f = upload_lora("style_a", as_name="conflict_probe.safetensors")
    r = client.post(
        "/loras", params={"user_id": "alice"}, data={"name": f}, files={"file": (f, b"irrelevant")}
    )
    assert_error(r, 409, "conflict")


@pytest.mark.parametrize(
    ("content", "code"),
    [(b"", "empty_file"), (b"not a safetensors file at all", "invalid_safetensors")],
)
def test_bad_lora_uploads_are_rejected_and_not_saved(client, content, code):
    r = client.post(
        "/loras", params={"user_id": "alice"}, files={"file": ("bad.safetensors", content)}
    )
    assert_error(r, 422, code)
    names = [lo["file"] for lo in client.get("/loras", params={"user_id": "alice"}).json()["loras"]]
    assert "bad.safetensors" not in names


def test_safetensors_without_lora_weights_is_rejected(client, tiny_models, engine):
    weights = tiny_models[engine.family].folder / "vae" / "diffusion_pytorch_model.safetensors"
    r = client.post(
        "/loras",
        params={"user_id": "alice"},
        files={"file": ("vae.safetensors", weights.read_bytes())},
    )
    assert_error(r, 422, "invalid_lora")


def test_broken_lora_file_on_disk_gives_422(client, engine):
    folder = engine.data_dir / "loras" / "alice"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{garbage")
    r = client.post(
        "/generate",
        params=ALICE,
        json={"prompt": "x", **FAST, "loras": [{"file": "broken.safetensors"}]},
    )
    assert_error(r, 422, "invalid_safetensors")


def test_lora_for_another_family_is_refused_and_pipeline_survives(client, tiny_models, engine):
    other = "sdxl" if engine.family == "sd" else "sd"
    path = tiny_models[other].loras["style_a"]
    client.post(
        "/loras",
        params={"user_id": "alice"},
        data={"overwrite": "true"},
        files={"file": ("other_family.safetensors", path.read_bytes())},
    )
    before = render(client, seed=11)
    r = client.post(
        "/generate",
        params=ALICE,
        json={
            "prompt": "a red fox",
            **FAST,
            "seed": 11,
            "loras": [{"file": "other_family.safetensors"}],
        },
    )
    assert_error(r, 422, "incompatible_lora")
    assert np.array_equal(before, render(client, seed=11))


def test_image_download_and_delete(client):
    image = generate(client, seed=3)["images"][0]
    r = client.get(image["url"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert client.delete(image["url"]).status_code == 200
    assert_error(client.get(image["url"]), 404, "not_found")


def test_users_cannot_reach_each_others_files(client, upload_lora):
    f = upload_lora("style_a", user="alice", as_name="private.safetensors")
    image = generate(client, seed=1)["images"][0]
    assert_error(client.get(f"/loras/{f}", params={"user_id": "bob"}), 404)
    assert_error(client.get(f"/images/{image['file']}", params={"user_id": "bob"}), 404)
    assert_error(client.delete(f"/images/{image['file']}", params={"user_id": "bob"}), 404)
    r = client.post(
        "/generate", params={"user_id": "bob"}, json={"prompt": "x", **FAST, "loras": [{"file": f}]}
    )
    assert_error(r, 404, "not_found")
    assert client.get("/images", params={"user_id": "bob"}).json()["images"] == []


@pytest.mark.parametrize(
    "name",
    [
        "../bob/private.safetensors",
        "..",
        "/etc/passwd",
        "..\\..\\x.safetensors",
        "%2e%2e%2fbob%2fprivate.safetensors",
        ".hidden.safetensors",
        "a/../../b.safetensors",
    ],
)
def test_lora_path_escapes_in_generate_are_rejected(client, name):
    r = client.post(
        "/generate", params=ALICE, json={"prompt": "x", **FAST, "loras": [{"file": name}]}
    )
    assert_error(r, 422, "invalid_file_name")


@pytest.mark.parametrize(
    "url",
    [
        "/images/..%2F..%2Fetc%2Fpasswd",
        "/images/%2e%2e",
        "/loras/..%5C..%5Csecret",
        "/images/..%2Fbob%2Fx.png",
        "/loras/%2Fetc%2Fpasswd",
        "/loras/private.safetensors%00.png",
        "/images/" + "x" * 300,
    ],
)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_path_escapes_in_urls_are_refused_by_the_name_check(client, method, url):
    r = client.request(method, url, params=ALICE)
    assert_error(r, 422, "invalid_file_name")


@pytest.mark.parametrize("user", ["../bob", "a/b", "", "x" * 65, "bob%00", "al ice"])
def test_bad_user_ids_are_rejected(client, user):
    r = client.post("/generate", params={"user_id": user}, json={"prompt": "x", **FAST})
    assert_error(r, 422, "invalid_user_id")
    assert_error(client.get("/images", params={"user_id": user}), 422, "invalid_user_id")


def test_symlink_out_of_the_user_folder_is_refused(client, engine, tmp_path):
    secret = tmp_path / "secret.safetensors"
    secret.write_bytes(b"secret")
    folder = engine.data_dir / "loras" / "alice"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "link.safetensors"
    if not link.is_symlink():
        os.symlink(secret, link)
    assert_error(client.get("/loras/link.safetensors", params={"user_id": "alice"}), 422)
    r = client.post(
        "/generate",
        params=ALICE,
        json={"prompt": "x", **FAST, "loras": [{"file": "link.safetensors"}]},
    )
    assert_error(r, 422, "invalid_file_name")
    names = [lo["file"] for lo in client.get("/loras", params={"user_id": "alice"}).json()["loras"]]
    assert "link.safetensors" not in names


def test_a_linked_user_folder_is_refused(client, engine, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stolen.safetensors").write_bytes(b"not yours")
    link = engine.data_dir / "loras" / "mallory"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        os.symlink(elsewhere, link)
    mallory = {"user_id": "mallory"}
    for r in (
        client.get("/loras", params=mallory),
        client.get("/loras/stolen.safetensors", params=mallory),
        client.delete("/loras/stolen.safetensors", params=mallory),
    ):
        assert_error(r, 422, "invalid_user_folder")
    assert (elsewhere / "stolen.safetensors").exists()


@pytest.mark.parametrize(
    ("patch", "code", "word"),
    [
        ({"prompt": ""}, "invalid_request", "prompt"),
        ({"prompt": "   "}, "invalid_request", "prompt"),
        ({"width": 65}, "invalid_request", "multiple of 8"),
        ({"height": 32}, "invalid_request", "height"),
        ({"width": 4096}, "invalid_request", "width"),
        ({"steps": 0}, "invalid_request", "steps"),
        ({"steps": True}, "invalid_request", "steps"),  # once taken as 1
        ({"steps": "3"}, "invalid_request", "steps"),
        ({"guidance_scale": False}, "invalid_request", "guidance_scale"),
        ({"loras": [{"file": "x.safetensors", "strength": True}]}, "invalid_request", "strength"),
        ({"steps": 1000}, "invalid_request", "steps"),
        ({"steps": 121}, "invalid_request", "steps: at most 120 on this server"),
        ({"num_images": 50}, "invalid_request", "num_images"),
        ({"seed": -1}, "invalid_request", "seed"),
        ({"guidance_scale": 100}, "invalid_request", "guidance_scale"),
        ({"loras": [{"file": "x.safetensors", "strength": 3}]}, "invalid_request", "strength"),
        ({"loras": [{"file": "missing.safetensors"}]}, "not_found", "missing.safetensors"),
        ({"colour": "red"}, "invalid_request", "colour"),
        ({"user_id": "alice"}, "invalid_request", "user_id"),
        ({"loras": [{"file": "x.safetensors", "user_id": "bob"}]}, "invalid_request", "user_id"),
    ],
)
def test_bad_generate_requests_name_the_problem(client, patch, code, word):
    body = {"prompt": "a fox", **FAST, **patch}
    r = client.post("/generate", params=ALICE, json=body)
    err = assert_error(r, 404 if code == "not_found" else 422, code)
    assert word in err["message"]


def test_malformed_json_and_missing_prompt(client):
    r = client.post("/generate", content=b"{not json", headers={"content-type": "application/json"})
    assert_error(r, 422, "invalid_request")
    err = assert_error(client.post("/generate", json={}), 422, "invalid_request")
    assert "prompt" in err["message"]


@pytest.mark.parametrize(("raw", "word"), BAD_JSON)
def test_json_bodies_are_parsed_strictly(client, raw, word):
    r = client.post(
        "/generate", params=ALICE, content=raw, headers={"content-type": "application/json"}
    )
    assert word in assert_error(r, 422, "invalid_request")["message"]


def test_user_id_in_a_form_is_refused_and_nothing_is_saved(client, engine, tiny_models):
    lora = tiny_models[engine.family].loras["style_a"].read_bytes()
    r = client.post(
        "/loras",
        params=ALICE,
        data={"user_id": "bob", "name": "form_user.safetensors"},
        files={"file": ("form_user.safetensors", lora)},
    )
    assert "user_id" in assert_error(r, 422, "invalid_request")["message"]
    for user in ("alice", "bob"):
        assert not (engine.data_dir / "loras" / user / "form_user.safetensors").exists()


@pytest.mark.parametrize(
    ("method", "url"),
    [("GET", "/loras"), ("DELETE", "/loras/x.safetensors"), ("POST", "/jobs/abc/cancel")],
)
def test_a_body_on_a_route_that_takes_none_is_refused(client, method, url):
    r = client.request(method, url, params=ALICE, data={"user_id": "bob"})
    assert "takes no request body" in assert_error(r, 422, "unexpected_body")["message"]


def test_kohya_download_of_a_kohya_file_is_the_file_and_garbage_is_a_422(
    client, upload_lora, tiny_models, engine
):
    f = upload_lora("style_a_kohya", as_name="already_kohya.safetensors")
    r = client.get(f"/loras/{f}", params={**ALICE, "format": "kohya"})
    assert r.status_code == 200, r.text
    assert r.content == tiny_models[engine.family].loras["style_a_kohya"].read_bytes()
    odd = save({"my_lora_thing": torch.zeros(2, 2)})
    up = client.post("/loras", params=ALICE, files={"file": ("odd.safetensors", odd)})
    assert up.status_code == 201, up.text
    r = client.get("/loras/odd.safetensors", params={**ALICE, "format": "kohya"})
    assert "kohya" in assert_error(r, 422, "incompatible_lora")["message"]
    # diffusers-looking names on 0-d tensors: its converter fails with a TypeError (was a 500).
    scalars = save({f"unet.down.lora_{ab}.weight": torch.tensor(1.0) for ab in "AB"})
    up = client.post("/loras", params=ALICE, files={"file": ("scalars.safetensors", scalars)})
    assert up.status_code == 201, up.text
    r = client.get("/loras/scalars.safetensors", params={**ALICE, "format": "kohya"})
    assert "kohya" in assert_error(r, 422, "incompatible_lora")["message"]
