"""What one training run trains with: plain values, no torch, so the service can build them
without loading the model code."""

from __future__ import annotations

from dataclasses import dataclass

from engine.training.targets import UNET_TARGETS


@dataclass(frozen=True)
class Prior:
    """Prior preservation's settings (prior.py)."""

    captions: tuple[str, ...]
    images: int = 8  # drawn by the base model, the captions taken in turn
    steps: int = 20
    guidance: float = 5.0
    weight: float = 1.0
    # The prior term on every this many steps, at `every` times the weight: the same pull on
    # average for a fraction of the batch-2 steps.
    every: int = 1


@dataclass(frozen=True)
class TrainConfig:
    captions: tuple[str, ...]
    steps: int
    rank: int
    learning_rate: float
    resolution: int
    seed: int
    train_text_encoder: bool = False
    dora: bool = False  # PEFT's use_dora: a magnitude vector per layer besides A and B
    flip: bool = True
    unet_targets: tuple[str, ...] = UNET_TARGETS
    unet_blocks: tuple[str, ...] | None = None  # the targets only inside these (None: anywhere)
    # Recompute activations in the backward pass: a fraction of the memory, ~25 % slower.
    # Set by the card's plan (memory.py) where the run would not fit otherwise.
    gradient_checkpointing: bool = False
    # Torch threads while training (None: unchanged). A small model's steps are so short that
    # one thread beats two (~12 % faster on the demo model).
    cpu_threads: int | None = None
    prior: Prior | None = None  # see prior.py
    sample_every: int = 0  # draw the sample prompts every this many steps (0: never)
    sample_prompts: tuple[str, ...] = ()
    checkpoint_every: int = 0  # keep what it takes to go on every this many steps (0: never)
    # False re-encodes image and caption every step, as diffusers' examples do; kept only so
    # bench/train.py can measure what caching saves.
    cache_inputs: bool = True

    @property
    def alpha(self) -> int:
        return self.rank

    @property
    def all_captions(self) -> list[str]:
        """Instance captions, then prior captions: a caption index points into this."""
        return [*self.captions, *(self.prior.captions if self.prior else ())]
