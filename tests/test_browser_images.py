"""Images from images in the pages, in headless Chromium on the demo model: a picture dropped
in, a mask painted with the brush (and undone, erased, inverted), outpainting by the side
buttons, Upscale and Use as input on a result, Reuse filling the form in place, and the
gallery's Select mode leading to training from those images. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.demo_model.reading import classify
from engine.demo_model.shapes import Scene, draw
from tests.browser import CHROMIUM, app_fixture, shot, watched_page
from tests.test_images_from_images import side_by_side

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
    pytest.mark.slow,
]


app = app_fixture("builtin:demo", "images-pages")


@pytest.fixture
def page(browser, app):
    with watched_page(browser, app.url, confirm=True) as pg:
        yield pg


def result_pixels(page, batch) -> Image.Image:
    src = batch.locator(".gallery img").first.get_attribute("src")
    data = page.request.get(src).body()
    return Image.open(io.BytesIO(data)).convert("RGB")


def start_from(page, tmp_path, picture: Image.Image) -> None:
    path = tmp_path / "start.png"
    picture.save(path)
    page.goto("/generate")
    page.get_by_text("Start from an image").click()
    page.get_by_label("Drop a picture here, or pick a file (PNG, JPEG or WEBP)").set_input_files(
        str(path)
    )
    page.locator("#source-size").get_by_text(f"{picture.width}×{picture.height}").wait_for()


def paint(page, x0: float, x1: float, rows: int = 9, canvas: str = "#mask-canvas") -> None:
    """Drag the brush across a mask canvas, from x0 to x1 (fractions of its width), over
    `rows` rows spread down its height."""
    box = page.locator(canvas).bounding_box()
    for k in range(rows):
        y = box["y"] + box["height"] * (k + 0.5) / rows
        page.mouse.move(box["x"] + box["width"] * x0, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * x1, y, steps=8)
        page.mouse.up()


def finished(page, n: int):
    """The n-th batch of the visit once it is done, pinned: later batches go above it."""
    batch = page.locator(f"#batches > section.batch:nth-last-child({n})")
    batch.get_by_text("Done in").wait_for(timeout=60_000)
    return batch


def test_the_mask_brush_repaints_only_what_was_painted(page, tmp_path):
    picture = side_by_side()
    start_from(page, tmp_path, picture)
    page.get_by_label("Paint a mask (repaint only there)").check()
    undo = page.get_by_role("button", name="Undo")
    page.locator("#mask-canvas").focus()  # from the keyboard: a stroke, taken back
    page.keyboard.press("Shift+ArrowRight")
    assert page.locator("#brush-cursor").is_visible() and undo.is_enabled()
    page.keyboard.press("Control+z")
    assert undo.is_disabled()
    paint(page, 0.1, 0.3, rows=1)  # a stroke on the circle...
    page.keyboard.press("Control+z")  # ...taken back
    assert undo.is_disabled()  # nothing left to undo
    page.get_by_role("button", name="Eraser").click()
    paint(page, 0.6, 0.9, rows=2)  # erasing nothing changes nothing
    page.get_by_role("button", name="Eraser").click()
    paint(page, 0.0, 0.45)  # the left half, then inverted: the right half is masked
    page.get_by_role("button", name="Invert").click()
    page.get_by_label("Only the masked area, in more detail").check()
    page.get_by_label("Prompt", exact=True).fill("a blue triangle on a white background")
    page.get_by_role("button", name="Generate").click()
    batch = finished(page, 1)
    shot(page, "images-1-mask-brush")
    out = result_pixels(page, batch)
    assert out.size == (128, 64)
    diff = np.abs(np.asarray(out, np.int16) - np.asarray(picture, np.int16)).max(axis=2)
    left = np.zeros((64, 128), bool)
    left[:, :40] = True  # the circle's half, well away from the brush's edge
    assert diff[left].max() <= 2 and diff[:, 80:].mean() > 20
    assert classify(out.crop((64, 0, 128, 64)))[:2] == ("blue", "triangle")


def test_extend_by_the_side_buttons_and_upscale_a_result(page, tmp_path):
    picture = draw(Scene("red", "circle", "white", 32, 32, 18))
    start_from(page, tmp_path, picture)
    page.get_by_role("button", name="Extend right by 32 px").click()
    assert page.get_by_label("Right", exact=True).input_value() == "32"
    assert "0.8 extending" in page.locator("#strength-out").inner_text()
    page.get_by_label("Prompt", exact=True).fill("a red circle on a white background")
    page.get_by_role("button", name="Generate").click()
    wide = finished(page, 1)
    out = result_pixels(page, wide)
    assert out.size == (96, 64)
    assert np.abs(np.asarray(out, np.int16)[:, :64] - np.asarray(picture, np.int16)).max() <= 2
    # Twice 96 px is past what the demo model may draw: the message says why, in words.
    wide.get_by_role("button", name="Upscale by 2 image").click()
    error = page.locator("#gen-error")
    error.get_by_text("192x128 (after upscale) is far above").wait_for()
    assert "at most 128 px a side" in error.inner_text()
    # A plain render, upscaled from its result: a batch of its own, twice the size.
    page.get_by_role("button", name="Remove picture").click()
    page.get_by_label("Prompt", exact=True).fill("a green square on a gray background")
    page.get_by_role("button", name="Generate").click()
    finished(page, 2).get_by_role("button", name="Upscale by 2 image").click()
    page.locator("section.batch h2", has_text="×2:").wait_for()
    assert result_pixels(page, finished(page, 3)).size == (128, 128)
    shot(page, "images-2-extend-upscale")
    # Use as input: a result becomes the picture to start from; Reuse fills the form in
    # place and every batch of this visit stays.
    wide.get_by_role("button", name="Start from image").click()
    page.locator("#source-size").get_by_text("96×64").wait_for()
    page.get_by_label("Prompt", exact=True).fill("something else")
    wide.get_by_role("button", name="Reuse the settings of image").click()
    prompt = page.get_by_label("Prompt", exact=True).input_value()
    assert prompt == "a red circle on a white background"
    assert page.locator("section.batch").count() == 3


def test_a_picture_from_the_gallery_lightbox_and_training_from_a_selection(page, app, tmp_path):
    picture = draw(Scene("green", "square", "black", 32, 32, 18))
    start_from(page, tmp_path, picture)  # puts it in the gallery
    page.goto("/my-images")
    page.locator("#image-grid figure button.thumb").first.click()
    page.get_by_role("link", name="Use as input").click()
    page.wait_for_url("**/generate?init_image=*")
    page.locator("#source-size").get_by_text("64×64").wait_for()
    page.get_by_label("Strength: how much is drawn anew").fill("0.75")
    page.get_by_label("Prompt", exact=True).fill("a green circle on a black background")
    page.get_by_role("button", name="Generate").click()
    out = result_pixels(page, finished(page, 1))
    assert classify(out)[:2] == ("green", "circle")
    # Select mode: a click ticks a picture (it does not open the lightbox); two of them train.
    page.goto("/my-images")
    page.get_by_role("button", name="Select").click()
    figures = page.locator("#image-grid figure")
    figures.nth(0).locator("button.thumb").click()
    figures.nth(1).locator("button.thumb").click()
    assert not page.locator("#image-dialog").is_visible()
    page.get_by_role("button", name="Train a LoRA from 2 selected").click()
    page.wait_for_url("**/train-lora?*")
    page.locator("#thumbs li").nth(1).wait_for()
    assert page.locator("#thumbs li").count() == 2
    page.get_by_label("Name", exact=True).fill("from-gallery")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Steps").fill("20")
    page.get_by_role("button", name="Start training").click()
    page.locator("#progress-text").get_by_text("Done:").wait_for(timeout=180_000)
    shot(page, "images-3-train-from-gallery")
    from_gallery = app.data_dir / "loras" / "local" / "from-gallery.safetensors"
    assert from_gallery.is_file()


def test_subject_only_masks_each_image_and_a_mask_is_touched_up(page, app, tmp_path):
    """Masked training in the page: Subject only masks every image (the corner shape left
    out), one mask is repainted with the brush, and the job trains with those masks."""
    from engine.demo_model.masked import TUNING
    from engine.masks import mask_sha256
    from engine.subject import demo_mask

    paths = []
    for i, im in enumerate(TUNING.images()):
        paths.append(tmp_path / f"corner-{i}.png")
        im.save(paths[-1])
    page.goto("/train-lora")
    page.get_by_label("Reference images (1–5, PNG, JPEG or WEBP)").set_input_files(
        [str(p) for p in paths]
    )
    page.get_by_role("button", name="Subject only").click()
    page.get_by_text("Masks made by builtin:demo reader").wait_for()
    assert page.locator("#thumbs li", has_text="masked").count() == 3
    page.get_by_role("button", name="Edit the mask of corner-0.png").click()
    editor = page.locator("#mask-editor")
    assert editor.get_by_label("Brush").input_value() == "5"  # a twelfth of the 64 px picture
    editor.get_by_role("button", name="Clear").click()
    paint(page, 0.5, 1.0, rows=4, canvas="#tm-canvas")  # the right part: the star, no corner
    shot(page, "images-4-train-mask-editor")
    editor.get_by_role("button", name="Done").click()
    assert not editor.is_visible()
    page.get_by_role("button", name="Remove the mask of corner-2.png").click()  # all learnt
    page.get_by_label("Name", exact=True).fill("masked-in-page")
    page.get_by_text("Advanced settings").click()
    page.get_by_label("Steps").fill("20")
    page.get_by_role("button", name="Start training").click()
    page.locator("#progress-text").get_by_text("Done:").wait_for(timeout=180_000)
    shot(page, "images-5-trained-with-masks")
    with app.client() as c:
        job = c.get("/jobs").json()["jobs"][0]
    shas = job["params"]["mask_sha256"]
    auto = [mask_sha256(demo_mask(im)) for im in TUNING.images()]
    assert shas[1] == auto[1]  # as the reader made it, through the page and back
    assert shas[0] not in (None, auto[0]) and shas[2] is None  # repainted; removed
