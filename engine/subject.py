"""Subject masks for masked training (`POST /subject-masks`, the Train page's "Subject only"):
white over what a picture is of, black over the rest, to check and touch up before training.

On the built-in demo model: the largest thing that stands out from the border's colour (the
demo reader's own rule), so a second, smaller shape is left out. Elsewhere an image
segmentation model from transformers (`LORAMINT_MASK_MODEL`), loaded on first use on the device
thread: the subject is every segment that is not a kind of background (wall, sky, floor...),
or, if that leaves nothing, the segment under the picture's centre."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from engine.contract.errors import MaskerUnavailable
from engine.contract.schemas import SubjectMasks
from engine.demo_model import MODEL_ID as DEMO_ID
from engine.helper_models import HelperModel, from_cache_first
from engine.runtime import Runtime

GROW = 2  # px the demo mask is grown by: the shape's anti-aliased edge is the subject's too
# Segment labels that are where a subject is, not what it is (ADE20K's and COCO's "stuff").
_BACKGROUND = """wall building sky floor flooring ceiling road grass sidewalk pavement earth
ground field sand water sea river lake mountain hill tree plant fence rug carpet curtain window
windowpane door table background snow dirt gravel platform stairs"""
BACKGROUND = frozenset(_BACKGROUND.split())


def demo_mask(image: Image.Image) -> Image.Image:
    """The demo picture's largest shape, grown by GROW px, at the picture's size."""
    from engine.demo_model.reading import STAND_OUT, largest_region

    a = np.asarray(image.convert("RGB"), dtype=float)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    out = largest_region(np.sqrt(((a - np.median(border, axis=0)) ** 2).sum(-1)) > STAND_OUT)
    mask = Image.fromarray((out * 255).astype(np.uint8))
    return mask.filter(ImageFilter.MaxFilter(2 * GROW + 1))


class SegmentationMasker:
    """A transformers image-segmentation model (semantic, instance or panoptic)."""

    def __init__(self, model: str, device: str) -> None:
        from transformers import pipeline

        self.segment = from_cache_first(
            lambda **kw: pipeline("image-segmentation", model=model, device=device, **kw)
        )

    def __call__(self, image: Image.Image) -> Image.Image:
        segments = self.segment(image)
        keep = [s for s in segments if not _background(s["label"])]
        if not keep:  # all of it background: the segment under the centre
            centre = (image.width // 2, image.height // 2)
            keep = [s for s in segments if s["mask"].getpixel(centre)]
        out = np.zeros((image.height, image.width), bool)
        for s in keep:
            out |= np.asarray(s["mask"].convert("L").resize(image.size)) > 127
        return Image.fromarray((out * 255).astype(np.uint8))


def _background(label: str) -> bool:
    words = label.lower().replace("-", " ").replace("_", " ").replace(",", " ").split()
    return any(w in BACKGROUND for w in words)


class SubjectMaskWork:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def _masker(self) -> tuple[str, Any]:
        model = self.rt.require_model()
        if model.info.model == DEMO_ID:
            return "builtin:demo reader", demo_mask
        name = self.rt.settings.mask_model
        helper = self.rt.helper(
            "masker",
            lambda: HelperModel(
                name,
                lambda device: SegmentationMasker(name, device),
                lambda why: MaskerUnavailable(
                    f"the subject masking model {name!r} could not be loaded ({why}). Paint "
                    "the masks yourself, or set LORAMINT_MASK_MODEL to a local folder or a "
                    "Hub id that is in the cache (this server may be offline)."
                ),
            ),
        )
        return name, helper.get(model.info.device)

    async def masks(self, user: str, images: list[Image.Image]) -> SubjectMasks:
        from engine.previews import data_url

        def work() -> SubjectMasks:
            name, masker = self._masker()
            return SubjectMasks(masks=[data_url(masker(im)) for im in images], masker=name)

        future = self.rt.worker.submit(work, label="subject masks", owner=user)
        return await asyncio.wrap_future(future)
