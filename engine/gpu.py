"""What the card can do, and making the most of it: the memory a training can have
(`card_memory`, for training/memory.py's plan), why a GPU goes unused (`gpu_note`, in
/health), and `LORAMINT_COMPILE` (`compile_model`, `eager`)."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

log = logging.getLogger(__name__)


def card_memory(device: torch.device) -> tuple[float, float] | None:
    """(free, total) GB this process can still have on its card, under its
    `limit_memory` share; None off CUDA."""
    if device.type != "cuda":
        return None
    free, total = torch.cuda.mem_get_info(device)
    allocated = torch.cuda.memory_allocated(device)
    cached = torch.cuda.memory_reserved(device) - allocated  # ours to reuse
    share = torch.cuda.get_per_process_memory_fraction(device)
    return min(free + cached, total * share - allocated) / 2**30, total * share / 2**30


def gpu_note(run=subprocess.run) -> str | None:
    """Why an NVIDIA GPU that `nvidia-smi -L` lists goes unused (this engine chose the CPU);
    None when there is none. `run` is subprocess.run (a test gives a stand-in driver)."""
    try:
        out = run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    gpus = [line for line in (out.stdout or "").splitlines() if line.startswith("GPU ")]
    if out.returncode != 0 or not gpus:
        return None
    name = gpus[0].split(":", 1)[1].split("(UUID")[0].strip()
    if torch.version.cuda is None:
        return (
            f"{name} found, but this torch ({torch.__version__}) is a CPU-only build, so the "
            "engine runs on the CPU. Install its CUDA build: delete the engine venv's "
            ".requirements.sha256 and start again (the install picks the build for your "
            "driver when nvidia-smi answers; LORAMINT_ENGINE__TORCHINDEX overrides it)"
        )
    try:
        torch.cuda.init()
        why = "torch.cuda.is_available() is False"
    except Exception as exc:  # the driver's own words: too old, not loaded, no device
        why = str(exc).strip().splitlines()[0]
    return (
        f"{name} found, but torch (built for CUDA {torch.version.cuda}) can't use it: {why}. "
        "Update the NVIDIA driver, or install an older CUDA build of torch "
        "(LORAMINT_ENGINE__TORCHINDEX=cu126)"
    )


def compiled(module: torch.nn.Module) -> bool:
    return getattr(module, "_compiled_call_impl", None) is not None


def compile_model(pipe, width: int, height: int, guidance: float) -> float:
    """`LORAMINT_COMPILE`: torch.compile the UNet and the VAE decoder in place (the pipeline,
    its img2img and inpainting siblings and the LoRA cache keep their modules), then draw once
    at the model's size so the first request does not pay for compiling: the seconds that
    took. A stack fused into the weights changes only weights, which compiled code reads as
    inputs: no recompile; the first LoRA loaded adds PEFT's layers: one recompile."""
    from engine.pipelines import render
    from engine.values import RenderParams

    started = time.perf_counter()
    parts = (pipe.unet, pipe.vae.decoder)
    for part in parts:
        part.compile()
    try:
        render(pipe, RenderParams("warm-up", "", 2, guidance, width, height, (0,)))
    except Exception as exc:  # no C compiler, no Triton on this platform: run uncompiled
        for part in parts:
            part._compiled_call_impl = None
        raise CompileFailed(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}") from exc
    return time.perf_counter() - started


class CompileFailed(Exception):
    """LORAMINT_COMPILE could not compile here; the model runs uncompiled."""


def _live_adapters(unet: torch.nn.Module) -> bool:
    from peft.tuners.tuners_utils import BaseTunerLayer

    return any(
        isinstance(m, BaseTunerLayer) and not m.disable_adapters and m.active_adapters
        for m in unet.modules()
    )


@contextmanager
def eager(pipe, only_with_adapters: bool = True) -> Iterator[None]:
    """Compiled modules run as plain PyTorch inside, where compiled code would recompile
    (minutes on a card): while PEFT adapters take part in the UNet's forward (a DoRA stack,
    which is not fused; a training adapter), or always (`only_with_adapters=False`: a
    training, whose gradients and adapter come and go). Nothing to do when not compiled."""
    if not compiled(pipe.unet) or (only_with_adapters and not _live_adapters(pipe.unet)):
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield
