"""The browser flows of the pages, in headless Chromium, on the built-in demo model as a new
user meets it offline (the default model can't be had, so the banner explains the fallback):
generation with live previews, stopping and keeping batches; training with captions, samples,
a loss chart and reattaching; the jobs panel; the galleries. Screenshots go to
test-artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from engine.demo_model import WEIGHTS_DIR
from engine.demo_model.acceptance import CAPTIONS, TRIGGER, star_images
from engine.demo_model.shapes import Scene, draw
from tests.browser import CHROMIUM, app_fixture, shot, watched_page
from tests.helpers import encoded, png_bytes, start_training, wait_job

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
    pytest.mark.slow,
]
# A slower render than the demo's default, so that previews and stopping can be watched.
SLOW_RENDER = {"Steps": "150", "Width": "128", "Height": "128"}


# The default model of a CPU machine, which can't be downloaded here: the demo model runs.
app = app_fixture("stabilityai/sd-turbo", "flows")


@pytest.fixture
def page(browser, app):
    with watched_page(browser, app.url, confirm=True) as pg:
        yield pg


def advanced(page, values: dict[str, str]) -> None:
    page.get_by_text("Advanced settings").click()
    for label, value in values.items():
        page.get_by_label(label, exact=True).fill(value)


def test_banner_says_in_words_what_happened(page):
    page.goto("/generate")
    banner = page.locator("#engine-banner")
    banner.wait_for()
    text = page.locator("#banner-text").inner_text()
    assert text.startswith("Offline: stabilityai/sd-turbo is not on this machine")
    assert "built-in 64 px demo model" in text and "Error" not in text
    page.get_by_text("Details", exact=True).click()
    details = page.locator("#banner-more").inner_text()
    shot(page, "flow-0-offline-banner")
    assert "go online and restart" in details and "LORAMINT_MODEL" in details
    assert "model_index.json" not in details
    # Nothing went wrong on this page, so no error box.
    assert page.locator("#gen-error").is_hidden()
    steps = json.loads((WEIGHTS_DIR / "loramint.json").read_text())["defaults"]["steps"]
    assert page.get_by_label("Steps").get_attribute("placeholder") == f"{steps} (default)"


def test_generation_shows_live_previews_stops_and_keeps_batches(page):
    page.goto("/generate")
    page.get_by_label("Prompt", exact=True).fill("a blue square on a white background")
    advanced(page, {**SLOW_RENDER, "Seed": "3"})
    page.get_by_label("Prompt", exact=True).press("Control+Enter")
    batch = page.locator("section.batch").first
    batch.locator("img.preview").wait_for(timeout=60_000)
    batch.get_by_text("Step ").wait_for()
    first = batch.locator("img.preview").get_attribute("src")
    expect(batch.locator("img.preview")).not_to_have_attribute("src", first)
    shot(page, "flow-1-generate-preview")
    page.keyboard.press("Escape")
    batch.get_by_text("Stopped: nothing was saved.").wait_for(timeout=30_000)
    # A second, quick batch goes above the stopped one; each image has its own actions.
    page.get_by_label("Steps", exact=True).fill("20")
    page.get_by_label("Width", exact=True).fill("")
    page.get_by_label("Height", exact=True).fill("")
    page.get_by_label("Images", exact=True).fill("2")
    page.get_by_role("button", name="Generate").click()
    page.locator("section.batch").nth(0).locator("figure img").nth(1).wait_for(timeout=60_000)
    assert page.locator("section.batch").count() == 2
    assert page.get_by_role("button", name="Delete image seed 4").is_visible()
    shot(page, "flow-2-generate-batches")
    page.get_by_role("button", name="Delete image seed 4").click()
    expect(page.locator("section.batch figure")).to_have_count(1)


def _files(tmp_path) -> list[str]:
    images = [draw(Scene("red", "star", "white", 32, 32, 20)), *star_images()[1:3]]
    paths = []
    for i, image in enumerate(images):
        path = tmp_path / f"star{i}.png"
        image.save(path)
        paths.append(str(path))
    return paths


def test_training_with_captions_samples_chart_and_reattaching(page, app, tmp_path):
    page.goto("/train-lora")
    page.get_by_label("Reference images").set_input_files(_files(tmp_path))
    page.get_by_label("Name", exact=True).fill("stars")
    page.get_by_label("Trigger word").fill("zxq")
    # The presets come first; the object preset's caption on the demo model is the trigger.
    expect(page.get_by_label("Caption of star0.png")).to_have_value("zxq")
    page.get_by_label("Character", exact=True).check()
    assert not page.get_by_label("Mirror images too").is_checked()  # the character preset's
    page.get_by_text("What this preset sets").click()
    page.locator("#preset-settings li", has_text="Mirror images too: off").wait_for()
    page.get_by_role("button", name="Auto-caption").click()
    page.get_by_text("Captions written by builtin:demo classifier").wait_for(timeout=30_000)
    assert page.get_by_label("Caption of star0.png").input_value() == (
        "a red zxq on a white background"
    )
    shot(page, "flow-3-train-captions")
    advanced(page, {"Steps": "120"})
    page.get_by_role("button", name="Start training").click()
    page.locator("#progress-card").wait_for()
    page.locator("#progress-text", has_text="Step ").wait_for(timeout=120_000)
    with app.client() as c:
        params = c.get("/jobs").json()["jobs"][0]["params"]
    assert params["preset"] == "character" and params["flip"] is False
    assert params["changed_from_preset"]["steps"] == 120
    # Reopened mid-run, the page finds the job again.
    page.goto("/train-lora")
    page.locator("#progress-card").wait_for(timeout=30_000)
    assert "Training stars" in page.locator("#progress-title").inner_text()
    page.locator("#samples img").first.wait_for(timeout=120_000)
    assert page.locator("#jobs-badge").inner_text() == "1"
    page.locator("#progress-text", has_text="Done:").wait_for(timeout=300_000)
    assert page.locator("#samples img").count() == 10  # 5 times, the 2 sample prompts
    assert page.locator("#loss-chart polyline").count() == 1
    assert page.get_by_role("link", name="Use this LoRA").is_visible()
    shot(page, "flow-4-train-done")
    # The report card: a verdict, advice, a checkpoint x strength grid; any kept checkpoint saved.
    report = page.locator("#report")
    report.get_by_role("heading", name="Report card").wait_for()
    assert report.locator(".verdict").inner_text().split(":")[0] in (
        "Good",
        "Undertrained",
        "Overtrained",
    )
    assert report.locator(".advice li").count() >= 1
    assert report.locator(".report-grid img").count() >= 5 + 2  # 5 steps at 1, the last at 3
    report.get_by_role("button", name="Save step 72").click()
    page.get_by_text("Saved as stars-step72.safetensors").wait_for()
    report.locator(".report-grid small", has_text="stars-step72.safetensors").wait_for()
    assert "prompt=" in page.get_by_role("link", name="Use it", exact=True).get_attribute("href")
    # The grid's other cells are drawn on demand: one, then all that are missing.
    report.get_by_role("button", name="Draw step 48 at strength 0.6").click()
    report.get_by_role("img", name="Step 48 at strength 0.6").wait_for(timeout=60_000)
    report.get_by_role("button", name="Draw the missing pictures").click()
    expect(report.locator(".report-grid img")).to_have_count(5 * 3, timeout=120_000)
    expect(report.get_by_role("button", name="Draw the missing pictures")).to_have_count(0)
    assert report.locator("button.draw").count() == 0
    report.scroll_into_view_if_needed()
    shot(page, "flow-4c-report-card")
    with app.client() as c:  # the LoRA cards' test expects stars and its copy only
        assert c.delete("/loras/stars-step72.safetensors").status_code == 200
    # The name is taken now: the message points at the page's own control.
    page.goto("/train-lora")
    page.get_by_label("Reference images").set_input_files(_files(tmp_path)[:1])
    page.get_by_label("Name", exact=True).fill("stars")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("tick “Replace an existing LoRA of this name”").wait_for()
    assert page.get_by_label("Replace an existing LoRA of this name").is_visible()


def start_long_training(page, tmp_path, name: str) -> None:
    """A 3000-step training of one image from the Train page, left running."""
    page.goto("/train-lora")
    page.get_by_label("Reference images").set_input_files(_files(tmp_path)[:1])
    page.get_by_label("Name", exact=True).fill(name)
    advanced(page, {"Steps": "3000"})
    page.get_by_role("button", name="Start training").click()
    page.locator("#progress-card").wait_for()


def test_training_starts_while_an_image_renders(page, app, tmp_path):
    """A generation still rendering once made training answer "you already have 1 training
    job(s)": generate, then train at once."""
    page.goto("/generate")
    page.get_by_label("Prompt", exact=True).fill("a green circle on a black background")
    advanced(page, SLOW_RENDER)
    page.get_by_role("button", name="Generate").click()
    page.locator("section.batch").first.get_by_text("Step ").wait_for(timeout=60_000)
    start_long_training(page, tmp_path, "while_rendering")
    assert page.locator("#train-error").is_hidden()
    shot(page, "flow-4b-train-while-rendering")
    with app.client() as c:
        for job in c.get("/jobs").json()["jobs"]:
            if job["status"] in ("queued", "running"):
                c.post(f"/jobs/{job['id']}/cancel")
                wait_job(c, job["id"], params={}, timeout=60)


def test_a_cancelled_training_resumes_from_its_checkpoint(page, app, tmp_path):
    page.goto("/train-lora")
    page.get_by_label("Reference images").set_input_files(_files(tmp_path)[:1])
    page.get_by_label("Name", exact=True).fill("resumed")
    advanced(page, {"Steps": "3000", "Checkpoint every": "10", "Samples every": "0"})
    page.get_by_role("button", name="Start training").click()
    page.locator("#progress-card").wait_for()
    with app.client() as c:
        job = next(j for j in c.get("/jobs").json()["jobs"] if j["params"]["name"] == "resumed")
        wait_job(c, job["id"], params={}, until=lambda j: len(j["checkpoints"]) >= 1)
    page.get_by_role("button", name="Cancel").click()
    page.locator("#progress-text", has_text="is kept: Resume goes on from there").wait_for(
        timeout=60_000
    )
    resume = page.get_by_role("button", name="Resume from step")
    shot(page, "flow-4d-resume")
    resume.click()
    page.locator("#progress-text", has_text="Step ").wait_for(timeout=60_000)
    with app.client() as c:
        jobs = c.get("/jobs").json()["jobs"]
        again = next(j for j in jobs if j.get("resumed_from"))
        assert again["resumed_from"]["job_id"] == job["id"] and again["total_steps"] == 3000
        c.post(f"/jobs/{again['id']}/cancel")
        wait_job(c, again["id"], params={}, timeout=60)
    # /my-jobs offers Resume too.
    page.goto("/my-jobs")
    page.get_by_role("button", name="Resume Training resumed from step").first.wait_for()


def test_a_training_the_engine_cut_short_offers_resume(page, app):
    """kill -9 of the engine mid-training: the supervisor restarts it, the job reads failed and
    cut short, and the page says the checkpoint is kept instead of "Training failed"."""
    with app.client() as c:
        form = {"name": "cut", "steps": "3000", "sample_every": "0", "checkpoint_every": "10"}
        job_id = start_training(c, [png_bytes((250, 20, 20))], {}, **form)["job_id"]
        wait_job(c, job_id, params={}, until=lambda j: len(j["checkpoints"]) >= 1)
        os.kill(app.health()["engine"]["pid"], signal.SIGKILL)
        time.sleep(1)
        app.wait(lambda h: h["engine"]["state"] == "ready", 240)
        assert c.get(f"/jobs/{job_id}").json()["cut_short"]
    page.goto(f"/train-lora?job={job_id}")
    page.get_by_role("button", name="Resume from step").wait_for()
    text = page.locator("#progress-text").inner_text()
    assert text.startswith("The engine stopped at step") and "Resume goes on from there" in text


def test_train_again_fills_in_what_the_report_card_advises(page, app):
    with app.client() as c:
        # As tests/test_checkpoints.py's: 5x the rate breaks the demo model within 50 steps.
        form = {"name": "hot", "steps": "40", "sample_every": "20", "learning_rate": "0.0075"}
        form |= {"trigger_word": TRIGGER, "captions": list(CAPTIONS), "seed": "5"}
        stars = [encoded(image) for image in star_images()]
        job_id = start_training(c, stars, {}, **form)["job_id"]
        report = wait_job(c, job_id, params={})["report"]
        assert report["advice"][0]["settings"] == {"learning_rate": 0.0015}, report
        # The LoRA cards' test expects its own LoRAs only.
        assert c.delete("/loras/hot.safetensors").status_code == 200
    page.goto(f"/train-lora?job={job_id}")
    report = page.locator("#report")
    report.get_by_text("is too high for these images").wait_for()
    report.get_by_role("button", name="Train again").first.click()
    expect(page.get_by_label("Learning rate")).to_have_value("0.0015")
    assert page.get_by_label("Learning rate").is_visible()  # Advanced settings opened


def test_jobs_panel_cancels_with_feedback(page, tmp_path):
    start_long_training(page, tmp_path, "to_cancel")
    page.goto("/my-jobs")
    job = page.locator("li.job", has_text="Training to_cancel")
    job.wait_for()
    shot(page, "flow-5-jobs")
    job.get_by_role("button", name="Cancel Training to_cancel").click()
    job.get_by_text("Cancelling…").or_(job.get_by_text("cancelled")).wait_for(timeout=2_000)
    page.locator("li.job", has_text="Training to_cancel").get_by_text("cancelled").wait_for(
        timeout=60_000
    )
    assert page.locator("#jobs-badge").is_hidden()


def test_image_gallery_pages_searches_and_deletes_several(page, app):
    with app.client() as c:
        for i in range(8):
            prompt = "a green circle on a black background" if i < 2 else "a red square"
            body = {"prompt": prompt, "num_images": 4, "seed": 100 + 4 * i}
            assert c.post("/generate", json=body).status_code == 200
        total = len(c.get("/images", params={"limit": 200}).json()["images"])
    assert 32 <= total <= 60  # this test's, and the other tests' images
    page.goto("/my-images")
    page.locator("#image-grid figure").nth(29).wait_for()
    assert page.locator("#image-grid figure").count() == 30
    page.get_by_role("button", name="Show more").click()
    expect(page.locator("#image-grid figure")).to_have_count(total)
    assert page.locator("#image-grid time").first.inner_text()
    page.get_by_label("Search prompts and LoRA names").fill("green circle")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#image-grid figure")).to_have_count(8)
    page.locator("#image-grid button.thumb").first.click()
    title = page.locator("#dialog-title").inner_text()
    seed = page.locator("#dialog-params tr", has_text="Seed").inner_text()
    page.keyboard.press("ArrowRight")
    expect(page.locator("#dialog-params tr", has_text="Seed")).not_to_have_text(seed)
    assert page.locator("#dialog-title").inner_text() == title
    shot(page, "flow-6-lightbox")
    page.get_by_role("button", name="Close").click()
    page.get_by_role("button", name="Select").click()
    boxes = page.locator("#image-grid input.pick")
    boxes.nth(0).check()
    boxes.nth(1).check()
    page.get_by_role("button", name="Delete 2 selected").click()
    expect(page.locator("#image-grid figure")).to_have_count(6)


def test_lora_cards_edit_and_import_on_a_phone(browser, app, tmp_path):
    if not (app.data_dir / "loras" / "local" / "stars.safetensors").exists():  # run alone
        with app.client() as c:
            files = [("images", (p, Path(p).read_bytes(), "image/png")) for p in _files(tmp_path)]
            r = c.post("/train-lora", files=files, data={"name": "stars", "steps": "30"})
            wait_job(c, r.json()["job_id"], params={})
    with watched_page(browser, app.url, 375, 740, confirm=True) as page:
        _lora_cards_on_a_phone(page, app, tmp_path)


def _lora_cards_on_a_phone(page, app, tmp_path) -> None:
    page.goto("/my-loras")
    card = page.locator('li[data-file="stars.safetensors"]')
    card.wait_for(timeout=30_000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for action in ("Use stars", "Download stars", "Details of stars", "Delete stars"):
        box = card.get_by_role("link", name=action, exact=True).or_(
            card.get_by_role("button", name=action, exact=True)
        )
        right = box.evaluate("e => e.getBoundingClientRect().right")
        assert right <= 375, f"{action} is cut off at {right}px"
    shot(page, "flow-7-loras-phone")
    card.get_by_role("button", name="Details of stars").click()
    page.get_by_label("Trigger word").fill("zxq")
    page.get_by_label("Description").fill("five-pointed stars")
    page.get_by_label("Preferred strength").fill("0.8")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Saved.").wait_for()
    groups = page.locator("#meta-groups").inner_text()
    assert "Training" in groups and "Dataset" in groups and "five-pointed stars" in groups
    shot(page, "flow-8-lora-details")
    page.get_by_role("button", name="Close").click()
    # "Use" carries the preferred strength.
    assert "stars.safetensors%3A0.8" in card.get_by_role("link", name="Use stars").get_attribute(
        "href"
    )
    lora = app.data_dir / "loras" / "local" / "stars.safetensors"
    copy = tmp_path / "imported.safetensors"
    copy.write_bytes(lora.read_bytes())
    page.get_by_text("Import a LoRA file").click()
    page.get_by_label("A LoRA .safetensors file").set_input_files(str(copy))
    page.get_by_role("button", name="Import").click()
    page.get_by_text("Imported imported.safetensors.").wait_for()
    page.locator('li[data-file="imported.safetensors"]').wait_for()
    # The /generate picker shows the same cards, with search.
    page.goto("/generate")
    page.get_by_text("Add a LoRA").click()
    page.get_by_label("Search your LoRAs").fill("five")  # not a name: nothing matches
    expect(page.locator("#lora-cards li:visible")).to_have_count(0)
    page.get_by_label("Search your LoRAs").fill("zxq")  # the trigger word: stars and its copy
    expect(page.locator("#lora-cards li:visible")).to_have_count(2)
    page.get_by_label("Search your LoRAs").fill("STAR")
    expect(page.locator("#lora-cards li:visible")).to_have_count(1)
    page.get_by_role("button", name="Add stars").click()
    assert page.locator("#lora-stack output").inner_text() == "0.80"
