"""Everything a LoRA training needs to go on exactly where it stopped (#28): the LoRA's trainable
tensors in fp32, AdamW's moments, the learning-rate schedule, the step, and the generator that
draws the data order, noise and timesteps. Saved as safetensors (tensors, and JSON in the
header), never pickled, so a checkpoint from anywhere is safe to load.

Resumed on the same device and settings, the run ends with the same LoRA as one that never
stopped (tests/test_training_resume.py)."""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

import torch
from safetensors.torch import load, save

FORMAT = "loramint.training-state/1"


def header(data: bytes) -> dict[str, str]:
    """A safetensors file's metadata: 8 bytes of length, then that much JSON."""
    size = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + size]).get("__metadata__") or {}


@dataclass
class TrainingState:
    step: int  # steps done
    lora: dict[str, torch.Tensor]  # trainable parameter name -> its values
    optimizer: dict[str, Any] | None  # torch.optim state_dict; None: a fresh optimizer
    scheduler: dict[str, Any] | None  # lr_scheduler state_dict
    rng: torch.Tensor | None  # the data generator's state

    @classmethod
    def from_lora(cls, step: int, tensors: dict[str, torch.Tensor]) -> TrainingState:
        """Going on from a LoRA file's weights alone (its training state was not kept): the
        optimizer starts afresh. `tensors` are named as in the file."""
        return cls(step=step, lora=tensors, optimizer=None, scheduler=None, rng=None)

    @classmethod
    def capture(cls, step: int, named, opt, lr_decay, gen: torch.Generator) -> TrainingState:
        """The run as it is after `step` steps: `named` its trainable parameters."""
        return cls(
            step=step,
            lora={n: p.detach().clone() for n, p in named.items()},
            optimizer=copy.deepcopy(opt.state_dict()),
            scheduler=lr_decay.state_dict(),
            rng=gen.get_state(),
        )

    def restore(self, named, opt, lr_decay, gen: torch.Generator, file_name=None) -> None:
        """Put a freshly set-up run (adapters added, optimizer and schedule made) here.
        `file_name` maps a parameter's name to a LoRA file's (for `from_lora`)."""
        rename = file_name if self.optimizer is None else (lambda n: n)
        shapes = {n: tuple(t.shape) for n, t in self.lora.items()}
        if shapes != {rename(n): tuple(p.shape) for n, p in named.items()}:
            raise ValueError("the checkpoint is of another LoRA: its layers differ from this run's")
        with torch.no_grad():
            for n, p in named.items():
                p.copy_(self.lora[rename(n)].to(p.device, p.dtype))
        if self.optimizer is None:
            return
        opt.load_state_dict(self.optimizer)
        lr_decay.load_state_dict(dict(self.scheduler))
        gen.set_state(self.rng)

    def to_bytes(self) -> bytes:
        names = list(self.lora)
        tensors = {f"lora/{n}": t.detach().float().cpu().contiguous() for n, t in self.lora.items()}
        for i, slots in self.optimizer["state"].items():
            for slot, value in slots.items():
                tensors[f"adam/{i}/{slot}"] = value.detach().cpu().contiguous()
        tensors["rng"] = self.rng.clone()
        groups = [
            {k: v for k, v in g.items() if k != "params"} for g in self.optimizer["param_groups"]
        ]
        scheduler = {k: v for k, v in self.scheduler.items() if k != "lr_lambdas"}
        meta = {
            "format": FORMAT,
            "step": str(self.step),
            "names": json.dumps(names),
            "param_groups": json.dumps(groups),
            "group_sizes": json.dumps([len(g["params"]) for g in self.optimizer["param_groups"]]),
            "scheduler": json.dumps(scheduler),
        }
        return save(tensors, metadata=meta)

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainingState:
        metadata = header(data)
        if metadata.get("format") != FORMAT:
            raise ValueError(f"not a LoRA training state ({metadata.get('format')!r})")
        tensors = load(data)
        names = json.loads(metadata["names"])
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("adam/"):
                _, i, slot = key.split("/", 2)
                state.setdefault(int(i), {})[slot] = value
        groups, start = [], 0
        for group, size in zip(
            json.loads(metadata["param_groups"]), json.loads(metadata["group_sizes"]), strict=True
        ):
            groups.append({**group, "params": list(range(start, start + size))})
            start += size
        return cls(
            step=int(metadata["step"]),
            lora={n: tensors[f"lora/{n}"] for n in names},
            optimizer={"state": state, "param_groups": groups},
            scheduler={**json.loads(metadata["scheduler"]), "lr_lambdas": [None]},
            rng=tensors["rng"],
        )
