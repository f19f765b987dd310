"""A LoRA training stopped part way goes on from its last checkpoint to the very LoRA it would
have made uninterrupted (engine/training/state.py): the LoRA's tensors, AdamW's moments, the
rate schedule and the generator drawing data, noise and timesteps all come back, through the
safetensors file a checkpoint is saved as. In-process on a tiny SD pipeline, with the small-model
defaults (prior preservation on, so its drawn targets are the same after a resume too)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from PIL import Image

from engine.contract.schemas import TrainOptions
from engine.jobs import Cancelled
from engine.training.defaults import train_config
from engine.training.state import TrainingState
from engine.training.trainer import Hooks, LoraTrainer
from engine.values import ModelDefaults, ModelInfo
from tests.tiny import tiny_sd

IMAGES = [Image.new("RGB", (64, 64), (200, 30, 30)), Image.new("RGB", (64, 64), (30, 30, 200))]


@pytest.fixture(scope="module")
def pipe():
    p = tiny_sd(seed=0)
    p.set_progress_bar_config(disable=True)
    return p


def config(**changes):
    info = ModelInfo("tiny", "sd", "cpu", "float32", ModelDefaults(4, 5.0, 64, 64))
    opts = TrainOptions(name="r", trigger_word="zxq", steps=12, seed=3, sample_every=0)
    cfg = train_config(opts, len(IMAGES), info)
    assert cfg.prior is not None  # a small model's default
    return dataclasses.replace(cfg, **{"checkpoint_every": 4, **changes})


def train(pipe, cfg, resume=None, stop_after=None):
    """The run's checkpoints and result (None when it was stopped)."""
    states: list[TrainingState] = []
    done = []
    hooks = Hooks(
        on_step=lambda step, loss: done.append(step),
        should_cancel=lambda: stop_after is not None and len(done) >= stop_after,
        has_pending=lambda: False,
        run_pending=lambda: None,
        checkpoint=lambda point: states.append(point.state),
    )
    trainer = LoraTrainer(pipe, cfg, hooks)
    try:
        return states, trainer.run(IMAGES, resume)
    except Cancelled:
        return states, None
    finally:
        trainer.remove()


def test_a_run_stopped_and_resumed_ends_with_the_same_lora(pipe):
    whole, result = train(pipe, config())
    assert [s.step for s in whole] == [4, 8, 12]  # and the last: a LoRA can be continued
    stopped, nothing = train(pipe, config(), stop_after=6)
    assert nothing is None and [s.step for s in stopped] == [4]
    saved = stopped[-1].to_bytes()  # as a checkpoint file holds it
    resumed_states, resumed = train(pipe, config(), resume=TrainingState.from_bytes(saved))
    assert [s.step for s in resumed_states] == [8, 12]
    for name, tensor in whole[1].lora.items():  # fp32, after step 8
        torch.testing.assert_close(resumed_states[0].lora[name], tensor, rtol=0, atol=1e-6)
    assert resumed.state.keys() == result.state.keys()
    for key, tensor in result.state.items():
        torch.testing.assert_close(resumed.state[key].float(), tensor.float(), rtol=0, atol=1e-6)


def test_a_lora_goes_on_from_its_weights_alone(pipe):
    """No state kept (an old or imported LoRA): the weights come back, the optimizer is new."""
    states, result = train(pipe, config(steps=4, checkpoint_every=0))
    weights = {k: v.float() for k, v in result.state.items()}
    more, _ = train(pipe, config(steps=5), resume=TrainingState.from_lora(4, weights))
    assert [s.step for s in more] == [5]
    first = next(iter(more[0].lora.values()))
    assert torch.isfinite(first).all()
    as_in_file = {
        "unet." + n.split(".", 1)[1].replace(".loramint_training.", "."): t
        for n, t in more[0].lora.items()
    }
    assert as_in_file.keys() == weights.keys()
    moved = max(float((as_in_file[k] - w).abs().max()) for k, w in weights.items())
    assert 0 < moved < 0.1  # went on from the weights: one small step away


def test_a_checkpoint_of_another_lora_is_refused(pipe):
    states, _ = train(pipe, config())
    with pytest.raises(ValueError, match="another LoRA"):
        train(pipe, config(rank=8), resume=states[0])
