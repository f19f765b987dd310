"""The device running out of memory, as the engine turns it into an answer (the real thing
needs a GPU: tests/test_cuda.py); and the demo trainer's loss weighting."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDPMScheduler

from engine.contract.errors import OutOfMemory
from engine.demo_model.train import SCHEDULE, loss_weights
from engine.pipelines import memory_guard


def test_out_of_memory_becomes_a_clear_503():
    with pytest.raises(OutOfMemory) as err, memory_guard("4 image(s) of 2048x2048", "ask less"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
    assert err.value.status_code == 503 and err.value.code == "out_of_memory"
    assert "4 image(s) of 2048x2048; ask less" in err.value.message
    with pytest.raises(ValueError), memory_guard("x", "y"):  # other errors pass through
        raise ValueError("not memory")


def test_noisy_weight_one_is_plain_v_loss_and_lower_weighs_the_noisy_end_less():
    sched = DDPMScheduler(num_train_timesteps=1000, **SCHEDULE)
    assert torch.allclose(loss_weights(sched, 1.0), torch.ones(1000))
    w = loss_weights(sched, 0.1)
    assert w[0] > 0.99 and abs(float(w[-1]) - 0.1) < 1e-6  # zero terminal SNR: exactly k
    assert bool((w[1:] <= w[:-1]).all())  # falls steadily towards the noisy end
