"""Captions for training images (`POST /caption`), so a LoRA learns the concept and not the
whole picture: "a yellow zxq on a white background" rather than the bare trigger word.

On the built-in demo model the demo's own classifier reads colour and background, exactly the
words that model knows. Elsewhere an image-to-text model from transformers
(`LORAMINT_CAPTION_MODEL`: Florence-2 by default, BLIP where it does not load), loaded on first
use on the device thread; the trigger word takes the place of the subject's noun."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from PIL import Image

from engine.caption_words import trigger_in_place
from engine.contract.errors import CaptionerUnavailable
from engine.contract.schemas import Captions
from engine.demo_model import MODEL_ID as DEMO_ID
from engine.helper_models import HelperModel, from_cache_first
from engine.runtime import Runtime
from engine.training.defaults import DEFAULT_TRIGGER

log = logging.getLogger(__name__)
Captioner = Callable[[list[Image.Image], str], list[str]]


def demo_captions(images: list[Image.Image], trigger: str) -> list[str]:
    """The demo model's caption form, with only the words it knows: a colour the reader
    names "peach" or a "mixed" background is left out rather than taught as a new word."""
    from engine.demo_model.reading import classify
    from engine.demo_model.shapes import BACKGROUNDS, COLOURS, NEW_COLOURS

    out = []
    for image in images:
        r = classify(image)
        colour = f"{r.colour} " if r.colour in {**COLOURS, **NEW_COLOURS} else ""
        background = f" on a {r.background} background" if r.background in BACKGROUNDS else ""
        out.append(f"a {colour}{trigger}{background}")
    return out


# Florence-2's task prompts per caption_detail.
FLORENCE_TASKS = {"detailed": "<DETAILED_CAPTION>", "short": "<CAPTION>"}


class ModelCaptioner:
    """A transformers image-to-text model: Florence-2 (asked for its caption task) or BLIP
    and its kind; the trigger word goes in place of the subject's noun (caption_words.py)."""

    def __init__(self, model: str, device: str, detail: str) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.name = model
        self.processor = from_cache_first(lambda **kw: AutoProcessor.from_pretrained(model, **kw))
        self.model = from_cache_first(
            lambda **kw: AutoModelForImageTextToText.from_pretrained(model, **kw)
        )
        self.model = self.model.to(device).eval()
        florence = self.model.config.model_type == "florence2"
        self.task = FLORENCE_TASKS[detail] if florence else None

    def __call__(self, images: list[Image.Image], trigger: str) -> list[str]:
        import torch

        text = {"text": [self.task] * len(images)} if self.task else {}
        inputs = self.processor(images=images, return_tensors="pt", **text).to(self.model.device)
        inputs = inputs.to(self.model.dtype) if self.task else inputs  # pixel values' dtype
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=80 if self.task else 40)
        texts = [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
        return [trigger_in_place(text, trigger) for text in texts]


def first_loading(models: list[str], device: str, detail: str) -> ModelCaptioner:
    """The first of `models` that loads (the configured captioner, then its fallback)."""
    why = []
    for model in models:
        try:
            return ModelCaptioner(model, device, detail)
        except Exception as exc:  # offline and not cached, an unknown format...
            log.info("captioner %s did not load: %s", model, exc)
            why.append(f"{model}: {type(exc).__name__}: {exc}")
    raise OSError("; ".join(why))


class CaptionWork:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _captioner(self) -> tuple[str, Captioner]:
        model = self.rt.require_model()
        if model.info.model == DEMO_ID:
            return "builtin:demo classifier", demo_captions
        s = self.rt.settings
        names = [s.caption_model, *([s.caption_fallback_model] if s.caption_fallback_model else [])]
        helper = self.rt.helper(
            "captioner",
            lambda: HelperModel(
                " or ".join(names),
                lambda device: first_loading(names, device, s.caption_detail),
                lambda why: CaptionerUnavailable(
                    f"no captioning model could be loaded ({why}). Write the captions "
                    "yourself, or set LORAMINT_CAPTION_MODEL to a local folder or a Hub id "
                    "that is in the cache (this server may be offline)."
                ),
            ),
        )
        captioner = helper.get(model.info.device)
        return captioner.name, captioner

    async def caption(self, user: str, images: list[Image.Image], trigger: str | None) -> Captions:
        word = (trigger or DEFAULT_TRIGGER).strip()

        def work() -> Captions:
            name, captioner = self._captioner()
            return Captions(captions=captioner(images, word), captioner=name)

        future = self.rt.worker.submit(work, label="caption", owner=user)
        return await asyncio.wrap_future(future)
