"""A fixed yardstick for "did training learn": the denoising loss on the same (image,
timestep, noise) draws before and after training. Single-step losses swing with the random
timestep, so the loss curve alone can't say whether the adapter learned the images."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler

# (caption index, noisy latents, timestep, caption embeds, pooled embeds) -> prediction
Predict = Callable[..., torch.Tensor]


def target_for(sched: DDPMScheduler, latents, noise, t) -> torch.Tensor:
    """What the UNet is trained to predict, per the scheduler's prediction type."""
    if sched.config.prediction_type == "epsilon":
        return noise
    return sched.get_velocity(latents, noise, t)


class LossProbe:
    def __init__(
        self,
        latents: torch.Tensor,
        n_captions: int,
        sched: DDPMScheduler,
        seed: int,
        device: torch.device,
        draws: int = 8,
    ) -> None:
        """`latents` are scaled latents, one row per (possibly flipped) image; row i uses
        caption i % n_captions."""
        g = torch.Generator("cpu").manual_seed(seed)
        self.draws = []
        steps = sched.config.num_train_timesteps
        for i in range(latents.shape[0]):
            for t in torch.linspace(50, steps - 50, draws).long():
                x0 = latents[i : i + 1].to(device)
                noise = torch.randn(x0.shape, generator=g).to(device)
                tt = t.view(1).to(device)
                noisy = sched.add_noise(x0, noise, tt)
                self.draws.append((i % n_captions, noisy, tt, target_for(sched, x0, noise, tt)))

    def loss(self, predict: Predict, embeds, pooled) -> float:
        with torch.no_grad():
            losses = [
                float(F.mse_loss(predict(noisy, t, cap, embeds, pooled), target))
                for cap, noisy, t, target in self.draws
            ]
        return sum(losses) / len(losses)
