"""A lean forward for the training adapter's LoRA layers, on the CPU.

PEFT's LoRA layer forward is general: it checks its arguments, walks the active adapters,
looks each part up in module dicts and calls them through `nn.Module.__call__`. On a small
model that bookkeeping, ~90 us a layer, is a sixth of a training step (profiled on the tiny
SDXL: 112 layers, ~10 ms of a 60 ms step). While one adapter trains and nothing else is
active, a layer is just `base(x) + B(A(x)) * scaling`; `LeanForward` installs that as each
layer's forward and takes it out again before anything else (a queued generation with other
LoRAs, the samples) runs. The sums are the same: tests/test_training.py checks the outputs
and gradients against PEFT's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from peft.tuners.lora import LoraLayer
from torch import nn


def _linear(layer: LoraLayer, a: nn.Linear, b: nn.Linear, s: float) -> Callable:
    base = layer.base_layer

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        delta = F.linear(F.linear(x, a.weight), b.weight)
        return F.linear(x, base.weight, base.bias) + (delta if s == 1 else delta * s)

    return forward


def _conv(layer: LoraLayer, a: nn.Conv2d, b: nn.Conv2d, s: float) -> Callable:
    base = layer.base_layer

    def forward(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        delta = b._conv_forward(a._conv_forward(x, a.weight, None), b.weight, None)
        return base._conv_forward(x, base.weight, base.bias) + (delta if s == 1 else delta * s)

    return forward


def _attention(attn: Attention) -> Callable:
    """diffusers' Attention.forward reads its processor's signature with `inspect` on every
    call to filter keyword arguments (~1 ms a step on the tiny SDXL); training passes none."""
    full = type(attn).forward

    def forward(hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        if kwargs:
            return full(attn, hidden_states, encoder_hidden_states, attention_mask, **kwargs)
        return attn.processor(
            attn,
            hidden_states,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
        )

    return forward


def _lean(layer: LoraLayer, adapter: str) -> Callable | None:
    """The lean forward, or None where the layer is not plain LoRA on this one adapter."""
    if (
        layer.merged
        or layer.disable_adapters
        or list(layer.active_adapters) != [adapter]
        or adapter in getattr(layer, "lora_variant", {})
        or not isinstance(layer.lora_dropout[adapter], nn.Identity)
    ):
        return None
    a, b, s = layer.lora_A[adapter], layer.lora_B[adapter], layer.scaling[adapter]
    base = layer.base_layer
    if a.bias is not None or b.bias is not None:
        return None
    if isinstance(base, nn.Linear) and isinstance(a, nn.Linear):
        return _linear(layer, a, b, s)
    if isinstance(base, nn.Conv2d) and isinstance(a, nn.Conv2d):
        return _conv(layer, a, b, s)
    return None


class LeanForward:
    """Install / remove lean forwards on every LoRA layer of `modules` for `adapter`."""

    def __init__(self, modules: Iterable[nn.Module], adapter: str) -> None:
        self.modules, self.adapter = list(modules), adapter
        self.installed: list[nn.Module] = []

    def install(self) -> None:
        self.remove()
        for module in self.modules:
            for layer in module.modules():
                forward = None
                if isinstance(layer, LoraLayer) and self.adapter in layer.lora_A:
                    forward = _lean(layer, self.adapter)
                elif isinstance(layer, Attention):
                    forward = _attention(layer)
                if forward is not None:
                    layer.forward = forward  # an instance attribute: the class's stays
                    self.installed.append(layer)

    def remove(self) -> None:
        for layer in self.installed:
            del layer.forward
        self.installed = []

    @contextmanager
    def paused(self) -> Iterator[None]:
        """PEFT's own forwards while other work runs: it may switch adapters on and off."""
        had = bool(self.installed)
        self.remove()
        try:
            yield
        finally:
            if had:
                self.install()
