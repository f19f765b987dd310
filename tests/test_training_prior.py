"""Prior preservation's spacing (Prior.every): the prior term on every k-th step, batched with
the instance term, at k times the weight, so it pulls as hard on average for 1/k the cost."""

from __future__ import annotations

from PIL import Image

from engine.training.config import Prior, TrainConfig
from engine.training.trainer import Hooks, LoraTrainer
from tests.tiny import tiny_sd


def _calls_per_step(every: int, steps: int = 6) -> tuple[list[int], LoraTrainer]:
    """For each training step's UNet call: how many pictures it held (1, or 2 with a prior
    draw beside the instance image)."""
    pipe = tiny_sd(seed=0)
    prior = Prior(("a photo",), images=2, steps=2, weight=2.0, every=every)
    cfg = TrainConfig(("a photo of ohwx",), steps, 4, 1e-4, 32, 0, flip=False, prior=prior)
    trainer = LoraTrainer(
        pipe, cfg, Hooks(lambda s, loss: None, lambda: False, lambda: False, lambda: None)
    )
    sizes: list[int] = []
    predict, step = trainer._predict, trainer._step
    stepping = [False]

    def counted(noisy, t, cap, embeds, pooled):
        caps = [cap] if isinstance(cap, int) else cap
        # Inside a step, led by the instance caption: the step's own call (the loss probe
        # runs outside steps, the prior bank's fills have prior captions only).
        if stepping[0] and caps[0] == 0:
            sizes.append(len(caps))
        return predict(noisy, t, cap, embeds, pooled)

    def counted_step(*args):
        stepping[0] = True
        try:
            return step(*args)
        finally:
            stepping[0] = False

    trainer._predict, trainer._step = counted, counted_step  # type: ignore[method-assign]
    try:
        trainer.run([Image.new("RGB", (32, 32), (200, 40, 40))])
    finally:
        trainer.remove()
    return sizes, trainer


def test_the_prior_term_runs_every_k_steps_at_k_times_the_weight():
    sizes, trainer = _calls_per_step(every=3)
    assert sizes == [2, 1, 1, 2, 1, 1]
    assert trainer.bank.weight == 6.0 and trainer.bank.count == 2


def test_by_default_every_step_has_its_prior_term():
    sizes, trainer = _calls_per_step(every=1)
    assert sizes == [2] * 6
    assert trainer.bank.weight == 2.0 and trainer.bank.count == 6


def test_small_models_space_the_prior_term_and_large_ones_opt_in_unspaced():
    from engine.contract.schemas import TrainOptions
    from engine.training.defaults import SMALL_PRIOR_EVERY, train_config
    from engine.values import ModelDefaults, ModelInfo

    opts = TrainOptions(name="x", trigger_word="zxq")
    small = ModelInfo("builtin:demo", "sd", "cpu", "float32", ModelDefaults(15, 5.0, 64, 64))
    cfg = train_config(opts, 3, small)
    assert cfg.prior is not None and cfg.prior.every == SMALL_PRIOR_EVERY == 3
    assert cfg.prior.steps == 15  # drawn at the model's own default steps
    large = ModelInfo("sdxl", "sdxl", "cuda", "bfloat16", ModelDefaults(30, 5.0, 1024, 1024))
    assert train_config(opts, 3, large).prior is None
    opted = TrainOptions(name="x", trigger_word="zxq", prior_preservation=True)
    assert train_config(opted, 3, large).prior.every == 1
