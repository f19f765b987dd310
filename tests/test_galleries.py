"""Galleries over the API: images a page at a time with search, editing a LoRA's metadata in
place, and captions for training images."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import time

import numpy as np
from PIL import Image
from safetensors import safe_open

from engine.demo_model.acceptance import star_images
from engine.demo_model.shapes import Scene, draw
from tests.engine_process import EngineProcess
from tests.helpers import ALICE, FAST, assert_error, generate, png_bytes


def tensors_sha(path) -> str:
    """The tensor bytes, everything after the header."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    return hashlib.sha256(data[8 + n :]).hexdigest()


def test_images_come_a_page_at_a_time_newest_first_and_searchable(client, upload_lora):
    user = {"user_id": "pager"}
    lora = upload_lora("style_a", user="pager")
    made = []
    for i in range(5):
        loras = [{"file": lora, "strength": 0.5}] if i == 2 else []
        body = {"prompt": f"picture {i} of a {'cat' if i % 2 else 'dog'}", **FAST, "loras": loras}
        r = client.post("/generate", params=user, json=body)
        made.append(r.json()["images"][0]["file"])
        time.sleep(0.01)
    pages, cursor = [], None
    while True:
        params = {**user, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/images", params=params).json()
        pages.append([im["file"] for im in page["images"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [made[::-1][0:2], made[::-1][2:4], made[::-1][4:]]
    cats = client.get("/images", params={**user, "q": "CAT"}).json()["images"]
    assert [im["file"] for im in cats] == [made[3], made[1]]
    by_lora = client.get("/images", params={**user, "q": lora.removesuffix(".safetensors")})
    assert [im["file"] for im in by_lora.json()["images"]] == [made[2]]
    # A page boundary stays put when an image before it is deleted.
    first = client.get("/images", params={**user, "limit": 2}).json()
    client.delete(f"/images/{made[4]}", params=user)
    rest = client.get("/images", params={**user, "limit": 2, "cursor": first["next_cursor"]})
    assert [im["file"] for im in rest.json()["images"]] == [made[2], made[1]]
    forged = base64.urlsafe_b64encode(b'[1e400, "x"]').decode()  # an overflow, once a 500
    for cursor in ("nonsense", forged):
        assert_error(
            client.get("/images", params={**user, "cursor": cursor}), 422, "invalid_cursor"
        )
    assert_error(client.get("/images", params={**user, "limit": 0}), 422)


def test_an_image_of_your_own_goes_into_your_gallery(client):
    """Checked by content, re-encoded as a PNG without the upload's metadata, listed with
    `source: upload`; bad ones say why and leave nothing."""
    user, other = {"user_id": "uploader"}, {"user_id": "someone"}
    photo = io.BytesIO()
    Image.new("RGB", (48, 40), (200, 60, 30)).save(photo, format="JPEG", quality=95)
    data = photo.getvalue()
    r = client.post("/images", params=user, files={"image": ("holiday.jpg", data, "image/jpeg")})
    assert r.status_code == 201, r.text
    up = r.json()
    assert (up["width"], up["height"]) == (48, 40) and up["file"].endswith(".png")
    listed = client.get("/images", params=user).json()["images"]
    entry = next(im for im in listed if im["file"] == up["file"])
    assert entry["parameters"]["source"] == "upload"
    assert entry["parameters"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert entry["parameters_text"] == ""  # nothing made here: no A1111 parameters
    png = Image.open(io.BytesIO(client.get(up["url"]).content))
    assert png.format == "PNG" and png.size == (48, 40)
    assert np.abs(np.asarray(png, dtype=int) - (200, 60, 30)).max() < 8
    assert client.get(f"/images/{up['file']}", params=other).status_code == 404
    for content, code in ((b"not an image", "invalid_image"), (b"", "empty_image")):
        bad = client.post("/images", params=user, files={"image": ("x.png", content)})
        assert_error(bad, 422, code)
    assert_error(client.post("/images", params=user, data={"x": "1"}), 422)
    after = [im["file"] for im in client.get("/images", params=user).json()["images"]]
    assert after == [up["file"]]


def test_editing_a_lora_rewrites_its_header_and_keeps_its_tensors(client, upload_lora, engine):
    f = upload_lora("style_b", as_name="editable.safetensors")
    path = engine.data_dir / "loras" / "alice" / f
    before = tensors_sha(path)
    patch = {"trigger_word": "sks", "description": "blue style", "preferred_strength": 0.7}
    r = client.patch(f"/loras/{f}", params=ALICE, json=patch)
    assert r.status_code == 200, r.text
    meta = r.json()["metadata"]
    assert meta["loramint.trigger_word"] == "sks" and meta["loramint.description"] == "blue style"
    assert json.loads(meta["loramint.preferred_strength"]) == 0.7
    assert tensors_sha(path) == before
    with safe_open(str(path), framework="numpy") as sf:
        assert sf.metadata()["loramint.trigger_word"] == "sks"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]
    # It still works as a LoRA.
    assert generate(client, loras=[{"file": f, "strength": 0.7}])["images"]
    # Bad edits are 4xx naming the problem; nobody else's file is reachable.
    assert_error(client.patch(f"/loras/{f}", params=ALICE, json={}), 422, "nothing_to_change")
    bad = client.patch(f"/loras/{f}", params=ALICE, json={"preferred_strength": 9})
    assert "preferred_strength" in assert_error(bad, 422)["message"]
    assert_error(client.patch(f"/loras/{f}", params={"user_id": "bob"}, json=patch), 404)
    assert_error(client.patch("/loras/..%2Fx.safetensors", params=ALICE, json=patch), 422)
    sneaky = client.patch(f"/loras/{f}", params=ALICE, json={**patch, "user_id": "bob"})
    assert "user_id" in assert_error(sneaky, 422)["message"]


def test_the_demo_model_captions_colour_and_background(demo):
    images = [
        draw(Scene("yellow", "circle", "white", 32, 32, 18)),
        star_images()[0],
    ]
    files = [("images", (f"{i}.png", _png(im), "image/png")) for i, im in enumerate(images)]
    with demo.client() as c:
        r = c.post("/caption", params=ALICE, files=files, data={"trigger_word": "zxq"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["captions"][0] == "a yellow zxq on a white background"
        assert body["captions"][1].startswith("a ") and "zxq on a" in body["captions"][1]
        assert body["captioner"] == "builtin:demo classifier"
        r = c.post("/caption", params=ALICE, files=[("images", ("x.png", b"nope", "image/png"))])
        assert_error(r, 422, "invalid_image")
        six = [("images", (f"{i}.png", png_bytes((9, 9, 9)), "image/png")) for i in range(6)]
        assert "1 to 5" in assert_error(c.post("/caption", params=ALICE, files=six), 422)["message"]


def test_without_its_captioning_model_caption_says_what_to_do(client, tmp_path):
    files = [("images", ("a.png", png_bytes((200, 10, 10)), "image/png"))]
    r = client.post("/caption", params=ALICE, files=files)
    err = assert_error(r, 503, "captioner_unavailable")
    assert "LORAMINT_CAPTION_MODEL" in err["message"] and "yourself" in err["message"]


def test_helper_models_caption_and_mask_from_their_folders(tiny_models, tmp_path):
    """The captioner is the first of LORAMINT_CAPTION_MODEL and its fallback that loads (here:
    a missing folder, then a Florence-2), the trigger in each caption; a segmentation model's
    subject mask is what it finds that is not background (the tiny model's "cat", not its
    "wall")."""
    from tests.tiny import tiny_florence, tiny_segmenter

    folder = tiny_florence(tmp_path / "florence")
    segmenter = tiny_segmenter(tmp_path / "segformer")
    eng = EngineProcess(
        str(tiny_models["sd"].folder),
        tmp_path / "data",
        tmp_path / "e.log",
        LORAMINT_CAPTION_MODEL=str(tmp_path / "no-such-model"),
        LORAMINT_CAPTION_FALLBACK_MODEL=str(folder),
        LORAMINT_MASK_MODEL=str(segmenter),
    ).start()
    try:
        files = [
            ("images", (f"{i}.png", png_bytes(c), "image/png"))
            for i, c in enumerate([(200, 0, 0), (0, 0, 200)])
        ]
        with eng.client() as c:
            r = c.post("/caption", params=ALICE, files=files, data={"trigger_word": "sks"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["captioner"] == str(folder) and len(body["captions"]) == 2
        assert all("sks" in cap for cap in body["captions"])
        picture = Image.fromarray(np.random.default_rng(0).integers(0, 255, (48, 64, 3), np.uint8))
        with eng.client() as c:
            r = c.post("/subject-masks", params=ALICE, files=[("images", ("p.png", _png(picture)))])
        assert r.status_code == 200, r.text
        assert r.json()["masker"] == str(segmenter)
        mask = np.asarray(Image.open(io.BytesIO(base64.b64decode(r.json()["masks"][0][22:]))))
        from transformers import pipeline

        segments = pipeline("image-segmentation", model=str(segmenter))(picture)
        cat = next(s["mask"] for s in segments if s["label"] == "cat")
        assert mask.shape == (48, 64) and np.array_equal(mask > 127, np.asarray(cat) > 127)
    finally:
        eng.stop()


def _png(image) -> bytes:
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
