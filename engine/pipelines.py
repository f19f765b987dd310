"""Loading a diffusers text-to-image pipeline and running it.

Accepts a Hub id, a local diffusers folder, or a single-file `.safetensors` checkpoint; detects
the SD vs SDXL family; picks the device and dtype; and derives per-model defaults.
"""

from __future__ import annotations

import gc
import json
import logging
import socket
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import torch
from diffusers import (
    AutoPipelineForText2Image,
    DiffusionPipeline,
    StableDiffusionPipeline,
    StableDiffusionXLPipeline,
)
from PIL import Image
from safetensors import safe_open

from engine.contract.errors import ModelLoadError, OutOfMemory
from engine.demo_model import MODEL_ID as DEMO_ID
from engine.demo_model import WEIGHTS_DIR as DEMO_WEIGHTS
from engine.values import ModelDefaults, ModelInfo, RenderParams

log = logging.getLogger(__name__)
# diffusers passes huggingface_hub an argument it no longer uses; the warning is for diffusers'
# authors, and a person starting LoraMint can do nothing about it.
warnings.filterwarnings("ignore", message=".*local_dir_use_symlinks.*", category=UserWarning)


def pick_device(choice: str) -> tuple[torch.device, torch.dtype]:
    if choice == "auto":
        if torch.cuda.is_available():
            choice = "cuda"
        elif torch.backends.mps.is_available():
            choice = "mps"
        else:
            choice = "cpu"
    if choice.startswith("cuda"):  # "cuda" or "cuda:N", one card of several
        device = torch.device(choice)
        if torch.cuda.is_available() and device.index is not None:
            # The card's own: memory limits and peaks then count on it, not on card 0.
            torch.cuda.set_device(device)
        # bf16 avoids fp16's overflow in SDXL's VAE where the card supports it.
        bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return device, torch.bfloat16 if bf16 else torch.float16
    if choice == "mps":
        return torch.device("mps"), torch.float16
    return torch.device("cpu"), torch.float32


def limit_memory(fraction: float) -> None:
    """Let this process use only `fraction` of the GPU's memory (several engines on a card)."""
    torch.cuda.set_per_process_memory_fraction(fraction)


@contextmanager
def memory_guard(what: str, way_out: str) -> Iterator[None]:
    """The device running out of memory becomes OutOfMemory, naming the work and the way
    out, once what the failed work held is freed, so the next request runs normally."""
    failed = False
    try:
        yield
    except torch.OutOfMemoryError:
        failed = True  # freed below, once the traceback's frames (and tensors) are gone
    if failed:
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        log.warning("out of memory: %s", what)
        raise OutOfMemory(
            f"the {'GPU' if torch.cuda.is_available() else 'device'} ran out of memory for "
            f"{what}; {way_out}. Its memory was freed: other requests run normally."
        )


def _single_file_family(path: Path) -> str:
    with safe_open(str(path), framework="pt") as f:
        keys = f.keys()
    sdxl = any(k.startswith("conditioner.embedders.1.") for k in keys)
    return "sdxl" if sdxl else "sd"


def _load(model: str, config_dir: str | None, dtype: torch.dtype) -> DiffusionPipeline:
    path = Path(model).expanduser()
    if path.suffix == ".safetensors":
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        cls = (
            StableDiffusionXLPipeline
            if _single_file_family(path) == "sdxl"
            else StableDiffusionPipeline
        )
        return cls.from_single_file(str(path), config=config_dir, torch_dtype=dtype)
    if path.is_dir() or model.startswith((".", "/", "~")):
        if not (path / "model_index.json").is_file():
            raise FileNotFoundError(f"{path} is not a diffusers folder (no model_index.json)")
        return AutoPipelineForText2Image.from_pretrained(str(path), torch_dtype=dtype)
    return _from_hub(model, dtype)


class HubUnreachable(Exception):
    """The model is not in the cache and the Hub can't be reached: the real cause, which
    diffusers reports as a missing model_index.json after a minute of retries."""


def hub_unreachable() -> str | None:
    """Why the Hugging Face Hub can't be reached, from one name look-up, or None."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    host = urlsplit(constants.ENDPOINT).hostname or constants.ENDPOINT
    try:
        socket.getaddrinfo(host, 443)
    except (socket.gaierror, UnicodeError) as exc:
        return f"the name {host} can't be looked up ({exc}): this machine seems to be offline"
    return None


def _from_hub(model: str, dtype: torch.dtype) -> DiffusionPipeline:
    """From the cache when it holds the model (no network needed); else downloaded, once a
    single look-up says the Hub can be reached."""
    try:
        return AutoPipelineForText2Image.from_pretrained(
            model, torch_dtype=dtype, local_files_only=True
        )
    except OSError:  # not (wholly) in the cache
        pass
    if why := hub_unreachable():
        raise HubUnreachable(
            f"model {model!r} is not in this machine's Hugging Face cache, and the Hub can't "
            f"be reached: {why}. Fix: go online and restart LoraMint, or set LORAMINT_MODEL to "
            "a local diffusers folder or a single-file .safetensors checkpoint (or builtin:demo)."
        )
    return AutoPipelineForText2Image.from_pretrained(model, torch_dtype=dtype)


def family_of(pipe: DiffusionPipeline) -> str:
    return "sdxl" if isinstance(pipe, StableDiffusionXLPipeline) else "sd"


def own_settings(model: str) -> dict:
    """A model folder's own `loramint.json` (the demo model states defaults and preview
    factors there), or {}."""
    own = Path(_location(model)) / "loramint.json"
    return json.loads(own.read_text()) if own.is_file() else {}


def defaults_for(model: str, pipe: DiffusionPipeline) -> ModelDefaults:
    side = int(pipe.unet.config.sample_size * pipe.vae_scale_factor)
    if d := own_settings(model).get("defaults"):
        return ModelDefaults(
            steps=d["steps"], guidance_scale=d["guidance_scale"], width=side, height=side
        )
    if "turbo" in model.lower():
        return ModelDefaults(steps=1, guidance_scale=0.0, width=side, height=side)
    if family_of(pipe) == "sdxl":
        return ModelDefaults(steps=30, guidance_scale=7.0, width=side, height=side)
    return ModelDefaults(steps=30, guidance_scale=7.5, width=side, height=side)


def choose_model(model: str, device: torch.device) -> str:
    """`auto`: SDXL-Turbo on CUDA, SD-Turbo elsewhere."""
    if model != "auto":
        return model
    return "stabilityai/sdxl-turbo" if device.type == "cuda" else "stabilityai/sd-turbo"


def _location(model: str) -> str:
    return str(DEMO_WEIGHTS) if model == DEMO_ID else model


def _load_or_explain(model: str, config_dir: str | None, dtype: torch.dtype) -> DiffusionPipeline:
    try:
        return _load(_location(model), config_dir, dtype)
    except HubUnreachable as exc:
        raise ModelLoadError(str(exc)) from exc
    except Exception as exc:  # diffusers/hub raise many types; all mean "can't load"
        raise ModelLoadError(
            f"model {model!r} could not be loaded ({type(exc).__name__}: {exc}). Fix: set "
            "LORAMINT_MODEL to a Hub id you can download (check the network and HF_TOKEN), "
            "a local diffusers folder, a single-file .safetensors checkpoint, or builtin:demo."
        ) from exc


def load_model(
    model: str, device_choice: str, config_dir: str | None = None, fallback: bool = False
) -> tuple[DiffusionPipeline, ModelInfo]:
    """Return (pipe, info), falling back to the built-in demo model when allowed, or raise
    ModelLoadError naming the model and the fix."""
    device, dtype = pick_device(device_choice)
    model = choose_model(model, device)
    log.info("loading model %s on %s (%s)", model, device, dtype)
    fallback_reason = None
    try:
        pipe = _load_or_explain(model, config_dir, dtype)
    except ModelLoadError as exc:
        if not fallback or model == DEMO_ID:
            raise
        fallback_reason = f"{exc.message} Meanwhile the built-in demo model runs."
        log.warning("%s (LORAMINT_MODEL_FALLBACK=false turns this off)", fallback_reason)
        model = DEMO_ID
        pipe = _load_or_explain(model, None, dtype)
    pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    info = ModelInfo(
        model=model,
        family=family_of(pipe),
        device=str(device),
        dtype=str(dtype).removeprefix("torch."),
        defaults=defaults_for(model, pipe),
        fallback_reason=fallback_reason,
    )
    return pipe, info


StepHook = Callable[[int, torch.Tensor], None]


def render(
    pipe: DiffusionPipeline,
    params: RenderParams,
    on_step: StepHook | None = None,
    first_step: int = 0,
    **inputs: object,
) -> list[Image.Image]:
    """The images; `on_step(step, latents)` after each step may raise to stop the run there
    (a cancel, a client gone, shutdown). `inputs` go to the pipeline as they are (an img2img
    or inpainting pipeline's image, mask and strength); the steps it reports count on from
    `first_step` (a second pass goes on where the first ended)."""
    n = len(params.seeds)
    # CPU generators make a seed give the same image on every device.
    generators = [torch.Generator("cpu").manual_seed(s) for s in params.seeds]
    hook = {}
    tap: dict[str, torch.Tensor] = {}
    if on_step is not None:

        def callback(_pipe, i: int, _t, kwargs: dict) -> dict:
            # The step's predicted clean image when the scheduler gives one: at 10 steps the
            # noisy latents preview as colour noise until the last few.
            on_step(first_step + i + 1, tap.pop("x0", kwargs["latents"]))
            return kwargs

        hook = {"callback_on_step_end": callback, "callback_on_step_end_tensor_inputs": ["latents"]}
    # img2img pipelines take no width or height (the image's size is used); inpainting ones
    # do, and default to the model's native size, not the image's.
    img2img = "image" in inputs and "mask_image" not in inputs
    size = {} if img2img else {"width": params.width, "height": params.height}
    with torch.inference_mode(), predicted_x0(pipe.scheduler, tap if on_step else None):
        out = pipe(
            **size,
            prompt=list(params.prompt) if isinstance(params.prompt, tuple) else [params.prompt] * n,
            negative_prompt=[params.negative_prompt] * n,
            num_inference_steps=params.steps,
            guidance_scale=params.guidance_scale,
            generator=generators,
            output_type="pil",
            **hook,
            **inputs,
        )
    return list(out.images)


@contextmanager
def predicted_x0(scheduler, into: dict[str, torch.Tensor] | None) -> Iterator[None]:
    """While a render runs, each scheduler step leaves its x0 prediction in `into["x0"]`: the
    step's `pred_original_sample` (DDIM, Euler, LMS...), or DPM-Solver++'s converted model
    output, which is x0. The scheduler is the loaded model's own, shared, so its `step` is put
    back after (renders run one at a time, on the device worker)."""
    if into is None:
        yield
        return
    original = scheduler.step

    def step(*args, **kwargs):
        out = original(*args, **kwargs)
        # Pipelines ask for a tuple (return_dict=False): (prev_sample, pred_original_sample).
        x0 = out[1] if isinstance(out, tuple) and len(out) > 1 else None
        x0 = getattr(out, "pred_original_sample", x0)
        outputs = getattr(scheduler, "model_outputs", None)
        if x0 is None and outputs and scheduler.config.get("algorithm_type") == "dpmsolver++":
            x0 = outputs[-1]
        if x0 is not None:
            into["x0"] = x0
        return out

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step  # the instance attribute goes; the class's method shows again
