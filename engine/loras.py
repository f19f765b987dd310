"""Dynamic LoRA loading and stacking on the live pipeline.

A LoRA file is loaded once as a named adapter and kept (LRU, keyed by user, file and mtime).
The adapters themselves stay off: a request's stack is fused into the base weights while it
stays the same, and taken out exactly when it changes (lora_fusion.py); only a stack that can't
be fused (DoRA and other variants) runs as active PEFT adapters. Files are read with
`safetensors` and handed to diffusers as a state dict, so no pickle is ever involved.
Everything here runs on the device worker thread.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from diffusers.utils import convert_all_state_dict_to_peft, convert_state_dict_to_kohya
from peft.tuners.lora import LoraLayer
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save

from engine.contract.errors import InvalidRequest
from engine.lora_fusion import FusedStack, fusable
from engine.storage import DORA_KEYS
from engine.values import LoraRef

log = logging.getLogger(__name__)

CacheKey = tuple[str, str, str, int, int]  # user, file, local path, mtime_ns, size


def read_lora_file(path: Path, file: str) -> dict[str, torch.Tensor]:
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InvalidRequest(
            f"LoRA {file!r} is not a valid .safetensors file: {exc}",
            code="invalid_lora",
        ) from exc
    if not state:
        raise InvalidRequest(f"LoRA {file!r} holds no tensors", code="invalid_lora")
    return state


def to_kohya(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Diffusers-format LoRA -> kohya/A1111 keys (`lora_unet_...lora_down.weight`, alpha)."""
    return convert_state_dict_to_kohya(convert_all_state_dict_to_peft(state))


KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_")


def kohya_bytes(path: Path, file: str) -> bytes:
    """The file converted for A1111/ComfyUI/kohya users, header metadata kept; a file that
    is kohya-format already comes back as it is."""
    state = read_lora_file(path, file)
    if all(k.startswith(KOHYA_PREFIXES) for k in state):
        return path.read_bytes()
    if any(DORA_KEYS[0] in k for k in state):
        raise InvalidRequest(
            f"LoRA {file!r} is a DoRA: kohya's LoRA format has no place for its magnitude "
            "vectors. Use this file as it is (LoraMint and diffusers load it), or train again "
            "with adapter=lora for a kohya file.",
            code="dora_not_convertible",
        )
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
    # kohya files carry per-module alphas; diffusers refuses a file with both.
    metadata.pop("lora_adapter_metadata", None)
    try:
        return save(to_kohya(state), metadata=metadata)
    except Exception as exc:  # diffusers' "not converted to PEFT", 0-d tensors, odd shapes...
        raise InvalidRequest(
            f"LoRA {file!r} can't be converted to kohya format: its tensors are not a "
            f"diffusers or PEFT LoRA's ({type(exc).__name__}: {exc})",
            code="incompatible_lora",
        ) from exc


def _adapter_name(key: CacheKey) -> str:
    # PEFT keeps adapters in ModuleDicts, so the name must be dot-free; "train" is taken
    # by nn.Module.train.
    return "lm_" + hashlib.sha1(repr(key).encode()).hexdigest()[:16]


class LoraCache:
    def __init__(self, pipe: DiffusionPipeline, capacity: int) -> None:
        self.pipe = pipe
        self.capacity = capacity
        self._adapters: OrderedDict[CacheKey, str] = OrderedDict()
        self._layers: dict[str, list[LoraLayer]] = {}  # adapter -> the layers it changes
        self._active: tuple[tuple[str, float], ...] | None = None
        self._fused = FusedStack()
        self._adapters_off = False
        self.hits = 0
        self.misses = 0

    def stats(self) -> dict[str, int]:
        return {
            "size": len(self._adapters),
            "capacity": self.capacity,
            "hits": self.hits,
            "misses": self.misses,
        }

    def invalidate(self) -> None:
        """The base weights back as loaded, and no stack active: for someone else (training)
        who uses the model and its adapters in between."""
        self._fused.restore()
        self._active = None
        self._adapters_off = False

    def activate(self, refs: list[LoraRef]) -> None:
        """Make exactly `refs` active at their strengths; no LoRA means all disabled."""
        if len(refs) > self.capacity:
            raise InvalidRequest(
                f"at most {self.capacity} LoRAs can be stacked", code="too_many_loras"
            )
        names = [self._ensure_loaded(ref) for ref in refs]
        wanted = tuple(zip(names, (r.strength for r in refs), strict=True))
        if wanted == self._active:
            return
        self._fused.restore()
        self._active = None
        self._evict(keep=set(names))
        stack = [(n, s) for n, s in wanted if s != 0]
        if all(fusable(layer, n) for n, _ in stack for layer in self._layers[n]):
            self._all_adapters_off()
            self._fused.fuse([(n, s, self._layers[n]) for n, s in stack])
        else:
            self.pipe.enable_lora()
            self.pipe.set_adapters(names, adapter_weights=[r.strength for r in refs])
            self._adapters_off = False
        self._active = wanted

    def _all_adapters_off(self) -> None:
        # Not only cached LoRAs: a training adapter may be live between training steps.
        if not self._adapters_off and any(self.pipe.get_list_adapters().values()):
            self.pipe.disable_lora()
        self._adapters_off = True

    def _ensure_loaded(self, ref: LoraRef) -> str:
        st = ref.path.stat()
        key: CacheKey = (ref.user_id, ref.file, str(ref.path), st.st_mtime_ns, st.st_size)
        if key in self._adapters:
            self.hits += 1
            self._adapters.move_to_end(key)
            return self._adapters[key]
        self.misses += 1
        name = _adapter_name(key)
        state = read_lora_file(ref.path, ref.file)
        try:
            self.pipe.load_lora_weights(state, adapter_name=name)
        except Exception as exc:  # diffusers raises ValueError/RuntimeError/KeyError here
            self._discard(name)
            raise InvalidRequest(
                f"LoRA {ref.file!r} does not fit this model: {exc}",
                code="incompatible_lora",
            ) from exc
        if not any(name in names for names in self.pipe.get_list_adapters().values()):
            raise InvalidRequest(
                f"LoRA {ref.file!r} has no weights that match this model",
                code="incompatible_lora",
            )
        log.info("loaded LoRA %s/%s as %s", ref.user_id, ref.file, name)
        self._adapters[key] = name
        self._layers[name] = [
            m
            for part in self.pipe.components.values()
            if isinstance(part, torch.nn.Module)
            for m in part.modules()
            if isinstance(m, LoraLayer) and name in {*m.lora_A, *m.lora_embedding_A}
        ]
        self._adapters_off = False  # a new adapter may come in switched on
        return name

    def _evict(self, keep: set[str]) -> None:
        for key, name in list(self._adapters.items()):
            if len(self._adapters) <= self.capacity:
                break
            if name not in keep:
                del self._adapters[key]
                self._discard(name)
                self._active = None

    def _discard(self, name: str) -> None:
        self._layers.pop(name, None)
        loaded = {n for names in self.pipe.get_list_adapters().values() for n in names}
        if name in loaded:
            self.pipe.delete_adapters([name])
