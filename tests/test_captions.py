"""Captions from a captioning model (#30): the trigger word takes the place of the subject's
noun, and a Florence-2 is asked for its caption task. Torch-free rules, then tiny models in
process (their weights are random: what they write is noise, how it is asked for is not)."""

from __future__ import annotations

import pytest
from PIL import Image

from engine.caption_words import trigger_in_place

# Sentences in the shapes BLIP and Florence-2 write (none of them tuned on: written first).
CASES = [
    ("a red car parked on a wooden table", "a red sks parked on a wooden table"),
    (
        "The image shows a small yellow rubber duck sitting on the edge of a bathtub. "
        "The duck has an orange beak.",
        "a small yellow rubber sks sitting on the edge of a bathtub. The sks has an orange beak.",
    ),
    ("a close up of a cat wearing a hat", "a close-up of a sks wearing a hat"),
    ("an apple on a white background", "a sks on a white background"),
    ("a painting of a woman in a blue dress", "a painting of a sks in a blue dress"),
    ("arafed man in a suit standing next to a car", "sks in a suit standing next to a car"),
    ("In this image, there is a mug on a desk.", "a sks on a desk."),
    ("there is a black and white photo of a dog", "a black-and-white photo of a sks"),
    ("a big red truck", "a big red sks"),
    ("red star", "red sks"),
    # Written after the rules were first frozen; two were wrong and one half right then.
    ("a pair of sneakers on a white background", "a pair of sks on a white background"),
    (
        "a cartoon drawing of a green dragon breathing fire",
        "a cartoon drawing of a green sks breathing fire",
    ),
    ("In this image we can see a toy robot on the table.", "a toy sks on the table."),
    (
        "a bottle of perfume next to a bouquet of roses",
        "a sks of perfume next to a bouquet of roses",
    ),
    ("", "sks"),
]


@pytest.mark.parametrize(("text", "caption"), CASES)
def test_the_trigger_takes_the_subjects_place(text, caption):
    assert trigger_in_place(text, "sks") == caption


def test_the_article_follows_the_trigger():
    assert trigger_in_place("a dog on a sofa", "ohwx") == "an ohwx on a sofa"
    assert trigger_in_place("an owl on a branch", "zxq") == "a zxq on a branch"


def test_florence_is_asked_for_its_caption_and_blip_is_not(tmp_path):
    from engine.captions import ModelCaptioner
    from tests.tiny import tiny_captioner, tiny_florence

    pictures = [Image.new("RGB", (40, 30), c) for c in ((200, 0, 0), (0, 0, 200))]
    florence = tiny_florence(tmp_path / "florence")
    assert ModelCaptioner(str(florence), "cpu", "detailed").task == "<DETAILED_CAPTION>"
    short = ModelCaptioner(str(florence), "cpu", "short")
    assert short.task == "<CAPTION>"
    blip = ModelCaptioner(str(tiny_captioner(tmp_path / "blip")), "cpu", "detailed")
    assert blip.task is None
    for captioner in (short, blip):
        captions = captioner(pictures, "sks")
        assert len(captions) == 2 and all("sks" in c for c in captions)
