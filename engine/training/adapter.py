"""The LoRA being trained, as PEFT adapters on the live pipeline's UNet (and text encoders):
added, switched on alone, set to a strength for a while, exported as a LoRA file's tensors,
and removed. The trainer (trainer.py) owns the loop; this owns the adapter's names."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from diffusers import DiffusionPipeline
from diffusers.training_utils import cast_training_params
from peft import LoraConfig
from peft.tuners.lora import LoraLayer
from peft.utils import get_peft_model_state_dict

from engine.training.config import TrainConfig
from engine.training.data import text_encoders
from engine.training.targets import TEXT_TARGETS, target_modules

ADAPTER = "loramint_training"  # never "train": PEFT would shadow nn.Module.train
PREFIXES = ("unet", "text_encoder", "text_encoder_2")
MAGNITUDE = "lora_magnitude_vector"  # DoRA's per-channel magnitude (PEFT's name)


class TrainingAdapter:
    def __init__(self, pipe: DiffusionPipeline, cfg: TrainConfig) -> None:
        self.pipe, self.cfg = pipe, cfg

    @property
    def modules(self) -> list[torch.nn.Module]:
        """What it trains: the UNet, and the text encoders when asked."""
        return [self.pipe.unet, *(text_encoders(self.pipe) if self.cfg.train_text_encoder else [])]

    def add(self, gpu: bool) -> dict[str, torch.nn.Parameter]:
        """The adapters, added and active; their trainable parameters by name."""
        torch.manual_seed(self.cfg.seed)  # LoRA A is initialised from the global RNG
        self.pipe.unet.add_adapter(
            self._config(target_modules(self.cfg.unet_targets, self.cfg.unet_blocks)),
            adapter_name=ADAPTER,
        )
        if self.cfg.train_text_encoder:
            for enc in text_encoders(self.pipe):
                enc.add_adapter(self._config(TEXT_TARGETS), adapter_name=ADAPTER)
        self.activate()
        if gpu:
            cast_training_params(self.modules, dtype=torch.float32)
        return {
            f"{i}.{n}": p
            for i, m in enumerate(self.modules)
            for n, p in m.named_parameters()
            if ADAPTER in n
        }

    def _config(self, targets) -> LoraConfig:
        return LoraConfig(
            r=self.cfg.rank,
            lora_alpha=self.cfg.alpha,
            init_lora_weights="gaussian",
            target_modules=targets,
            use_dora=self.cfg.dora,
        )

    def activate(self) -> None:
        """Only the training adapter on; the pipeline may have run other LoRAs in between."""
        self.pipe.unet.enable_adapters()
        self.pipe.unet.set_adapter(ADAPTER)
        for enc in text_encoders(self.pipe):
            if self.cfg.train_text_encoder:
                enc.enable_adapters()
                enc.set_adapter(ADAPTER)
            elif getattr(enc, "_hf_peft_config_loaded", False):
                enc.disable_adapters()

    def export(self) -> tuple[dict[str, torch.Tensor], dict[str, object]]:
        """The LoRA file's tensors (fp16, on the CPU) and the adapters' configs."""
        state: dict[str, torch.Tensor] = {}
        meta: dict[str, object] = {}
        for prefix, module in zip(PREFIXES, self.modules, strict=False):
            # PEFT's own key names: diffusers renames attention keys only (`lora.down`), and
            # its loader drops those when a file also holds PEFT-named conv/ff keys.
            sd = get_peft_model_state_dict(module, adapter_name=ADAPTER)
            state.update(
                {
                    f"{prefix}.{k}": v.detach().to("cpu", torch.float16).contiguous()
                    for k, v in sd.items()
                }
            )
            cfg = module.peft_config[ADAPTER].to_dict()
            meta.update(
                {f"{prefix}.{k}": sorted(v) if isinstance(v, set) else v for k, v in cfg.items()}
            )
        return state, meta

    @staticmethod
    def exported_name(name: str) -> str:
        """A trainable parameter's name (`0.{module}.lora_A.{adapter}.weight`) as the LoRA
        file calls it (`unet.{module}.lora_A.weight`; DoRA's magnitude without `.weight`, as
        PEFT saves it)."""
        index, rest = name.split(".", 1)
        out = f"{PREFIXES[int(index)]}.{rest.replace(f'.{ADAPTER}.', '.')}"
        return out.removesuffix(".weight") if out.endswith(f"{MAGNITUDE}.weight") else out

    @contextlib.contextmanager
    def strength(self, strength: float) -> Iterator[None]:
        """The training adapter at `strength` for a while (the report card judges several)."""
        layers = [
            m
            for module in [self.pipe.unet, *text_encoders(self.pipe)]
            for m in module.modules()
            if isinstance(m, LoraLayer) and ADAPTER in m.scaling
        ]
        try:
            for layer in layers:
                layer.set_scale(ADAPTER, strength)
            yield
        finally:
            for layer in layers:
                layer.set_scale(ADAPTER, 1.0)

    def remove(self) -> None:
        """Drop the training adapter from every module that has it."""
        for module in [self.pipe.unet, *text_encoders(self.pipe)]:
            if ADAPTER in getattr(module, "peft_config", {}):
                module.delete_adapters(ADAPTER) if hasattr(module, "delete_adapters") else (
                    module.delete_adapter(ADAPTER)
                )
