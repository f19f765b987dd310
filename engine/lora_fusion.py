"""A LoRA stack fused into the base weights, and taken out again exactly.

Unfused PEFT adapters cost every step: on an H200, two rank-16 LoRAs on SDXL's attention made
a 1024 px, 30-step image 1.4x slower, and switching them on and off per request with
`set_adapters` 2.7x (bench/gpu.py, #17). Fused, a stack costs nothing per step: each layer's
weight becomes W + sum(strength * delta), the deltas summed in float32. PEFT's own unmerge
subtracts the deltas again, which in half precision does not give W back (pixels up to 4
levels off on the H200), so the weights a stack replaces are kept and copied back: no LoRA
after a stack draws the very image it drew before.
"""

from __future__ import annotations

import torch
from peft.tuners.lora import LoraLayer


def fusable(layer: LoraLayer, adapter: str) -> bool:
    """Plain low-rank deltas only: DoRA and other variants, and LoRA biases, merge otherwise."""
    return (
        adapter not in layer.lora_variant
        and not layer.lora_bias.get(adapter, False)
        and isinstance(getattr(layer.get_base_layer(), "weight", None), torch.Tensor)
    )


class FusedStack:
    """The base weights a fused stack replaced, kept until `restore` puts them back."""

    def __init__(self) -> None:
        self._originals: dict[LoraLayer, torch.Tensor] = {}

    @torch.no_grad()
    def fuse(self, stack: list[tuple[str, float, list[LoraLayer]]]) -> None:
        """Fuse each (adapter, strength, its layers) into the base weights; nothing must be
        fused already."""
        assert not self._originals, "restore() before fusing another stack"
        per_layer: dict[LoraLayer, list[tuple[str, float]]] = {}
        for adapter, strength, layers in stack:
            for layer in layers:
                per_layer.setdefault(layer, []).append((adapter, strength))
        # One layer at a time: a float32 delta for every layer at once would take SDXL's
        # attention weights twice over (3.8 GB) on top of the model.
        for layer, adapters in per_layer.items():
            weight = layer.get_base_layer().weight
            # Off the GPU: its memory is for the model; a copy back is one transfer per switch.
            self._originals[layer] = weight.detach().to("cpu", copy=True)
            fused = weight.to(torch.float32, copy=True)  # a float32 weight is not summed in place
            for adapter, strength in adapters:
                fused += layer.get_delta_weight(adapter).float().to(weight.device) * strength
            weight.copy_(fused.to(weight.dtype))

    @torch.no_grad()
    def restore(self) -> None:
        for layer, original in self._originals.items():
            layer.get_base_layer().weight.copy_(original)
        self._originals.clear()
