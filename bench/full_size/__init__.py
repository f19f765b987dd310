"""Full-size Stable Diffusion architectures with random weights, built from their published
config values (the JSON files beside this one: SDXL base, SD 1.5, SD-Turbo), for the speed and
memory benches. Speed and memory don't depend on the weights' values, so nothing needs
downloading. `PARAMETERS` holds the parameter counts of the published models, which the tests
check the configs against; `--size tiny` shrinks the same configs so the CPU runs the same code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import diffusers
import torch
from diffusers import (
    AutoencoderKL,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

from engine.demo_model.tokenizer import build_tokenizer

HERE = Path(__file__).resolve().parent
Size = Literal["full", "tiny"]
PARAMETERS: dict[str, dict[str, int]] = {
    "sdxl": {
        "unet": 2_567_463_684,
        "vae": 83_653_863,
        "text_encoder": 123_060_480,  # CLIP ViT-L/14
        "text_encoder_2": 694_659_840,  # OpenCLIP ViT-bigG/14, with its projection
    },
    "sd15": {"unet": 859_520_964, "vae": 83_653_863, "text_encoder": 123_060_480},
    # SD 2.1's UNet; OpenCLIP ViT-H/14 up to its penultimate layer (23 of 24)
    "sd-turbo": {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840},
}
ARCHS = tuple(PARAMETERS)


def config(arch: str, part: str, size: Size = "full") -> dict[str, Any]:
    cfg = json.loads((HERE / arch / f"{part}.json").read_text())
    return _shrink(part, cfg) if size == "tiny" else cfg


def _shrink(part: str, cfg: dict[str, Any]) -> dict[str, Any]:
    """The same architecture, a few channels wide: every block kind stays, so the code that
    runs it (attention, LoRA targets, SDXL's added conditioning) is the same."""
    if part == "vae":
        return {**cfg, "block_out_channels": [8, 16, 16, 16], "norm_num_groups": 8,
                "layers_per_block": 1, "sample_size": 64}  # fmt: skip
    if part.startswith("text_encoder"):
        return {**cfg, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                "num_attention_heads": 2, "projection_dim": 32}  # fmt: skip
    if part != "unet":
        return cfg
    blocks = len(cfg["block_out_channels"])
    xl = cfg.get("addition_embed_type") == "text_time"
    out = {**cfg, "block_out_channels": [16 * (i + 1) for i in range(blocks)],
           "attention_head_dim": 2, "layers_per_block": 1, "norm_num_groups": 8,
           "sample_size": 8, "cross_attention_dim": 64 if xl else 32}  # fmt: skip
    if xl:  # pooled text (text_encoder_2's projection) + 6 size/crop numbers, 8 each
        out |= {"transformer_layers_per_block": 1, "addition_time_embed_dim": 8,
                "projection_class_embeddings_input_dim": 32 + 6 * 8}  # fmt: skip
    return out


def components(
    arch: str, size: Size = "full", device: str = "cpu", dtype: torch.dtype = torch.float32
) -> dict[str, torch.nn.Module]:
    """The models with random weights, made on `device` ("meta": shapes only, no memory)."""
    out: dict[str, torch.nn.Module] = {}
    with torch.device(device):
        for part in PARAMETERS[arch]:
            cfg = config(arch, part, size)
            if part == "unet":
                model: torch.nn.Module = UNet2DConditionModel.from_config(cfg)
            elif part == "vae":
                model = AutoencoderKL.from_config(cfg)
            else:
                cls = CLIPTextModel
                if cfg["architectures"] == ["CLIPTextModelWithProjection"]:
                    cls = CLIPTextModelWithProjection
                model = cls(CLIPTextConfig.from_dict(cfg))
            out[part] = model if device == "meta" else model.to(dtype)
    return out


def build(
    arch: str,
    size: Size = "full",
    device: str = "cpu",
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
):
    """A diffusers pipeline of the architecture with random weights, on `device` in `dtype`."""
    torch.manual_seed(seed)
    parts = components(arch, size, device, dtype)
    sched = config(arch, "scheduler")
    scheduler = getattr(diffusers, sched["_class_name"]).from_config(sched)
    tok = build_tokenizer(max_length=77)  # offline; prompts become characters, ids in range
    for name, model in parts.items():
        if name.startswith("text_encoder"):
            model.config.eos_token_id = tok.eos_token_id  # CLIP pools at the EOS token
    if arch == "sdxl":
        return StableDiffusionXLPipeline(
            parts["vae"], parts["text_encoder"], parts["text_encoder_2"], tok, tok,
            parts["unet"], scheduler,
        )  # fmt: skip
    return StableDiffusionPipeline(
        parts["vae"], parts["text_encoder"], tok, parts["unet"], scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
