"""What a LoRA trains on, in the model's terms: images as pixel tensors, their masks as loss
weights, captions as the embeddings the pipelines would compute for them."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image


def square(img: Image.Image, resolution: int) -> Image.Image:
    """The shorter side resized to `resolution`, centre-cropped."""
    w, h = img.size
    s = resolution / min(w, h)
    img = img.resize(
        (max(resolution, round(w * s)), max(resolution, round(h * s))), Image.Resampling.LANCZOS
    )
    left, top = (img.width - resolution) // 2, (img.height - resolution) // 2
    return img.crop((left, top, left + resolution, top + resolution))


def preprocess(images: list[Image.Image], resolution: int) -> torch.Tensor:
    """Squared to `resolution`, scaled to [-1, 1]: (n, 3, r, r)."""
    out = [np.asarray(square(img, resolution), dtype=np.float32) for img in images]
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2) / 127.5 - 1.0


def loss_weights(
    masks: list[Image.Image | None], images: list[Image.Image], resolution: int, size: int
) -> torch.Tensor | None:
    """Masked training's weights at the latents' `size`: each mask squared as its image is,
    averaged over the pixels each latent covers, then grown by one latent, so every latent
    that holds some of the subject counts fully and the edge beyond it is soft (0-1), not
    cut. Grown, a mask painted tight round the subject learnt as well as one painted 3 px
    wide (the demo model's corner-shape case: 85 and 90 % against 40 and 85 %). An image
    with no mask is learnt whole; None when none has one."""
    if all(m is None for m in masks):
        return None
    out = []
    for mask, img in zip(masks, images, strict=True):
        mask = mask if mask is not None else Image.new("L", img.size, 255)
        out.append(np.asarray(square(mask, resolution), dtype=np.float32) / 255.0)
    full = torch.from_numpy(np.stack(out))[:, None]
    area = torch.nn.functional.interpolate(full, size=(size, size), mode="area")
    return torch.nn.functional.max_pool2d(area, 3, stride=1, padding=1)


def text_encoders(pipe: DiffusionPipeline) -> list[torch.nn.Module]:
    return [m for m in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if m]


def embed(pipe: DiffusionPipeline, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Caption embeddings exactly as the pipelines compute them (no CFG)."""
    device = pipe.unet.device
    if not hasattr(pipe, "text_encoder_2"):
        ids = pipe.tokenizer(
            captions,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
            max_length=pipe.tokenizer.model_max_length,
        ).input_ids
        return pipe.text_encoder(ids.to(pipe.text_encoder.device))[0].to(device), None
    hidden, pooled = [], None
    for tok, enc in ((pipe.tokenizer, pipe.text_encoder), (pipe.tokenizer_2, pipe.text_encoder_2)):
        ids = tok(
            captions,
            padding="max_length",
            truncation=True,
            return_tensors="pt",
            max_length=tok.model_max_length,
        ).input_ids
        out = enc(ids.to(enc.device), output_hidden_states=True)
        pooled = out[0]
        hidden.append(out.hidden_states[-2])
    return torch.cat(hidden, dim=-1).to(device), pooled.to(device)
