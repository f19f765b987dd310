"""Live previews of a generation: the clean image the current step predicts (its x0, in latent
space; `engine.pipelines.render` taps it from the scheduler) as a small image.

By default a linear latent→RGB map, as A1111's "Approx cheap" and ComfyUI's latent previews
do: published factors for SD 1.x/2.x and SDXL, and the demo model's own (fitted from its VAE by
`fit_latent_rgb`, shipped in its loramint.json). With `LORAMINT_PREVIEW_VAE` naming a local
folder or a cached Hub id of a tiny autoencoder (TAESD/TAESDXL), it decodes with that instead.
"""

from __future__ import annotations

import base64
import logging
import math
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image

from engine import png

log = logging.getLogger(__name__)
PREVIEW_SIDE = 256  # the largest side of a preview image

# ComfyUI's `latent_formats.SD15` / `SDXL`: scaled latents → RGB in [-1, 1].
SD_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)
SD_BIAS = (0.0, 0.0, 0.0)
SDXL_FACTORS = (
    (0.3651, 0.4232, 0.4341),
    (-0.2533, -0.0042, 0.1068),
    (0.1076, 0.1111, -0.0362),
    (-0.3165, -0.2492, -0.2188),
)
SDXL_BIAS = (0.1084, -0.0175, -0.0011)


def to_image(rgb: torch.Tensor) -> Image.Image:
    """(B, 3, h, w) in [-1, 1] → one image, the batch in a grid as near square as it goes
    (2 x 2 for four: a row of four was a thin strip), shrunk to at most PREVIEW_SIDE. Never
    enlarged: the browser scales it up for free."""
    b = rgb.shape[0]
    cols = math.ceil(math.sqrt(b))
    tiles = list(rgb.float().clamp(-1, 1)) + [torch.ones_like(rgb[0])] * (-b % cols)
    rows = [torch.cat(tiles[i : i + cols], dim=-1) for i in range(0, len(tiles), cols)]
    grid = torch.cat(rows, dim=-2)  # (3, rows*h, cols*w)
    array = ((grid + 1) * 127.5).round().byte().permute(1, 2, 0).cpu().numpy()
    image = Image.fromarray(np.ascontiguousarray(array))
    if max(image.size) > PREVIEW_SIDE:
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.BILINEAR)
    return image


def data_url(image: Image.Image) -> str:
    """A PNG data URL (previews, samples, checkpoints' pictures)."""
    return "data:image/png;base64," + base64.b64encode(png.encode(image)).decode()


class LinearPreview:
    """Each latent pixel's channels times a 4×3 matrix, plus a bias."""

    def __init__(self, factors: Sequence[Sequence[float]], bias: Sequence[float]) -> None:
        self.factors = torch.tensor(factors, dtype=torch.float32)
        self.bias = torch.tensor(bias, dtype=torch.float32)

    def __call__(self, latents: torch.Tensor) -> Image.Image:
        lat = latents.detach().float().cpu()
        rgb = torch.einsum("bchw,cr->brhw", lat, self.factors) + self.bias.view(1, 3, 1, 1)
        return to_image(rgb)


class TinyVaePreview:
    """A tiny autoencoder (TAESD/TAESDXL) decodes the scaled latents directly."""

    def __init__(self, vae: torch.nn.Module) -> None:
        self.vae = vae

    def __call__(self, latents: torch.Tensor) -> Image.Image:
        vae = self.vae
        with torch.no_grad():
            rgb = vae.decode(latents.to(vae.device, vae.dtype) / vae.config.scaling_factor).sample
        return to_image(rgb)


def load_tiny_vae(where: str, device: torch.device, dtype: torch.dtype) -> TinyVaePreview:
    from diffusers import AutoencoderTiny

    vae = AutoencoderTiny.from_pretrained(where, torch_dtype=dtype, local_files_only=True)
    return TinyVaePreview(vae.to(device).eval())


def previewer_for(
    family: str, own: dict | None, tiny_vae: str | None, pipe
) -> LinearPreview | TinyVaePreview:
    """The preview maker for a loaded model: the tiny VAE when it can be had, else the model's
    own factors (the demo's), else its family's."""
    if tiny_vae:
        try:
            return load_tiny_vae(tiny_vae, pipe.unet.device, pipe.unet.dtype)
        except Exception as exc:  # any load failure means: fall back, and say why
            log.warning(
                "LORAMINT_PREVIEW_VAE=%s could not be loaded (%s: %s); using the linear preview",
                tiny_vae,
                type(exc).__name__,
                exc,
            )
    if own and "latent_rgb_factors" in own:
        return LinearPreview(own["latent_rgb_factors"], own["latent_rgb_bias"])
    if family == "sdxl":
        return LinearPreview(SDXL_FACTORS, SDXL_BIAS)
    return LinearPreview(SD_FACTORS, SD_BIAS)


def fit_latent_rgb(vae, images: list[Image.Image]) -> tuple[list[list[float]], list[float]]:
    """Least-squares factors and bias from a VAE's latents to its images' colours, each image
    averaged down to the latent grid: how the demo model's factors were made."""
    pixels = (
        torch.stack(
            [torch.from_numpy(np.asarray(im.convert("RGB"), dtype=np.float32)) for im in images]
        ).permute(0, 3, 1, 2)
        / 127.5
        - 1.0
    )
    with torch.no_grad():
        latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mean.float().cpu()
    latents = latents * vae.config.scaling_factor
    target = torch.nn.functional.adaptive_avg_pool2d(pixels, latents.shape[-2:])
    x = latents.permute(0, 2, 3, 1).reshape(-1, latents.shape[1])
    y = target.permute(0, 2, 3, 1).reshape(-1, 3)
    x1 = torch.cat([x, torch.ones(len(x), 1)], dim=1)
    solution = torch.linalg.lstsq(x1, y).solution  # (C + 1, 3)
    factors = [[round(v, 4) for v in row] for row in solution[:-1].tolist()]
    return factors, [round(v, 4) for v in solution[-1].tolist()]
