"""`LORAMINT_DEVICE` as the engine reads it. CUDA itself needs a GPU (tests/test_cuda.py); here
torch's CUDA answers are stood in for, to hold what the GPU run found: `cuda` without an index
must not reach `torch.cuda.set_device`, which refuses a device with no index."""

from __future__ import annotations

import pytest
import torch

from engine.pipelines import pick_device


@pytest.mark.parametrize("choice, sets_card", [("cuda", False), ("cuda:1", True)])
def test_a_card_is_made_current_only_when_named(monkeypatch, choice, sets_card):
    made_current: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cuda, "set_device", made_current.append)
    device, dtype = pick_device(choice)
    assert device == torch.device(choice) and dtype == torch.bfloat16
    assert made_current == ([device] if sets_card else [])


def test_without_a_gpu_the_cpu_runs_in_float32():
    assert pick_device("cpu") == (torch.device("cpu"), torch.float32)
