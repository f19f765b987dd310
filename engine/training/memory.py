"""Settings for the card: a training run planned from the GPU memory it can have.

Trainers that leave memory settings to the user run 10-100x slower when a step's memory
passes what the card has free (NVIDIA's drivers then spill to system RAM instead of failing).
Before a run starts, `plan_for_card` picks the fastest settings whose estimate fits, in this
order: everything kept (fastest), gradient checkpointing (recomputes activations in the
backward pass: ~25 % slower, a fraction of the memory), then a lower resolution. Batch stays
1: 1-5 images, prior preservation adds its picture as a second row. The inputs are already
cached (the VAE and frozen text encoders go to the CPU once the images and captions are
encoded), so they free their memory for the run. 8-bit Adam is not a lever here: a LoRA's
optimizer state is small (SDXL, rank 16: 23 M parameters, Adam's two moments 0.19 GB; 8-bit,
0.05 GB), less than the headroom kept for the allocator; it pays for full fine-tuning.

Pure and torch-free: `tests/test_card_plan.py` checks it with given memory figures, and the
GPU bench (`bench/gpu.py --case card-plan`) checks that planned runs fit under 12 and 16 GB
caps. The footprints are estimates at bf16, batch 1, the family's native side: SD 1.5's from
the H200 run (2.40 GB peak with checkpointing, 3.10 GB with prior preservation, see
docs/performance.md), SDXL's scaled from it by the UNet's size and latent count; the GPU run
replaces them with measured figures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from engine.training.config import TrainConfig

GB = 1 << 30
HEADROOM = 0.9  # of the free memory: the allocator's fragmentation, cuDNN's workspaces
BYTES_PER_LORA_PARAM = 16  # fp32: the weight, its gradient, Adam's two moments


@dataclass(frozen=True)
class Footprint:
    """One family's training memory, GB, bf16, batch 1 at `native` px."""

    native: int
    weights: float  # the UNet, on the card all along
    parked: float  # the VAE and text encoders: on the CPU while steps run
    activations: float  # one row's saved activations, no checkpointing
    checkpointed: float  # the same with gradient checkpointing
    text_encoder: float  # training the text encoder(s) too: their weights, grads, activations
    lora_params_per_rank: float  # attention projections of the UNet


FOOTPRINTS = {
    "sd": Footprint(512, 1.7, 0.4, 3.0, 0.6, 0.8, 0.2e6),
    "sdxl": Footprint(1024, 5.1, 1.8, 15.0, 2.6, 3.5, 1.45e6),
}
MIN_SIDE = {"sd": 384, "sdxl": 640}  # below this the family draws poorly: not worth training


@dataclass(frozen=True)
class CardPlan:
    gradient_checkpointing: bool
    resolution: int
    estimate_gb: float  # the run's peak, the UNet's weights included
    fits: bool
    words: str  # what the job shows


def estimate_gb(
    family: str, resolution: int, rank: int, rows: int, checkpointing: bool, text_encoder: bool
) -> float:
    """The peak of a run with these settings, GB."""
    f = FOOTPRINTS[family]
    scale = (resolution / f.native) ** 2 * rows
    activations = (f.checkpointed if checkpointing else f.activations) * scale
    lora = f.lora_params_per_rank * rank * BYTES_PER_LORA_PARAM / GB
    return f.weights + activations + lora + (f.text_encoder if text_encoder else 0.0)


def plan_for_card(
    family: str,
    free_gb: float,
    card_gb: float,
    resolution: int,
    rank: int,
    *,
    prior: bool = False,
    text_encoder: bool = False,
) -> CardPlan:
    """The fastest settings that fit `free_gb` (free now, the loaded model's weights on the
    card), on a card of `card_gb`; when none fits, the leanest, saying so."""
    f = FOOTPRINTS[family]
    room = (free_gb + f.weights + (0.0 if text_encoder else f.parked)) * HEADROOM
    rows = 2 if prior else 1
    lower = (resolution * 3 // 4 // 64 * 64, resolution // 2 // 64 * 64)
    sides = [resolution, *(s for s in lower if MIN_SIDE[family] <= s < resolution)]
    for checkpointing, side in [(False, resolution), *((True, side) for side in sides)]:
        peak = estimate_gb(family, side, rank, rows, checkpointing, text_encoder)
        if peak <= room:
            return _plan(checkpointing, side, peak, True, card_gb, free_gb, resolution)
    return _plan(checkpointing, side, peak, False, card_gb, free_gb, resolution)


def _plan(
    checkpointing: bool, side: int, peak: float, fits: bool, card_gb: float, free_gb: float,
    asked: int,
) -> CardPlan:  # fmt: skip
    said = [
        "gradient checkpointing on" if checkpointing else "gradient checkpointing off (fastest)",
        f"{side} px" + (f" (asked {asked}: lowered to fit)" if side != asked else ""),
    ]
    card = f"{card_gb:.0f} GB card, {free_gb:.1f} GB free"
    if fits:
        words = f"{card}: {'; '.join(said)}; about {peak:.1f} GB"
    else:
        words = (
            f"{card}: even with {'; '.join(said)} this run needs about {peak:.1f} GB in all, "
            "more than the card has with the model on it; it may spill into system memory "
            "(very slow) or run out of memory. "
            "Free the card (other programs, a second engine) or lower the resolution or rank"
        )
    return CardPlan(checkpointing, side, round(peak, 2), fits, words)


def card_table(cards_gb: tuple[int, ...] = (8, 12, 16, 24, 80)) -> list[list[str]]:
    """The docs' table: for each card, what SD 1.5 (512 px) and SDXL (1024 px) LoRAs of rank
    16 get with the model loaded and nothing else on the card."""
    rows = []
    for card in cards_gb:
        row = [f"{card} GB"]
        for family in ("sd", "sdxl"):
            f = FOOTPRINTS[family]
            free = card - 0.5 - f.weights - f.parked  # 0.5: the CUDA context
            plan = plan_for_card(family, free, card, f.native, 16)
            row.append(_cell(plan) if free > 0 else "the model does not fit")
        rows.append(row)
    return rows


def _cell(plan: CardPlan) -> str:
    if not plan.fits:
        return f"does not fit (needs ~{plan.estimate_gb:.1f} GB)"
    kept = "checkpointing" if plan.gradient_checkpointing else "all kept (fastest)"
    return f"{kept}; {plan.resolution} px; ~{plan.estimate_gb:.1f} GB"


def fit_to_card(
    cfg: TrainConfig, group: str, memory: tuple[float, float] | None
) -> tuple[TrainConfig, str | None]:
    """`cfg` with the plan's settings for a card with `memory` (free, total GB; None: not a
    CUDA card, where nothing is planned), and the plan in words. Small models (`group`
    "small") fit any card as they are."""
    if memory is None or group not in FOOTPRINTS:
        return cfg, None
    free, total = memory
    plan = plan_for_card(
        group,
        free,
        total,
        cfg.resolution,
        cfg.rank,
        prior=cfg.prior is not None,
        text_encoder=cfg.train_text_encoder,
    )
    fitted = replace(
        cfg, resolution=plan.resolution, gradient_checkpointing=plan.gradient_checkpointing
    )
    return fitted, plan.words


def card_memory_of(model: Any) -> tuple[float, float] | None:
    """(free, total) GB on a loaded model's card; None off CUDA (and no torch import)."""
    if not model.info.device.startswith("cuda"):
        return None
    from engine.gpu import card_memory

    return card_memory(model.pipe.unet.device)
