"""Prior preservation by self-distillation, for LoRAs trained on 1-5 images.

DreamBooth's prior preservation trains on the base model's own images of the class next to the
user's. Here the base model draws a few images for the "prior captions" (the user's captions
without the trigger word, and the empty prompt that classifier-free guidance uses), and its own
predictions on noised copies of them become the targets. Without it the words every caption
shares ("a", "photo", the empty prompt) drift towards the new concept, and prompts without the
trigger word change too. Built before the adapter exists, so no base pass runs during training.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler, DiffusionPipeline

from engine.training.config import Prior


@dataclass(frozen=True)
class Draw:
    cap: int  # index into the trainer's caption list
    noisy: torch.Tensor
    t: torch.Tensor
    target: torch.Tensor


class PriorBank:
    def __init__(self, draws: list[Draw], weight: float) -> None:
        self.draws, self.weight = draws, weight

    @classmethod
    def build(
        cls,
        pipe: DiffusionPipeline,
        prior: Prior,
        first_cap: int,
        count: int,
        resolution: int,
        seed: int,
        predict: Callable[[torch.Tensor, torch.Tensor, list[int]], torch.Tensor],
    ) -> PriorBank:
        """`count` draws, one per training step: a LoRA can fit a small fixed set of draws and
        still drift everywhere else. `first_cap` is the index of `prior.captions[0]` in the
        trainer's caption list; `predict(noisy, t, caps)` is the base model's prediction."""
        k = len(prior.captions)
        latents = _draw_latents(pipe, prior, resolution, seed)
        sched = DDPMScheduler.from_config(pipe.scheduler.config)
        g = torch.Generator("cpu").manual_seed(seed + 2)
        device = pipe.unet.device
        draws: list[Draw] = []
        for start in range(0, count, 16):  # batched: much faster than one at a time
            js = [i % latents.shape[0] for i in range(start, min(count, start + 16))]
            x0 = latents[js].to(device)
            noise = torch.randn(x0.shape, generator=g).to(device)
            t = torch.randint(0, sched.config.num_train_timesteps, (len(js),), generator=g)
            noisy = sched.add_noise(x0, noise, t.to(device))
            caps = [first_cap + j % k for j in js]
            with torch.no_grad():
                target = predict(noisy, t.to(device), caps)
            draws += [
                Draw(c, noisy[i : i + 1], t[i : i + 1].to(device), target[i : i + 1])
                for i, c in enumerate(caps)
            ]
        return cls(draws, prior.weight)

    def __getitem__(self, step: int) -> Draw:
        return self.draws[step % len(self.draws)]


def _draw_latents(pipe: DiffusionPipeline, prior: Prior, resolution: int, seed: int):
    k = len(prior.captions)
    prompts = [prior.captions[j % k] for j in range(prior.images)]
    gens = [torch.Generator("cpu").manual_seed(seed + 1000 + j) for j in range(len(prompts))]
    with torch.no_grad():
        out = pipe(
            prompt=prompts,
            num_inference_steps=prior.steps,
            guidance_scale=prior.guidance,
            width=resolution,
            height=resolution,
            generator=gens,
            output_type="latent",
        )
    return out.images.float()
