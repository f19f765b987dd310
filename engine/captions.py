"""Captions for training images (`POST /caption`), so a LoRA learns the concept and not the
whole picture: "a yellow zxq on a white background" rather than the bare trigger word.

On the built-in demo model the demo's own classifier reads colour and background, exactly the
words that model knows. Elsewhere an image-to-text model from transformers
(`LORAMINT_CAPTION_MODEL`, a BLIP by default), loaded on first use on the device thread."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from PIL import Image

from engine.contract.errors import CaptionerUnavailable
from engine.contract.schemas import Captions
from engine.demo_model import MODEL_ID as DEMO_ID
from engine.helper_models import HelperModel, from_cache_first
from engine.runtime import Runtime
from engine.training.defaults import DEFAULT_TRIGGER

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


class ModelCaptioner:
    """A transformers image-to-text model (BLIP and its kind); the trigger word goes first."""

    def __init__(self, model: str, device: str) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.processor = from_cache_first(lambda **kw: AutoProcessor.from_pretrained(model, **kw))
        self.model = from_cache_first(
            lambda **kw: AutoModelForImageTextToText.from_pretrained(model, **kw)
        )
        self.model = self.model.to(device).eval()

    def __call__(self, images: list[Image.Image], trigger: str) -> list[str]:
        import torch

        inputs = self.processor(images=images, return_tensors="pt").to(self.model.device)
        with torch.inference_mode():
            ids = self.model.generate(**inputs, max_new_tokens=40)
        texts = [t.strip() for t in self.processor.batch_decode(ids, skip_special_tokens=True)]
        return [f"{trigger}, {text}" if text else trigger for text in texts]


class CaptionWork:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _captioner(self) -> tuple[str, Captioner]:
        model = self.rt.require_model()
        if model.info.model == DEMO_ID:
            return "builtin:demo classifier", demo_captions
        name = self.rt.settings.caption_model
        helper = self.rt.helper(
            "captioner",
            lambda: HelperModel(
                name,
                lambda device: ModelCaptioner(name, device),
                lambda why: CaptionerUnavailable(
                    f"the captioning model {name!r} could not be loaded ({why}). Write the "
                    "captions yourself, or set LORAMINT_CAPTION_MODEL to a local folder or a "
                    "Hub id that is in the cache (this server may be offline)."
                ),
            ),
        )
        return name, helper.get(model.info.device)

    async def caption(self, user: str, images: list[Image.Image], trigger: str | None) -> Captions:
        word = (trigger or DEFAULT_TRIGGER).strip()

        def work() -> Captions:
            name, captioner = self._captioner()
            return Captions(captions=captioner(images, word), captioner=name)

        future = self.rt.worker.submit(work, label="caption", owner=user)
        return await asyncio.wrap_future(future)
