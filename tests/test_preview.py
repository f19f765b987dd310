"""Preview mode (LORAMINT_MODE=preview), the public-demo deployment: generation only, images
inline, nothing stored; every other route refused with 403 preview_mode."""

from __future__ import annotations

import base64

import pytest
from playwright.sync_api import expect

from tests.browser import CHROMIUM, shot, watched_page
from tests.engine_process import EngineProcess, OrchestratorProcess
from tests.helpers import assert_error, is_png, png_bytes

REFUSED = [
    ("GET", "/loras"),
    ("GET", "/loras/x.safetensors"),
    ("DELETE", "/loras/x.safetensors"),
    ("PATCH", "/loras/x.safetensors"),
    ("GET", "/images"),
    ("POST", "/images"),
    ("GET", "/images/x.png"),
    ("DELETE", "/images/x.png"),
    ("GET", "/usage"),
    ("GET", "/jobs"),
    ("GET", "/jobs/abc"),
    ("GET", "/jobs/abc/events"),
    ("POST", "/jobs/abc/cancel"),
    ("POST", "/jobs/abc/checkpoints/1/draw"),
]


def _files(folder) -> list:
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


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
    assert _files(preview_engine.data_dir) == []


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


@pytest.fixture(scope="module")
def preview_app(tiny_models, tmp_path_factory):
    proc = OrchestratorProcess(
        str(tiny_models["sd"].folder),
        tmp_path_factory.mktemp("preview-app"),
        LORAMINT_MODE="preview",
        LORAMINT_PREVIEW__GENERATIONSPERMINUTE="3",
        LORAMINT_SERVER__TRUSTFORWARDEDFOR="true",
    )
    proc.start_ready()
    yield proc
    proc.stop()


def test_preview_app_generates_inline_refuses_the_rest_and_keeps_nothing(preview_app):
    visitor = {"x-forwarded-for": "203.0.113.7"}
    with preview_app.client() as c:
        r = c.post("/generate", json={"prompt": "a cat", "steps": 2}, headers=visitor)
        assert r.status_code == 200, r.text
        assert r.json()["images"][0]["url"].startswith("data:image/png;base64,")
        for method, path in REFUSED:
            assert_error(c.request(method, path), 403, "preview_mode")
        form = [("images", ("a.png", png_bytes((200, 40, 40)), "image/png"))]
        assert_error(c.post("/train-lora", files=form, data={"name": "x"}), 403, "preview_mode")
        assert_error(c.post("/generate?async=true", json={"prompt": "a"}), 403, "preview_mode")
        page = c.get("/train-lora")
        assert page.status_code == 403 and "only generates images" in page.text
        home = c.get("/generate")
        assert 'data-mode="preview"' in home.text and 'href="/my-loras"' not in home.text
    assert _files(preview_app.data_dir) == []


def test_preview_app_limits_each_visitor(preview_app):
    with preview_app.client() as c:
        ask = lambda ip: c.post(  # noqa: E731
            "/generate", json={"prompt": "a", "steps": 1}, headers={"x-forwarded-for": ip}
        )
        for _ in range(3):
            assert ask("198.51.100.1").status_code == 200
        r = ask("198.51.100.1")
        assert_error(r, 429, "rate_limited")
        assert 0 < int(r.headers["retry-after"]) <= 60
        # Counted per visitor: by the address the proxy appended last, not the first one
        # (which a visitor can write themselves).
        assert ask("10.0.0.1, 198.51.100.2").status_code == 200
        assert_error(ask("198.51.100.2, 198.51.100.1"), 429, "rate_limited")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_a_visitor_generates_in_the_preview_page(browser, preview_app):
    with watched_page(browser, preview_app.url) as page:
        # A visitor of its own: the API tests above spent some of 127.0.0.1's 3 a minute.
        page.set_extra_http_headers({"x-forwarded-for": "192.0.2.44"})
        page.goto("/generate")
        expect(page.get_by_role("link", name="Train LoRA")).to_have_count(0)
        expect(page.get_by_text("Add a LoRA")).to_be_hidden()
        expect(page.get_by_text("images are not kept")).to_be_visible()
        page.get_by_label("Prompt", exact=True).fill("a red circle")
        page.get_by_role("button", name="Generate").click()
        image = page.get_by_role("img", name="Generated: a red circle (seed", exact=False)
        expect(image).to_be_visible(timeout=60_000)
        assert image.get_attribute("src").startswith("data:image/png;base64,")
        expect(page.get_by_role("button", name="Delete", exact=False)).to_have_count(0)
        # Start from it: the picture goes inline (a preview keeps no files), as does its
        # upscale.
        page.get_by_role("button", name="Start from image seed", exact=False).click()
        expect(page.locator("#source-size")).to_have_text("64×64")
        page.get_by_label("Prompt", exact=True).fill("a blue circle")
        page.get_by_role("button", name="Generate").click()
        second = page.locator("section.batch").first.get_by_role("img", name="Generated: a blue")
        expect(second).to_be_visible(timeout=60_000)
        page.locator("section.batch").first.get_by_role("button", name="Upscale by 2").click()
        upscaled = page.locator("section.batch").first
        expect(upscaled.locator("h2")).to_have_text("×2: a blue circle")
        expect(upscaled.get_by_text("Done in")).to_be_visible(timeout=60_000)
        assert page.locator("#gen-error").is_hidden(), page.locator("#gen-error").inner_text()
        shot(page, "preview-generate")
    assert _files(preview_app.data_dir) == []
