"""What a LoRA trains on, in the model's terms: images as pixel tensors, captions as the
embeddings the pipelines would compute for them."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import DiffusionPipeline
from PIL import Image


def preprocess(images: list[Image.Image], resolution: int) -> torch.Tensor:
    """Resize the shorter side to `resolution`, centre-crop, scale to [-1, 1]."""
    out = []
    for img in images:
        w, h = img.size
        s = resolution / min(w, h)
        img = img.resize(
            (max(resolution, round(w * s)), max(resolution, round(h * s))), Image.Resampling.LANCZOS
        )
        left, top = (img.width - resolution) // 2, (img.height - resolution) // 2
        img = img.crop((left, top, left + resolution, top + resolution))
        out.append(torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1))
    return torch.stack(out) / 127.5 - 1.0


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
