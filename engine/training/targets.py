"""Which layers a LoRA trains (PEFT's `target_modules`), by model size."""

from __future__ import annotations

import re

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")
# Small models (the demo model) need every layer to learn a new shape, but only in the decoder
# half: LoRAs there need no backward pass through the encoder half, which saves a fifth of a
# step and draws stars as often (measured in engine/demo_model/README.md).
ALL_UNET_TARGETS = (
    *UNET_TARGETS,
    *("proj_in", "proj_out", "ff.net.0.proj", "ff.net.2"),
    *("conv1", "conv2", "conv_shortcut", "time_emb_proj"),
)
DECODER_BLOCKS = ("mid_block", "up_blocks")
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def target_modules(names: tuple[str, ...], blocks: tuple[str, ...] | None) -> list[str] | str:
    """PEFT's `target_modules`: layer names, or a regex (PEFT full-matches it) for some blocks."""
    if not blocks:
        return list(names)

    def alt(words: tuple[str, ...]) -> str:
        return "|".join(map(re.escape, words))

    return rf"({alt(blocks)})\..*\.({alt(names)})"
