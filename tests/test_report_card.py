"""The report card (#28): its verdicts and advice from given scores (report.py, pure), and the
CLIP judge on a tiny SD engine (random weights: the numbers mean nothing, the wiring is real).
The demo reader's card is checked in test_checkpoints.py; its accuracy in bench/report_card.py."""

from __future__ import annotations

import dataclasses

import pytest

from engine.contract.training import JobCheckpoint, Scores
from engine.demo_model.acceptance import star_images
from engine.demo_model.shapes import BACKGROUNDS, Scene, draw
from engine.training.judge import Subject
from engine.training.report import Context, build
from tests.engine_process import EngineProcess
from tests.helpers import png_bytes, start_training, wait_job

CTX = Context(judge="test", total_steps=400, trigger="zxq", first_caption="a red zxq")


def point(step: int, kept: bool = True, **by_strength: tuple) -> JobCheckpoint:
    scores = {
        s.replace("_", "."): Scores(
            learned=v[0], follows_prompts=v[1], keeps_rest=v[2], copies=v[3], prompt=v[4]
        )
        for s, v in by_strength.items()
    }
    return JobCheckpoint(step=step, kept=kept, scores=scores)


GOOD = (1.0, 1.0, 1.0, 0.0, "zxq")


def test_good_recommends_the_end_and_its_prompt():
    report = build([point(200, **{"1": GOOD}), point(400, **{"1": GOOD, "0_8": GOOD})], CTX, True)
    assert report.verdict == "good" and report.final
    assert (report.recommended.step, report.recommended.strength) == (400, 1.0)
    assert report.recommended.prompt == "zxq" and report.advice[0].action is None


def test_undertrained_advises_continuing():
    weak = (0.0, 1.0, 1.0, 0.0, None)
    report = build([point(200, **{"1": weak}), point(400, **{"1": weak})], CTX, True)
    assert report.verdict == "undertrained"
    assert report.advice[0].action == "continue" and report.advice[0].steps == 200
    # Far below the model's default for these images: continue up to it.
    ctx = Context(**{**CTX.__dict__, "total_steps": 60, "default_steps": 1000})
    report = build([point(60, **{"1": weak})], ctx, True)
    assert report.advice[0].steps == 950  # 940, rounded to 50
    # Nothing draws the subject: the prompt to use is the first caption, not the bare word.
    assert report.recommended.prompt == "a red zxq"


def test_overtrained_recommends_the_earlier_step_and_a_dropped_one_is_never_chosen():
    worn = (0.5, 0.25, 0.5, 0.75, "a red zxq")
    report = build(
        [
            point(100, kept=False, **{"1": GOOD}),
            point(200, **{"1": GOOD}),
            point(400, **{"1": worn}),
        ],
        CTX,
        True,
    )
    assert report.verdict == "overtrained"
    assert (report.recommended.step, report.advice[0].action) == (200, "save")


def test_advice_on_strength_on_the_bare_word_and_on_uploads_alike():
    strong = (1.0, 0.5, 0.5, 0.5, "a red zxq")
    mild = (1.0, 0.6, 1.0, 0.25, "a red zxq")
    ctx = Context(**{**CTX.__dict__, "sameness": "all show a red star"})
    report = build([point(400, **{"1": strong, "0_8": mild})], ctx, True)
    texts = " ".join(a.text for a in report.advice)
    assert (report.recommended.step, report.recommended.strength) == (400, 0.8)
    assert "alone doesn't draw it" in texts and "'a red zxq'" in texts
    assert "all show a red star" in texts
    alike = next(a for a in report.advice if "all show" in a.text)
    assert alike.action == "retrain" and alike.settings == {"prior_preservation": False}
    assert "at or below 0.8" in texts


def test_uploads_posed_apart_are_named_and_the_advice_says_what_draws_more():
    """The demo reader sees how the uploads' poses differ (a small model's limit, measured in
    engine/demo_model/README.md); stars posed alike, like the acceptance set's, are not named."""
    assert Subject.of(star_images()).pose_spread() is None
    fill = BACKGROUNDS["black"]
    apart = [
        draw(Scene("red", "star", "black", 26, 34, 15)),
        draw(Scene("blue", "star", "black", 36, 30, 22)).rotate(30, fillcolor=fill),
        draw(Scene("green", "star", "black", 32, 32, 18)),
    ]
    words = Subject.of(apart).pose_spread()
    assert words.startswith("show the star at different sizes (45% to 67%"), words
    assert "angles (30 degrees apart)" in words and "places (" in words
    half = (0.5, 1.0, 1.0, 0.0, "a red zxq")
    ctx = dataclasses.replace(CTX, poses=words)
    advice = build([point(400, **{"1": half})], ctx, True).advice
    posed = next(a for a in advice if "posed alike" in a.text)
    assert posed.action == "retrain" and words in posed.text
    # Learned well enough: nothing to say about poses.
    assert not [a for a in build([point(400, **{"1": GOOD})], ctx, True).advice if "pose" in a.text]


def test_no_scores_says_why():
    ctx = Context(**{**CTX.__dict__, "unavailable": "no judge model"})
    report = build([point(400)], ctx, True)
    assert report.verdict is None and report.unavailable == "no judge model"


@pytest.mark.slow
def test_the_clip_judge_scores_a_tiny_training(tmp_path, tiny_models):
    from tests.tiny import tiny_clip

    clip = tiny_clip(tmp_path / "clip")
    model = str(tiny_models["sd"].folder)
    engine = EngineProcess(
        model, tmp_path / "data", tmp_path / "engine.log", LORAMINT_JUDGE_MODEL=str(clip)
    ).start()
    try:
        with engine.client() as c:
            form = {"steps": "8", "checkpoint_every": "4", "sample_every": "0", "seed": "1"}
            started = start_training(c, [png_bytes((200, 30, 30))], name="clip", **form)
            job = wait_job(c, started["job_id"])
    finally:
        engine.stop()
    report = job["report"]
    assert job["status"] == "succeeded" and report["judge"].startswith("CLIP")
    assert set(report["scores"]) == {"4", "8"} and set(report["scores"]["8"]) == {"0.6", "0.8", "1"}
    assert report["verdict"] in ("good", "undertrained", "overtrained")


def test_a_lora_that_changes_everything_and_draws_nothing_is_overtrained_not_short():
    broken = (0.0, 0.25, 0.0, 0.5, None)
    points = [point(200, **{"1": broken}), point(400, **{"1": broken})]
    # Above the model's default: back to it (twice the demo's default breaks it too).
    fast = dataclasses.replace(CTX, learning_rate=7.5e-3, default_learning_rate=1.5e-3)
    report = build(points, fast, True)
    assert report.verdict == "overtrained"
    advice = report.advice[0]
    assert advice.action == "retrain" and advice.settings == {"learning_rate": 1.5e-3}
    assert (
        "(0.0075) is too high" in advice.text and "at 0.0015 (this model's default)" in advice.text
    )
    # At the default already: half of it.
    at_default = dataclasses.replace(fast, learning_rate=1.5e-3)
    advice = build(points, at_default, True).advice[0]
    assert advice.settings == {"learning_rate": 7.5e-4} and "(half)" in advice.text
