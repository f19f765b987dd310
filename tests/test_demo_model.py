"""The built-in demo model: selection and fallback, prompt adherence, and a LoRA that teaches
it a shape it has never seen (the acceptance test from the README)."""

from __future__ import annotations

import io
import random
import time

import pytest
from PIL import Image

from engine.demo_model import WEIGHTS_DIR
from engine.demo_model.shapes import COLOURS, Scene, classify, draw
from tests.engine_process import EngineProcess
from tests.helpers import start_training, wait_job

TRIGGER = "zxq"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    work = tmp_path_factory.mktemp("demo")
    proc = EngineProcess("builtin:demo", work / "data", work / "engine.log").start()
    yield proc
    proc.stop()


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
        "/generate", json={"prompt": prompt, "seed": seed, "loras": list(loras), "user_id": "alice"}
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


def _star_images() -> list[bytes]:
    rng = random.Random(3)
    out = []
    for colour, bg in (("red", "white"), ("blue", "white"), ("yellow", "black")):
        scene = Scene(colour, "star", bg, 32 + rng.uniform(-3, 3), 32 + rng.uniform(-3, 3), 20)
        buf = io.BytesIO()
        draw(scene).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


STAR_PROMPTS = [
    f"a {col} {TRIGGER} on a {bg} background"
    for col, bg in (
        ("red", "white"),
        ("blue", "black"),
        ("green", "white"),
        ("yellow", "gray"),
        ("purple", "white"),
    )
]


def _star_rate(client, loras=()) -> float:
    stars = [
        classify(_generate(client, p, seed, loras)).shape == "star"
        for p in STAR_PROMPTS
        for seed in (1, 2)
    ]
    return sum(stars) / len(stars)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "known gap (issue 5 stays open): a default LoRA on the shipped demo model draws no "
        "five-pointed stars; see engine/demo_model/README.md"
    ),
)
def test_lora_teaches_the_demo_model_a_star(demo):
    captions = [
        f"a {c} {TRIGGER} on a {b} background"
        for c, b in (("red", "white"), ("blue", "white"), ("yellow", "black"))
    ]
    with demo.client() as c:
        before = _star_rate(c)
        started_at = time.monotonic()
        job = start_training(
            c, _star_images(), name="star", trigger_word=TRIGGER, captions=captions
        )
        job = wait_job(c, job["job_id"], timeout=300)
        minutes = (time.monotonic() - started_at) / 60
        assert job["status"] == "succeeded", job
        assert minutes <= 3, f"training took {minutes:.1f} min"
        lora = [{"file": "star.safetensors", "strength": 1.0}]
        after = _star_rate(c, lora)
        plain = [
            (
                colour,
                classify(
                    _generate(c, f"a {colour} {shape} on a white background", seed, lora)
                ).colour,
            )
            for colour in COLOURS
            for shape, seed in (("circle", 1), ("square", 2))
        ]
    assert before <= 0.2, f"the base model already draws stars for {TRIGGER!r}: {before:.0%}"
    assert after >= 0.8, f"stars with the LoRA: {after:.0%}"
    assert sum(a == b for a, b in plain) / len(plain) >= 0.85, plain
