"""The built-in demo model: selection and fallback, prompt adherence, and a LoRA that teaches
it a shape it has never seen (the acceptance test from the README)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from engine.demo_model import WEIGHTS_DIR
from engine.demo_model.acceptance import (
    CAPTIONS,
    PLAIN_CASES,
    STAR_PROMPTS,
    STAR_SEEDS,
    TRIGGER,
    star_images,
)
from engine.demo_model.reading import classify
from engine.demo_model.shapes import COLOURS
from tests.engine_process import EngineProcess
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


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _star_rate(client, loras=()) -> float:
    stars = [
        classify(_generate(client, p, seed, loras)).shape == "star"
        for p in STAR_PROMPTS
        for seed in STAR_SEEDS
    ]
    return sum(stars) / len(stars)


@pytest.mark.slow
def test_lora_teaches_the_demo_model_a_star(demo):
    # The 3-minute training budget is timed by bench/demo_lora.py, not here: this machine's
    # speed varies by 20 % from hour to hour.
    with demo.client() as c:
        before = _star_rate(c)
        images = [_png(im) for im in star_images()]
        job = start_training(c, images, name="star", trigger_word=TRIGGER, captions=list(CAPTIONS))
        job = wait_job(c, job["job_id"], timeout=600)
        assert job["status"] == "succeeded", job
        lora = [{"file": "star.safetensors", "strength": 1.0}]
        after = _star_rate(c, lora)
        plain = [
            (colour, classify(_generate(c, p, seed, lora)).colour)
            for colour, p, seed in PLAIN_CASES
        ]
    assert before <= 0.2, f"the base model already draws stars for {TRIGGER!r}: {before:.0%}"
    assert after >= 0.8, f"stars with the LoRA: {after:.0%}"
    assert sum(a == b for a, b in plain) / len(plain) >= 0.85, plain
