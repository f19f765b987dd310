"""PEFT LoRA training on the live pipeline, for the SD and SDXL families.

Follows diffusers' `train_dreambooth_lora(_sdxl).py`: a LoRA on the UNet attention projections
(every layer of the mid and up blocks on small models; optionally the text encoders too), noise
and timesteps sampled uniformly, MSE against the epsilon or v-prediction target (weighed by the
image's mask in masked training), optionally with prior preservation (prior.py). Unlike the
examples, the 1-5 images are encoded by the VAE and the captions by the text encoder(s) once,
so each step runs only the UNet. Runs on the device worker; between two steps it lets queued
generations run with the training adapter inactive."""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DiffusionPipeline
from PIL import Image

from engine.gpu import eager
from engine.jobs import Cancelled
from engine.training.adapter import ADAPTER, TrainingAdapter
from engine.training.config import TrainConfig
from engine.training.data import embed, loss_weights, preprocess, text_encoders
from engine.training.lean import LeanForward
from engine.training.prior import PriorBank, draw_prior_images
from engine.training.probe import LossProbe, target_for
from engine.training.state import TrainingState


@dataclass
class Hooks:
    on_step: Callable[[int, float], None]
    should_cancel: Callable[[], bool]
    has_pending: Callable[[], bool]
    run_pending: Callable[[], None]
    # Drawing the prior images: (done, total) sampling steps.
    on_prepare: Callable[[int, int], None] = lambda done, total: None
    # Sample images with the training adapter, after this step.
    sample: Callable[[int], None] = lambda step: None
    # Every `cfg.checkpoint_every` steps and at the last: the LoRA and all it takes to go on.
    checkpoint: Callable[[Checkpoint], None] = lambda point: None
    # Each step's own seconds (the spill watch's input: progress.SpillWatch).
    step_time: Callable[[float], None] = lambda seconds: None


@dataclass
class Checkpoint:
    state: TrainingState  # to go on from here (state.py)
    lora: dict[str, torch.Tensor]  # the LoRA file's tensors at this step
    adapter_metadata: dict[str, object]
    # `with point.strength(0.8):` renders with the training adapter at that strength.
    strength: Callable[[float], contextlib.AbstractContextManager[None]]


@dataclass
class TrainResult:
    state: dict[str, torch.Tensor]
    adapter_metadata: dict[str, object]
    losses: list[float] = field(default_factory=list)
    probe_before: float = 0.0
    probe_after: float = 0.0
    seconds: float = 0.0


class LoraTrainer:
    def __init__(self, pipe: DiffusionPipeline, cfg: TrainConfig, hooks: Hooks) -> None:
        self.pipe, self.cfg, self.hooks = pipe, cfg, hooks
        self.device = pipe.unet.device
        self.dtype = pipe.unet.dtype
        self.gpu = self.device.type == "cuda"
        self.sdxl = hasattr(pipe, "text_encoder_2")
        self.gen = torch.Generator("cpu").manual_seed(cfg.seed)
        self.adapter = TrainingAdapter(pipe, cfg)

    # -- setup -------------------------------------------------------------------------
    def _pixels(self, images: list[Image.Image]) -> torch.Tensor:
        pixels = preprocess(images, self.cfg.resolution)
        return torch.cat([pixels, pixels.flip(-1)]) if self.cfg.flip else pixels

    def _weights(self, masks, images, size: int) -> torch.Tensor | None:
        """Each picture's loss weights (flipped ones' flipped too), on the device."""
        w = loss_weights(masks or [None] * len(images), images, self.cfg.resolution, size)
        if w is None:
            return None
        return (torch.cat([w, w.flip(-1)]) if self.cfg.flip else w).to(self.device)

    def _encode(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        vae = self.pipe.vae
        # SDXL's VAE overflows in fp16; its config says so, as the pipelines honour.
        upcast = vae.dtype == torch.float16 and vae.config.get("force_upcast", False)
        dtype = torch.float32 if upcast else vae.dtype
        with torch.no_grad():
            if upcast:
                vae.to(dtype)
            dist = vae.encode(pixels.to(vae.device, dtype)).latent_dist
            if upcast:
                vae.to(torch.float16)
        return dist.mean.float(), dist.std.float()

    def _offload(self, where: torch.device | str) -> None:
        """On a GPU, park the VAE and frozen text encoders on the CPU once cached."""
        if not (self.gpu and self.cfg.cache_inputs):
            return
        self.pipe.vae.to(where)
        if not self.cfg.train_text_encoder:
            for enc in text_encoders(self.pipe):
                enc.to(where)

    # -- the loop ----------------------------------------------------------------------
    def run(
        self,
        images: list[Image.Image],
        resume: TrainingState | None = None,
        masks: list[Image.Image | None] | None = None,
    ) -> TrainResult:
        """Train, from the start or from `resume` (a checkpoint of the same run's settings);
        `masks` (L, white: learn) weigh each image's loss where given."""
        # A compiled UNet runs as plain PyTorch: gradients and an adapter that comes and goes
        # would recompile it, more than once (engine/gpu.py).
        with eager(self.pipe, only_with_adapters=False):
            return self._run(images, resume, masks)

    def _run(self, images, resume, masks) -> TrainResult:
        started = time.perf_counter()
        self.pipe.disable_lora()  # captions and latents of the base model, no user LoRA
        self.pixels = self._pixels(images)
        mean, std = self._encode(self.pixels)
        self.weights = self._weights(masks, images, mean.shape[-1])
        n = len(images)
        embeds, pooled = (None, None)
        if self.cfg.cache_inputs and not self.cfg.train_text_encoder:
            with torch.no_grad():
                embeds, pooled = embed(self.pipe, self.cfg.all_captions)
        self.bank = self.cfg.prior and self._prior_bank(n, embeds, pooled)
        self.threads = torch.get_num_threads()
        self._threads(training=True)
        named = self.adapter.add(self.gpu)
        params = list(named.values())
        self.lean = LeanForward(self.adapter.modules, ADAPTER)
        if self.device.type == "cpu":  # where Python overhead is a large part of a step
            self.lean.install()
        # Fused: one kernel for all LoRA tensors instead of a dozen ops each (~7 % of a
        # demo-model step on the CPU).
        fused = self.device.type in ("cpu", "cuda")
        opt = torch.optim.AdamW(params, lr=self.cfg.learning_rate, weight_decay=1e-4, fused=fused)
        # Cosine decay to 10 %: late steps at the full rate keep drifting from the prior.
        lr_decay = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda k: 0.1 + 0.45 * (1 + math.cos(math.pi * k / max(1, self.cfg.steps)))
        )
        if resume is not None:
            resume.restore(named, opt, lr_decay, self.gen, self.adapter.exported_name)
        sched = DDPMScheduler.from_config(self.pipe.scheduler.config)
        if self.cfg.gradient_checkpointing:
            self.pipe.unet.enable_gradient_checkpointing()
        self._offload("cpu")
        result = TrainResult(state={}, adapter_metadata={})
        probe = LossProbe(
            mean * self.pipe.vae.config.scaling_factor, n, sched, self.cfg.seed + 1, self.device
        )
        try:
            result.probe_before = probe.loss(self._predict, embeds, pooled)
            for step in range(resume.step if resume else 0, self.cfg.steps):
                if self.hooks.should_cancel():
                    raise Cancelled()
                if self.hooks.has_pending():
                    self._outside_step(self.hooks.run_pending)
                began = time.perf_counter()
                loss = self._step(step, opt, sched, mean, std, n, embeds, pooled)
                self.hooks.step_time(time.perf_counter() - began)  # `loss` is synced
                lr_decay.step()
                result.losses.append(loss)
                self.hooks.on_step(step + 1, loss)
                every = self.cfg.sample_every
                if every and ((step + 1) % every == 0 or step + 1 == self.cfg.steps):
                    self._outside_step(functools.partial(self.hooks.sample, step + 1))
                every = self.cfg.checkpoint_every
                if every and ((step + 1) % every == 0 or step + 1 == self.cfg.steps):
                    state = TrainingState.capture(step + 1, named, opt, lr_decay, self.gen)
                    point = Checkpoint(state, *self.adapter.export(), self.adapter.strength)
                    self._outside_step(functools.partial(self.hooks.checkpoint, point))
            result.probe_after = probe.loss(self._predict, embeds, pooled)
            result.state, result.adapter_metadata = self.adapter.export()
            result.seconds = time.perf_counter() - started
            return result
        finally:
            self.lean.remove()
            self._threads(training=False)
            self._offload(self.device)
            if self.cfg.gradient_checkpointing:
                self.pipe.unet.disable_gradient_checkpointing()

    def _prior_bank(self, n: int, embeds, pooled) -> PriorBank:
        prior = self.cfg.prior

        def progress(i: int) -> None:
            if self.hooks.should_cancel():
                raise Cancelled()
            self.hooks.on_prepare(i, prior.steps)

        latents = draw_prior_images(self.pipe, prior, self.cfg.resolution, self.cfg.seed, progress)

        def base_predict(noisy, t, caps):  # the base model: every adapter off
            with self.lean.paused():
                self.pipe.disable_lora()
                try:
                    return self._predict(noisy, t, caps, embeds, pooled)
                finally:
                    self.adapter.activate()

        count = -(-self.cfg.steps // prior.every)
        return PriorBank(self.pipe, prior, n, count, latents, self.cfg.seed, base_predict)

    def _outside_step(self, work: Callable[[], None]) -> None:
        """Work between two steps that renders (queued generations, samples): the model
        parts back on the device and the engine's thread count, then back to training."""
        self._offload(self.device)
        self._threads(training=False)
        try:
            with self.lean.paused():
                try:
                    work()
                finally:
                    self.adapter.activate()
        finally:
            self._threads(training=True)
            self._offload("cpu")

    def _threads(self, training: bool) -> None:
        """Training steps on `cfg.cpu_threads`; generations between them as the engine set."""
        n = self.cfg.cpu_threads if training else self.threads
        if n:
            torch.set_num_threads(n)

    def _predict(self, noisy, t, cap: int | list[int], embeds, pooled) -> torch.Tensor:
        caps = [cap] if isinstance(cap, int) else cap
        if embeds is None:
            with torch.set_grad_enabled(self.cfg.train_text_encoder):
                emb, pool = embed(self.pipe, [self.cfg.all_captions[c] for c in caps])
        else:
            emb, pool = embeds[caps], (pooled[caps] if pooled is not None else None)
        kwargs = {}
        if self.sdxl:
            r = self.cfg.resolution
            time_ids = torch.tensor([[r, r, 0, 0, r, r]] * len(caps), device=self.device)
            time_ids = time_ids.to(emb.dtype)
            kwargs["added_cond_kwargs"] = {"text_embeds": pool, "time_ids": time_ids}
        with torch.autocast(self.device.type, dtype=self.dtype, enabled=self.gpu):
            pred = self.pipe.unet(noisy.to(self.dtype), t, emb.to(self.dtype), **kwargs).sample
        return pred.float()

    def _step(self, step, opt, sched, mean, std, n, embeds, pooled) -> float:
        g = self.gen
        i = int(torch.randint(0, mean.shape[0], (1,), generator=g))
        m, s = (
            (mean[i : i + 1], std[i : i + 1])
            if self.cfg.cache_inputs
            else self._encode(self.pixels[i : i + 1])
        )
        latents = m + s * torch.randn(m.shape, generator=g).to(m.device)
        latents = (latents * self.pipe.vae.config.scaling_factor).to(self.device)
        noise = torch.randn(latents.shape, generator=g).to(self.device)
        t = torch.randint(0, sched.config.num_train_timesteps, (1,), generator=g).to(self.device)
        noisy = sched.add_noise(latents, noise, t)
        target = target_for(sched, latents, noise, t).float()
        mask = None if self.weights is None else self.weights[i : i + 1]
        if self.bank is None or step % self.bank.every:
            loss = masked_mse(self._predict(noisy, t, i % n, embeds, pooled), target, mask)
        else:  # one UNet call for both: on small inputs batch 2 costs far less than two calls
            d, weight = self.bank[step // self.bank.every], self.bank.weight
            both = torch.cat([noisy, d.noisy]), torch.cat([t, d.t])
            pred = self._predict(*both, [i % n, d.cap], embeds, pooled)
            loss = masked_mse(pred[:1], target, mask) + weight * F.mse_loss(pred[1:], d.target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    def remove(self) -> None:
        """Drop the training adapter from every module that has it."""
        self.adapter.remove()


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None):
    """The mean squared error over what the mask keeps, each latent weighed by it: the
    same scale as a plain MSE, however much of the picture the mask covers."""
    if mask is None:
        return F.mse_loss(pred, target)
    weighed = ((pred - target) ** 2 * mask).sum()
    return weighed / (mask.sum() * pred.shape[1]).clamp_min(1e-6)
