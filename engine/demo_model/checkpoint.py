"""Resumable training state for the demo model's script: safetensors checkpoints (never
pickle), per-step seeded randomness and the learning-rate schedule."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file


def step_rng(seed: int, step: int) -> random.Random:
    return random.Random(seed * 1_000_003 + step)


class Checkpoint:
    """Module and optimizer state as safetensors plus a JSON sidecar; never pickle."""

    def __init__(self, folder: Path, name: str) -> None:
        self.tensors = folder / f"{name}.safetensors"
        self.meta = folder / f"{name}.json"

    def save(self, step: int, modules: dict, opt: torch.optim.Optimizer, extra=None) -> None:
        flat = {
            f"{n}.{k}": v.detach().cpu().contiguous().clone()
            for n, m in modules.items()
            for k, v in m.state_dict().items()
        }
        sd = opt.state_dict()
        for idx, st in sd["state"].items():
            for k, v in st.items():
                flat[f"optim.{idx}.{k}"] = torch.as_tensor(v).cpu().clone()
        tmp = self.tensors.with_suffix(".tmp")
        save_file(flat, tmp)
        tmp.replace(self.tensors)
        meta = {"step": step, "param_groups": sd["param_groups"], **(extra or {})}
        self.meta.with_suffix(".tmp").write_text(json.dumps(meta))
        self.meta.with_suffix(".tmp").replace(self.meta)

    def load(self, modules: dict, opt: torch.optim.Optimizer) -> dict | None:
        if not (self.tensors.exists() and self.meta.exists()):
            return None
        flat = load_file(self.tensors)
        meta = json.loads(self.meta.read_text())
        for n, m in modules.items():
            m.load_state_dict(
                {k[len(n) + 1 :]: v for k, v in flat.items() if k.startswith(n + ".")}
            )
        state: dict = {}
        for k, v in flat.items():
            if k.startswith("optim."):
                _, idx, name = k.split(".", 2)
                state.setdefault(int(idx), {})[name] = v
        opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        return meta


def lr_at(step: int, total: int, base: float, warmup: int = 200) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
