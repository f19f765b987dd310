"""The lean LoRA forward (engine/training/lean.py) computes what PEFT's does, outputs and
gradients, on every layer kind the small-model defaults train, and steps aside for anything
that must see the adapters switched."""

from __future__ import annotations

import torch
from peft import LoraConfig
from peft.tuners.lora import LoraLayer

from engine.training.lean import LeanForward
from engine.training.targets import ALL_UNET_TARGETS, DECODER_BLOCKS, target_modules
from tests.tiny import tiny_sd

ADAPTER = "t"


def _unet():
    unet = tiny_sd(seed=0).unet
    cfg = LoraConfig(
        r=4,
        lora_alpha=8,  # scaling 2: the multiply path too
        init_lora_weights="gaussian",
        target_modules=target_modules(ALL_UNET_TARGETS, DECODER_BLOCKS),
    )
    unet.add_adapter(cfg, adapter_name=ADAPTER)
    unet.set_adapter(ADAPTER)
    torch.manual_seed(1)
    with torch.no_grad():  # B starts at zero: give it weights so the LoRA path counts
        for name, p in unet.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    return unet


def _run(unet):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 8, 8, generator=g)
    emb = torch.randn(2, 7, unet.config.cross_attention_dim, generator=g)
    unet.zero_grad(set_to_none=True)
    out = unet(x, torch.tensor([10, 500]), emb).sample
    if out.requires_grad:  # not with every adapter off
        out.square().mean().backward()
    grads = {n: p.grad.clone() for n, p in unet.named_parameters() if p.grad is not None}
    return out.detach(), grads


def test_lean_forward_matches_peft_outputs_and_gradients():
    unet = _unet()
    peft_out, peft_grads = _run(unet)
    lean = LeanForward([unet], ADAPTER)
    lean.install()
    kinds = {type(getattr(m, "base_layer", m)).__name__ for m in lean.installed}
    lean_out, lean_grads = _run(unet)
    lean.remove()
    assert kinds == {"Linear", "Conv2d", "Attention"}
    assert len(lean.installed) == 0 and not any("forward" in vars(m) for m in unet.modules())
    torch.testing.assert_close(lean_out, peft_out, rtol=1e-5, atol=1e-6)
    assert peft_grads.keys() == lean_grads.keys() and len(peft_grads) > 0
    for name, grad in peft_grads.items():
        torch.testing.assert_close(lean_grads[name], grad, rtol=1e-4, atol=1e-6)


def test_paused_gives_back_peft_so_switching_adapters_works():
    unet = _unet()
    lean = LeanForward([unet], ADAPTER)
    lean.install()
    with_lora, _ = _run(unet)
    with lean.paused():
        unet.disable_adapters()
        plain, _ = _run(unet)
        unet.enable_adapters()
    assert lean.installed  # back in place
    assert not torch.allclose(plain, with_lora)
    # Installed on a disabled adapter it would add the LoRA anyway: it declines instead.
    unet.disable_adapters()
    lean.install()
    assert not [m for m in lean.installed if isinstance(m, LoraLayer)]
