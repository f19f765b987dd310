"""Prior preservation by self-distillation, for LoRAs trained on 1-5 images.

DreamBooth's prior preservation trains on the base model's own images of the class next to the
user's. Here the base model draws a few images for the "prior captions" (the user's captions
without the trigger word, and the empty prompt that classifier-free guidance uses), and its own
predictions on noised copies of them become the targets. Without it the words every caption
shares ("a", "photo", the empty prompt) drift towards the new concept, and prompts without the
trigger word change too. The images are drawn before training; the targets are made 16 at a
time as the steps reach them, so the first step does not wait for all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler, DiffusionPipeline

from engine.training.config import Prior

BATCH = 16  # targets made per base-model call: much faster than one at a time


@dataclass(frozen=True)
class Draw:
    cap: int  # index into the trainer's caption list
    noisy: torch.Tensor
    t: torch.Tensor
    target: torch.Tensor


class PriorBank:
    """`count` draws, one per prior step (every `prior.every` training steps): a LoRA can
    fit a small fixed set of draws and still drift everywhere else. `first_cap` is the index
    of `prior.captions[0]` in the trainer's caption list; `predict(noisy, t, caps)` is the
    base model's prediction (no adapter)."""

    def __init__(
        self,
        pipe: DiffusionPipeline,
        prior: Prior,
        first_cap: int,
        count: int,
        latents: torch.Tensor,
        seed: int,
        predict: Callable[[torch.Tensor, torch.Tensor, list[int]], torch.Tensor],
    ) -> None:
        self.prior, self.first_cap, self.count, self.latents = prior, first_cap, count, latents
        self.predict = predict
        self.weight, self.every = prior.weight * prior.every, prior.every
        self.sched = DDPMScheduler.from_config(pipe.scheduler.config)
        self.device = pipe.unet.device
        self.gen = torch.Generator("cpu").manual_seed(seed + 2)
        self.draws: list[Draw] = []

    def __getitem__(self, step: int) -> Draw:
        i = step % self.count
        while len(self.draws) <= i:
            self._fill()
        return self.draws[i]

    def _fill(self) -> None:
        start, k, g = len(self.draws), len(self.prior.captions), self.gen
        js = [i % self.latents.shape[0] for i in range(start, min(self.count, start + BATCH))]
        x0 = self.latents[js].to(self.device)
        noise = torch.randn(x0.shape, generator=g).to(self.device)
        t = torch.randint(0, self.sched.config.num_train_timesteps, (len(js),), generator=g)
        noisy = self.sched.add_noise(x0, noise, t.to(self.device))
        caps = [self.first_cap + j % k for j in js]
        with torch.no_grad():
            target = self.predict(noisy, t.to(self.device), caps)
        self.draws += [
            Draw(c, noisy[i : i + 1], t[i : i + 1].to(self.device), target[i : i + 1])
            for i, c in enumerate(caps)
        ]


def draw_prior_images(
    pipe: DiffusionPipeline,
    prior: Prior,
    resolution: int,
    seed: int,
    on_step: Callable[[int], None],
) -> torch.Tensor:
    """The base model's own images for the prior captions, as latents. `on_step(i)` after
    each of the `prior.steps` sampling steps (it may raise to stop)."""
    k = len(prior.captions)
    prompts = [prior.captions[j % k] for j in range(prior.images)]
    gens = [torch.Generator("cpu").manual_seed(seed + 1000 + j) for j in range(len(prompts))]

    def callback(_pipe, i: int, _t, kwargs: dict) -> dict:
        on_step(i + 1)
        return kwargs

    with torch.no_grad():
        out = pipe(
            prompt=prompts,
            num_inference_steps=prior.steps,
            guidance_scale=prior.guidance,
            width=resolution,
            height=resolution,
            generator=gens,
            output_type="latent",
            callback_on_step_end=callback,
        )
    return out.images.float()
