"""The built-in demo model: selection and fallback, prompt adherence, and a LoRA that teaches
it a shape it has never seen (the acceptance test of docs/demo-model.md)."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
from PIL import Image

from engine.demo_model import WEIGHTS_DIR
from engine.demo_model.acceptance import (
    CAPTIONS,
    STAR_CASES,
    TRIGGER,
    misses,
    score_bare,
    score_captioned,
    star_images,
)
from engine.demo_model.reading import classify
from engine.demo_model.shapes import BACKGROUNDS, COLOURS
from tests.engine_process import ROOT, EngineProcess
from tests.helpers import ALICE, start_training, wait_job


def test_weights_are_small_safetensors():
    files = list(WEIGHTS_DIR.rglob("*"))
    assert not [f for f in files if f.suffix in (".bin", ".pt", ".ckpt", ".pkl")]
    assert sum(f.stat().st_size for f in files if f.is_file()) <= 30 * 2**20


def test_unavailable_model_falls_back_to_demo_and_says_why(tmp_path):
    eng = EngineProcess(
        "stabilityai/sd-turbo",
        tmp_path / "data",
        tmp_path / "e.log",
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
    ).start()
    try:
        health = eng.health()
        assert health["model"] == "builtin:demo"
        assert "stabilityai/sd-turbo" in health["fallback_reason"]
        assert "built-in demo model" in eng.log_path.read_text()
    finally:
        eng.stop()


def _generate(client, prompt: str, seed: int, loras=()) -> Image.Image:
    r = client.post(
        "/generate", params=ALICE, json={"prompt": prompt, "seed": seed, "loras": list(loras)}
    )
    assert r.status_code == 200, r.text
    png = client.get(r.json()["images"][0]["url"]).content
    return Image.open(io.BytesIO(png))


def test_demo_follows_colour_prompts(demo):
    with demo.client() as c:
        cases = [(colour, shape) for colour in COLOURS for shape in ("circle", "square")]
        hits = sum(
            classify(_generate(c, f"a {colour} {shape} on a white background", 7)).colour == colour
            for colour, shape in cases
        )
    assert hits / len(cases) >= 0.9


def test_demo_draws_the_background_asked_for(demo):
    # The evaluator's full case set (python -m engine.demo_model.evaluate) is too long for a
    # test; one picture per colour x background, read as a person reads them.
    with demo.client() as c:
        cases = [(colour, bg) for colour in COLOURS for bg in BACKGROUNDS]
        readings = [
            classify(_generate(c, f"a {colour} circle on a {bg} background", 7))
            for colour, bg in cases
        ]
    colours = [r.colour == colour for r, (colour, _) in zip(readings, cases, strict=True)]
    backgrounds = [r.background == bg for r, (_, bg) in zip(readings, cases, strict=True)]
    assert sum(colours) / len(cases) >= 0.9, readings
    assert sum(backgrounds) / len(cases) >= 0.9, readings


def test_demo_draws_the_shape_asked_for(demo):
    # Squares and triangles: the shapes v1-v4 lost (concave sides, soft corners).
    with demo.client() as c:
        cases = [(s, bg) for s in ("square", "triangle") for bg in BACKGROUNDS]
        readings = [
            classify(_generate(c, f"a {colour} {shape} on a {bg} background", 7))
            for shape, bg in cases
            for colour in ("red", "blue", "yellow")
        ]
    shapes = [r.shape for r in readings]
    wanted = [shape for shape, _ in cases for _ in range(3)]
    hits = sum(a == b for a, b in zip(shapes, wanted, strict=True))
    assert hits / len(wanted) >= 0.85, shapes


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _train(client, name: str, captions) -> list[dict]:
    images = [_png(im) for im in star_images()]
    form = {"captions": captions} if captions else {}
    job = start_training(client, images, name=name, trigger_word=TRIGGER, **form)
    job = wait_job(client, job["job_id"], timeout=600)
    assert job["status"] == "succeeded", job
    return [{"file": f"{name}.safetensors", "strength": 1.0}]


@pytest.mark.slow
def test_lora_teaches_the_demo_model_a_star(demo):
    # The 2-minute training budget is timed by bench/demo_lora.py, not here: this machine's
    # speed varies by 20 % from hour to hour.
    with demo.client() as c:
        before = [classify(_generate(c, p, seed)).shape == "star" for _, p, seed in STAR_CASES[::2]]
        lora = _train(c, "star", list(CAPTIONS))
        scores = score_captioned(lambda p, seed: _generate(c, p, seed, lora))
    assert sum(before) / len(before) <= 0.2, f"the base model already draws stars for {TRIGGER!r}"
    assert not misses(scores), scores


@pytest.mark.slow
def test_a_lora_from_the_bare_trigger_word_draws_stars(demo):
    with demo.client() as c:
        lora = _train(c, "bare-star", None)
        scores = score_bare(lambda p, seed: _generate(c, p, seed, lora))
    assert not misses(scores), scores


@pytest.mark.slow
def test_the_evaluator_cli_scores_and_draws_the_contact_sheet(tmp_path):
    sheet = tmp_path / "sheet.png"
    argv = [sys.executable, "-m", "engine.demo_model.evaluate", "--seeds", "1"]
    argv += ["--held-apart", "0", "--sheet", str(sheet)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "standard seeds 1000-1000: 54 images" in out, out
    scores = dict(re.findall(r"^  (colour|background|shape) +([\d.]+)%", out, re.M))
    assert set(scores) == {"colour", "background", "shape"}, out
    # One seed of the shipped model: far from chance (a third), whatever the version.
    assert all(float(v) > 50 for v in scores.values()), out
    assert "held-apart" not in out
    with Image.open(sheet) as im:  # 18 prompts x 3 backgrounds, 64 px pictures at 2x
        assert im.size == (3 * 128, 18 * 128)
