"""Settings for the card (engine/training/memory.py) and the spill watch, with given figures:
no GPU needed. The GPU bench checks the planned runs fit (bench/gpu.py --case card-plan)."""

from __future__ import annotations

import pytest

from engine.training.config import TrainConfig
from engine.training.memory import FOOTPRINTS, card_table, fit_to_card, plan_for_card
from engine.training.progress import SpillWatch


def free_on(card_gb: float, family: str) -> float:
    """Free memory on a card with the model loaded and nothing else."""
    f = FOOTPRINTS[family]
    return card_gb - 0.5 - f.weights - f.parked


def test_a_big_card_keeps_everything_for_speed() -> None:
    plan = plan_for_card("sdxl", free_on(80, "sdxl"), 80, 1024, 16)
    assert plan.fits and not plan.gradient_checkpointing and plan.resolution == 1024
    assert plan.words.startswith("80 GB card, 72.6 GB free: gradient checkpointing off")


def test_sixteen_gb_sdxl_checkpoints_and_stays_under_14_gb() -> None:
    plan = plan_for_card("sdxl", free_on(16, "sdxl"), 16, 1024, 16)
    assert plan.fits and plan.gradient_checkpointing and plan.resolution == 1024
    assert plan.estimate_gb <= 14  # the bound for LoraMint's defaults
    assert "gradient checkpointing on; 1024 px" in plan.words


def test_prior_preservation_needs_more_than_without() -> None:
    free = free_on(24, "sdxl")
    alone = plan_for_card("sdxl", free, 24, 1024, 16)
    prior = plan_for_card("sdxl", free, 24, 1024, 16, prior=True)
    assert not alone.gradient_checkpointing and prior.gradient_checkpointing  # two rows


def test_too_little_lowers_the_resolution_then_says_it_does_not_fit() -> None:
    lowered = plan_for_card("sdxl", 1.0, 8, 1024, 16)
    assert lowered.fits and lowered.resolution == 768 and "asked 1024: lowered" in lowered.words
    hopeless = plan_for_card("sdxl", 0.1, 8, 1024, 16)
    assert not hopeless.fits and hopeless.resolution == 768  # the leanest it would go
    assert "spill into system memory" in hopeless.words and "lower the resolution" in hopeless.words
    sd = plan_for_card("sd", 0.1, 4, 512, 16)
    assert sd.resolution >= 384  # never below what the family draws well


def test_the_docs_table_is_the_planners() -> None:
    from pathlib import Path

    text = (Path(__file__).parent.parent / "docs/performance.md").read_text()
    for row in card_table():
        assert "| " + " | ".join(row) + " |" in text


def test_fit_to_card_changes_only_what_the_plan_sets() -> None:
    cfg = TrainConfig(captions=("a ohwx",), steps=10, rank=16, learning_rate=1e-4,
                      resolution=1024, seed=0)  # fmt: skip
    assert fit_to_card(cfg, "sdxl", None) == (cfg, None)  # not a CUDA card
    assert fit_to_card(cfg, "small", (1.0, 8.0)) == (cfg, None)  # the demo model fits anything
    fitted, words = fit_to_card(cfg, "sdxl", (1.0, 8.0))
    assert fitted.gradient_checkpointing and fitted.resolution == 768 and "8 GB card" in words
    assert fitted.steps == cfg.steps and fitted.rank == cfg.rank


@pytest.mark.parametrize(
    "device", ["cuda", "cuda:1", "mps"], ids=["nvidia", "second-nvidia", "apple"]
)
def test_spill_watch_says_once_when_steps_jump(device: str) -> None:
    watch = SpillWatch(device)
    said = [watch.step(t) for t in [5.0, 1.0, 1.0, 1.0, 1.0] + [0.3] * 10]  # warm-up, rate
    said += [watch.step(t) for t in [1.2, 0.3, 1.0, 1.0]]  # one-offs: a stall, not a spill
    assert not any(said)
    words = [watch.step(1.0) for _ in range(5)]
    assert words[0] is not None and words[1:] == [None] * 4
    assert "3x as long" in words[0] and "0.30 s -> 1.00 s" in words[0]
    assert ("spilling into system RAM" in words[0]) == device.startswith("cuda")


def test_spill_watch_is_quiet_on_the_cpu_and_for_steady_runs() -> None:
    cpu, steady = SpillWatch("cpu"), SpillWatch("cuda")
    assert not any(cpu.step(t) for t in [0.1] * 15 + [5.0] * 10)
    assert not any(steady.step(t) for t in [0.3] * 15 + [0.8] * 50)  # 2.7x: under the bar
