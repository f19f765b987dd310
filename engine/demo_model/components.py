"""What the demo model is: its components' configurations, its noise schedule and sampling
defaults, and how a trained set of them is saved as the model LoraMint loads (fp16 safetensors
and `loramint.json`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL,
    DPMSolverMultistepScheduler,
    StableDiffusionPipeline,
    UNet2DConditionModel,
)
from transformers import CLIPTextConfig, CLIPTextModel

from engine.demo_model.shapes import BACKGROUNDS, COLOURS, SHAPES, draw, random_scene
from engine.demo_model.tokenizer import build_tokenizer
from engine.previews import fit_latent_rgb

SCHEDULE = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    rescale_betas_zero_snr=True,
    prediction_type="v_prediction",
)
DEFAULTS = {"steps": 10, "guidance_scale": 5.0}
MAX_TOKENS = 24
PREVIEW_FIT = "engine.previews.fit_latent_rgb on 256 random_scene(Random(0)) images"


def word_merges(words: list[str]) -> list[str]:
    """BPE merges that make each caption word one token (chained left to right)."""
    merges: list[str] = []
    for w in words:
        parts = list(w[:-1]) + [w[-1] + "</w>"]
        while len(parts) > 1:
            m = f"{parts[0]} {parts[1]}"
            if m not in merges:
                merges.append(m)
            parts = [parts[0] + parts[1], *parts[2:]]
    return merges


def build_components() -> dict:
    words = ["a", "on", "background", *COLOURS, *SHAPES, *BACKGROUNDS]
    # Captions are under a dozen tokens; a short context keeps every step cheap.
    tok = build_tokenizer(word_merges(words), max_length=MAX_TOKENS)
    te = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tok),
            hidden_size=64,
            intermediate_size=128,
            num_attention_heads=4,
            num_hidden_layers=2,
            max_position_embeddings=MAX_TOKENS,
            projection_dim=64,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
    )
    vae = AutoencoderKL(
        block_out_channels=(16, 32, 64),
        layers_per_block=1,
        latent_channels=4,
        down_block_types=["DownEncoderBlock2D"] * 3,
        up_block_types=["UpDecoderBlock2D"] * 3,
        norm_num_groups=16,
        sample_size=64,
    )
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 96),
        layers_per_block=1,
        norm_num_groups=16,
        cross_attention_dim=64,
        attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    )
    return {"tokenizer": tok, "text_encoder": te, "vae": vae, "unet": unet}


def pin_posterior(vae: AutoencoderKL) -> None:
    """Make the encoder's log-variance -30 whatever the image, so a posterior sample is its
    mean (std ~3e-7): the VAE was trained with a wide posterior the UNet never saw."""
    latent = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[latent:] = 0
        vae.quant_conv.bias[latent:] = -30.0


def save_model(c: dict, scale: float, out: Path, training: dict) -> None:
    """The EMA UNet and text encoder with the VAE, in fp16, and `loramint.json`: sampling
    defaults, the record of the training, and the preview's latent-to-RGB fit."""
    vae = c["vae"]
    vae.register_to_config(scaling_factor=scale)
    pin_posterior(vae)
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=c["ema_text_encoder"],
        tokenizer=c["tokenizer"],
        unet=c["ema_unet"],
        scheduler=DPMSolverMultistepScheduler(**SCHEDULE, timestep_spacing="trailing"),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True)
    fit_rng = random.Random(0)
    factors, bias = fit_latent_rgb(vae.float(), [draw(random_scene(fit_rng)) for _ in range(256)])
    preview = {"latent_rgb_factors": factors, "latent_rgb_bias": bias, "fitted": PREVIEW_FIT}
    (out / "loramint.json").write_text(
        json.dumps({"defaults": DEFAULTS, "training": training, "preview": preview}, indent=2)
    )
