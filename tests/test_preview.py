"""Preview mode (LORAMINT_MODE=preview), the public-demo deployment: generation only, images
inline, nothing stored; every other route refused with 403 preview_mode."""

from __future__ import annotations

import base64

import pytest

from tests.engine_process import EngineProcess
from tests.helpers import assert_error, is_png, png_bytes

REFUSED = [
    ("GET", "/loras"),
    ("GET", "/loras/x.safetensors"),
    ("DELETE", "/loras/x.safetensors"),
    ("PATCH", "/loras/x.safetensors"),
    ("GET", "/images"),
    ("GET", "/images/x.png"),
    ("DELETE", "/images/x.png"),
    ("GET", "/usage"),
    ("GET", "/jobs"),
    ("GET", "/jobs/abc"),
    ("GET", "/jobs/abc/events"),
    ("POST", "/jobs/abc/cancel"),
]


@pytest.fixture(scope="module")
def preview_engine(tiny_models, tmp_path_factory):
    work = tmp_path_factory.mktemp("preview")
    proc = EngineProcess(
        str(tiny_models["sd"].folder), work / "data", work / "engine.log", LORAMINT_MODE="preview"
    ).start()
    yield proc
    proc.stop()


def test_preview_engine_generates_inline_and_stores_nothing(preview_engine):
    with preview_engine.client() as c:
        r = c.post("/generate", json={"prompt": "a cat", "steps": 2, "num_images": 2, "seed": 5})
        assert r.status_code == 200, r.text
        images = r.json()["images"]
        assert [i["seed"] for i in images] == [5, 6]
        for image in images:
            head, data = image["url"].split(",", 1)
            assert head == "data:image/png;base64"
            png = base64.b64decode(data)
            assert is_png(png) and b"parameters" in png  # A1111 text kept in the file
        async_r = c.post("/generate?async=true", json={"prompt": "a cat", "steps": 2})
        assert_error(async_r, 403, "preview_mode")
    data_dir = preview_engine.data_dir
    written = [p for p in data_dir.rglob("*") if p.is_file()] if data_dir.exists() else []
    assert written == []


@pytest.mark.parametrize("method, path", REFUSED)
def test_preview_engine_refuses_everything_but_generation(preview_engine, method, path):
    with preview_engine.client() as c:
        body = assert_error(c.request(method, path), 403, "preview_mode")
    assert "preview" in body["message"]


def test_preview_engine_refuses_uploads_before_reading_them(preview_engine):
    with preview_engine.client() as c:
        files = {"file": ("a.safetensors", b"x" * 1000)}
        assert_error(c.post("/loras", files=files), 403, "preview_mode")
        images = [("images", ("a.png", png_bytes((200, 40, 40)), "image/png"))]
        assert_error(c.post("/train-lora", files=images, data={"name": "x"}), 403, "preview_mode")
        assert_error(c.post("/caption", files=images), 403, "preview_mode")
