"""The demo model's training script, run for a few steps: its loss weighting and the record of
the runs that made a model, which is what lets anyone remake the shipped weights."""

from __future__ import annotations

import json
import sys

import torch
from diffusers import DDPMScheduler

from engine.demo_model import train
from engine.demo_model.components import SCHEDULE
from engine.demo_model.train import loss_weights


def test_noisy_weight_one_is_plain_v_loss_and_lower_weighs_the_noisy_end_less():
    sched = DDPMScheduler(num_train_timesteps=1000, **SCHEDULE)
    assert torch.allclose(loss_weights(sched, 1.0), torch.ones(1000))
    w = loss_weights(sched, 0.1)
    assert w[0] > 0.99 and abs(float(w[-1]) - 0.1) < 1e-6  # zero terminal SNR: exactly k
    assert bool((w[1:] <= w[:-1]).all())  # falls steadily towards the noisy end


def test_the_exported_model_records_every_run_that_made_it(tmp_path, monkeypatch):
    tiny = ["--vae-steps", "2", "--batch", "2", "--dataset", "8", "--ckpt-every", "1"]

    def run(*extra: str) -> dict:
        argv = ["train", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
        monkeypatch.setattr(sys, "argv", [*argv, *extra])
        train.main()
        return json.loads((tmp_path / "out" / "loramint.json").read_text())["training"]

    first = {"from": 0, "steps": 2, "noisy_weight": 1.0, "batch": 2}
    assert run(*tiny, "--steps", "2")["stages"] == [first]
    assert run(*tiny, "--steps", "2")["stages"] == [first]  # again: nothing new was trained
    then = run(*tiny, "--steps", "3", "--noisy-weight", "0.1")
    assert then["steps"] == 3
    assert then["stages"] == [first, {"from": 2, "steps": 3, "noisy_weight": 0.1, "batch": 2}]
    # Exported with no options, the record is the checkpoint's, not the defaults'.
    assert run("--export-only") == then
