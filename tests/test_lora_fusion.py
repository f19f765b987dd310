"""The LoRA cache fuses a request's stack into the base weights (engine/lora_fusion.py), on a
tiny SDXL pipeline in-process: a fused stack draws what PEFT's own adapters draw, and taking it
out gives back the base weights bit for bit."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from peft import LoraConfig
from peft.utils import get_peft_model_state_dict

from engine.loras import LoraCache
from engine.pipelines import load_model, render
from engine.values import LoraRef, RenderParams
from tests.tiny import UNET_TARGETS

PARAMS = RenderParams("a red fox", "", 2, 5.0, 64, 64, (3,))


@pytest.fixture
def pipe(tiny_models):
    pipe, _ = load_model(str(tiny_models["sdxl"].folder), "cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def stack(tiny_models) -> list[LoraRef]:
    loras = tiny_models["sdxl"].loras
    return [LoraRef("alice", n, loras[n], s) for n, s in (("style_a", 0.8), ("style_b", 0.6))]


def draw(pipe) -> np.ndarray:
    return np.asarray(render(pipe, PARAMS)[0], dtype=np.int16)


def base_weights(pipe) -> dict[str, torch.Tensor]:
    """Every weight that isn't an adapter's, as a copy, by its name before PEFT wrapped it."""
    return {
        k.replace(".base_layer", ""): v.clone()
        for k, v in pipe.unet.state_dict().items()
        if "lora_" not in k
    }


def peft_draw(pipe, cache: LoraCache, strengths: list[float]) -> np.ndarray:
    """The same stack drawn by PEFT's own active adapters, the cache's fusion taken out."""
    names = [n for n, _ in cache._active]
    cache.invalidate()
    pipe.enable_lora()
    pipe.set_adapters(names, adapter_weights=strengths)
    return draw(pipe)


def test_a_fused_stack_draws_what_peft_adapters_draw(pipe, stack):
    base = draw(pipe)
    cache = LoraCache(pipe, capacity=4)
    cache.activate(stack)
    fused = draw(pipe)
    diff = np.abs(fused - peft_draw(pipe, cache, [r.strength for r in stack]))
    # Rounding only: on this tiny random model PEFT's own merge is as far (mean 0.5) from its
    # unmerged adapters; what the stack changes is 40 times that.
    assert diff.mean() < 0.05 * np.abs(fused - base).mean() and diff.max() <= 8


def test_taking_a_stack_out_gives_back_the_base_weights_exactly(pipe, stack):
    before_image, before = draw(pipe), base_weights(pipe)
    cache = LoraCache(pipe, capacity=4)
    cache.activate(stack)
    assert not np.array_equal(draw(pipe), before_image)
    cache.activate([])
    after = base_weights(pipe)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert np.array_equal(draw(pipe), before_image)


def test_switching_stacks_equals_the_new_stack_alone(pipe, stack, tiny_models):
    cache = LoraCache(pipe, capacity=4)
    cache.activate(stack)
    cache.activate(stack[1:])
    switched = draw(pipe)
    other, _ = load_model(str(tiny_models["sdxl"].folder), "cpu")
    other.set_progress_bar_config(disable=True)
    LoraCache(other, capacity=4).activate(stack[1:])
    assert np.array_equal(switched, draw(other))
    # A LoRA at strength 0 draws the base image, bit for bit.
    cache.activate([])
    base = draw(pipe)
    cache.activate([LoraRef("alice", "a", stack[0].path, 0.0)])
    assert np.array_equal(draw(pipe), base)


def test_a_stack_that_cant_be_fused_runs_as_adapters(pipe, tmp_path: Path):
    """DoRA's merge is not a plain delta: such a stack stays unfused, and leaves no trace."""
    torch.manual_seed(5)
    unet = pipe.unet
    cfg = LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, use_dora=True,
                     target_modules=list(UNET_TARGETS))  # fmt: skip
    unet.add_adapter(cfg, adapter_name="dora")
    state = {k: v * 4 for k, v in get_peft_model_state_dict(unet, adapter_name="dora").items()}
    unet.delete_adapters("dora")
    from diffusers.utils import convert_state_dict_to_diffusers

    path = tmp_path / "dora.safetensors"
    type(pipe).save_lora_weights(
        tmp_path, unet_lora_layers=convert_state_dict_to_diffusers(state), weight_name=path.name
    )
    before_image, before = draw(pipe), base_weights(pipe)
    cache = LoraCache(pipe, capacity=4)
    dora = [LoraRef("alice", "dora.safetensors", path, 1.0)]
    cache.activate(dora)
    drawn = draw(pipe)
    assert np.abs(drawn - before_image).mean() > 0.5
    assert np.array_equal(drawn, peft_draw(pipe, cache, [1.0]))
    cache.activate(dora)
    cache.activate([])
    assert np.array_equal(draw(pipe), before_image)
    after = base_weights(pipe)
    assert all(torch.equal(after[k], before[k]) for k in before)
