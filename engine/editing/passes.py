"""Images from images on the loaded model: img2img, inpainting (whole or on a crop) and the
hires-fix pass (its colours matched to the picture it enlarged), through pipelines made from
the loaded components (`from_pipe`: the same weights in memory, so the LoRA stack made active
on them applies in every pass)."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting
from PIL import Image

from engine.editing.canvas import Source, crop_size, match_colours, paste_back
from engine.editing.plan import Pass, Passes
from engine.gpu import eager
from engine.pipelines import StepHook, render
from engine.runtime import LoadedModel
from engine.values import RenderParams

TILED_FROM = 1536  # px a side: above it the VAE decodes in tiles, so its memory stays flat
LANCZOS = Image.Resampling.LANCZOS


def derived(model: LoadedModel, kind: str) -> Any:
    """The loaded model's img2img or inpainting pipeline, made once from its components (an
    inpainting checkpoint's 9-channel UNet is used natively, any other by blending latents)."""
    if kind not in model.derived:
        cls = AutoPipelineForImage2Image if kind == "img2img" else AutoPipelineForInpainting
        pipe = cls.from_pipe(model.pipe)
        pipe.set_progress_bar_config(disable=True)
        model.derived[kind] = pipe
    return model.derived[kind]


def draw(
    model: LoadedModel, params: RenderParams, passes: Passes, on_step: StepHook | None
) -> list[Image.Image]:
    """Each pass in turn; the steps they report count on across passes."""
    with eager(model.pipe):  # compiled, unless PEFT adapters take part (engine/gpu.py)
        return _draw(model, params, passes, on_step)


def _draw(
    model: LoadedModel, params: RenderParams, passes: Passes, on_step: StepHook | None
) -> list[Image.Image]:
    src, first = passes.source, passes.first
    n = len(params.seeds)
    if src is None and inpainting_model(model):  # its UNet can't draw from text alone
        blank = Image.new("RGB", (params.width, params.height), (127, 127, 127))
        images = _img2img(
            model, params, [blank] * n, Pass(1.0, params.steps, params.steps), on_step, 0
        )
    elif src is None:
        images = render(model.pipe, params, on_step)
    elif first is None:
        images = [src.image] * n
    elif src.alpha is None:
        images = _img2img(model, params, [src.image] * n, first, on_step, 0)
    else:
        images = _inpaint(model, params, src, first, on_step)
    if passes.upscale is not None:
        big = [im.resize(passes.final, LANCZOS) for im in images]
        done = first.runs if first else 0
        with tiled(model.pipe.vae, max(passes.final) > TILED_FROM):
            images = _img2img(model, params, big, passes.upscale, on_step, done)
        images = [match_colours(im, b) for im, b in zip(images, big, strict=True)]
    return images


def _img2img(
    model: LoadedModel,
    params: RenderParams,
    images: list[Image.Image],
    step: Pass,
    on_step: StepHook | None,
    first_step: int,
) -> list[Image.Image]:
    asked = replace(params, steps=step.steps, width=images[0].width, height=images[0].height)
    if inpainting_model(model):  # all of it masked: its UNet needs a mask and a masked image
        whole = [Image.new("L", images[0].size, 255)] * len(images)
        pipe, more = derived(model, "inpaint"), {"mask_image": whole}
    else:
        pipe, more = derived(model, "img2img"), {}
    return render(pipe, asked, on_step, first_step, image=images, strength=step.strength, **more)


def inpainting_model(model: LoadedModel) -> bool:
    """An inpainting checkpoint: its UNet takes the mask and the masked picture too (9 channels)."""
    return model.pipe.unet.config.in_channels == 9


def _inpaint(
    model: LoadedModel, params: RenderParams, src: Source, step: Pass, on_step: StepHook | None
) -> list[Image.Image]:
    """Inpainted where `src` says, every pixel outside its alpha pasted back as it was."""
    assert src.alpha is not None and src.drawn is not None
    image, mask, box = src.image, src.drawn, src.crop
    if box is not None:  # drawn at the model's own size, then put back in its place
        size = crop_size(box, model.info.defaults.width)
        image = image.crop(box).resize(size, LANCZOS)
        mask = mask.crop(box).resize(size, Image.Resampling.BILINEAR)
    n = len(params.seeds)
    asked = replace(params, steps=step.steps, width=image.width, height=image.height)
    pipe = derived(model, "inpaint")
    drawn = render(
        pipe, asked, on_step, 0, image=[image] * n, mask_image=[mask] * n, strength=step.strength
    )
    if box is not None:
        whole = []
        for d in drawn:
            canvas = src.image.copy()
            canvas.paste(d.resize((box[2] - box[0], box[3] - box[1]), LANCZOS), box[:2])
            whole.append(canvas)
        drawn = whole
    return [paste_back(src.image, d, src.alpha) for d in drawn]


@contextmanager
def tiled(vae: Any, on: bool):
    """The VAE decoding in tiles while a large picture is drawn (shared: switched back)."""
    if not on:
        yield
        return
    vae.enable_tiling()
    try:
        yield
    finally:
        vae.disable_tiling()
