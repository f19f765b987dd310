"""`POST /train-lora` behind the route: defaults, the job, and saving the finished LoRA."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import Conflict, InvalidRequest
from engine.jobs import Cancelled, Job, JobStatus
from engine.runtime import LoadedModel, Runtime
from engine.storage import atomic_path, check_file_name, check_user_id, iso
from engine.training_targets import ALL_UNET_TARGETS, DECODER_BLOCKS, UNET_TARGETS
from engine.uploads import TrainingImage

if TYPE_CHECKING:
    from engine.pipelines import ModelInfo
    from engine.training import TrainConfig

log = logging.getLogger(__name__)
DEFAULT_TRIGGER = "ohwx"
PRIOR_WEIGHT = 2.0  # on the demo model 4 kept colour but cost stars (engine/demo_model/README.md)


def training_defaults(family: str, n_images: int, native: int) -> dict[str, Any]:
    """The documented defaults table (README, "Training defaults")."""
    # Small models (the built-in demo model, test models) have few weights per layer: they
    # need every layer, a higher rank and rate, and prior preservation to learn a new shape
    # without forgetting colours (measured in engine/demo_model/README.md).
    small = native <= 128
    return {
        "steps": (600 if small else 400) + 200 * (n_images - 1),
        "rank": 16 if small else (8 if family == "sdxl" else 4) * (1 if n_images <= 2 else 2),
        "learning_rate": 2e-3 if small else 1e-4,
        "resolution": min(native, 1024),
        "unet_targets": ALL_UNET_TARGETS if small else UNET_TARGETS,
        "unet_blocks": DECODER_BLOCKS if small else None,
        # On SDXL it doubles the cost of a step: opt-in there.
        "prior_preservation": small,
        "cpu_threads": 1 if small else None,
    }


@dataclass(frozen=True)
class TrainOptions:
    name: str
    trigger_word: str | None = None
    captions: list[str] | None = None
    steps: int | None = None
    rank: int | None = None
    learning_rate: float | None = None
    resolution: int | None = None
    seed: int | None = None
    train_text_encoder: bool = False
    overwrite: bool = False
    flip: bool = True
    prior_preservation: bool | None = None  # None: the model's default


def _trigger(opts: TrainOptions) -> str:
    return (opts.trigger_word or DEFAULT_TRIGGER).strip()


def _captions(opts: TrainOptions, trigger: str, n: int) -> tuple[str, ...]:
    if not opts.captions:
        return (trigger,) * n
    if len(opts.captions) != n:
        raise InvalidRequest(
            f"send one caption per image: {n} images, {len(opts.captions)} captions",
            code="invalid_captions",
        )
    # The trigger word is what later prompts use to call the concept up, so every caption
    # must carry it.
    return tuple(
        c if trigger in c else f"{trigger}, {c}" for c in (c.strip() for c in opts.captions)
    )


def _prior(captions: tuple[str, ...], trigger: str, info: ModelInfo):
    """Prior preservation (training_prior.py), drawn with the model's own sampling defaults."""
    from engine.training_prior import Prior, prior_captions

    d = info.defaults
    return Prior(
        prior_captions(captions, trigger),
        steps=d.steps,
        guidance=d.guidance_scale,
        weight=PRIOR_WEIGHT,
    )


def train_config(opts: TrainOptions, n_images: int, info: ModelInfo) -> TrainConfig:
    """The options filled in from the defaults table for this model."""
    from engine.training import TrainConfig

    d = training_defaults(info.family, n_images, info.defaults.width)
    trigger = _trigger(opts)
    resolution = opts.resolution or d["resolution"]
    if resolution % 8:
        raise InvalidRequest("resolution must be a multiple of 8", code="invalid_resolution")
    captions = _captions(opts, trigger, n_images)
    prior = d["prior_preservation"] if opts.prior_preservation is None else opts.prior_preservation
    return TrainConfig(
        captions=captions,
        steps=opts.steps or d["steps"],
        rank=opts.rank or d["rank"],
        learning_rate=opts.learning_rate or d["learning_rate"],
        resolution=resolution,
        seed=0 if opts.seed is None else opts.seed,
        train_text_encoder=opts.train_text_encoder,
        flip=opts.flip,
        unet_targets=d["unet_targets"],
        unet_blocks=d["unet_blocks"],
        prior=_prior(captions, trigger, info) if prior else None,
        cpu_threads=d["cpu_threads"],
    )


class TrainingService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def user(self, user_id: str | None) -> str:
        default = self.rt.settings.default_user
        return check_user_id(default if user_id is None else user_id)

    def submit(self, user: str, images: list[TrainingImage], opts: TrainOptions) -> Job:
        model = self.rt.require_model()
        file_name = check_file_name(opts.name, "loras")
        target = self.rt.store.user_dir("loras", user, create=True) / file_name
        if target.exists() and not opts.overwrite:
            raise Conflict(f"LoRA {file_name!r} already exists; send overwrite=true to replace it")
        cfg = train_config(opts, len(images), model.info)
        params = {
            "name": file_name.removesuffix(".safetensors"),
            "file": file_name,
            "trigger_word": _trigger(opts),
            "captions": list(cfg.captions),
            "steps": cfg.steps,
            "rank": cfg.rank,
            "alpha": cfg.alpha,
            "learning_rate": cfg.learning_rate,
            "resolution": cfg.resolution,
            "seed": cfg.seed,
            "train_text_encoder": cfg.train_text_encoder,
            "flip": cfg.flip,
            "unet_targets": list(cfg.unet_targets),
            "unet_blocks": list(cfg.unet_blocks or []),
            "prior_preservation": cfg.prior is not None,
            "image_count": len(images),
            "image_sha256": [im.sha256 for im in images],
            "overwrite": opts.overwrite,
        }
        job = self.rt.jobs.create("train-lora", user, cfg.steps, params)
        self.rt.worker.submit(
            lambda: self._run(job.id, model, images, cfg, target),
            label=f"train {file_name}",
            background=True,
        )
        return job

    def _run(
        self, job_id: str, model: LoadedModel, images: list[TrainingImage], cfg: Any, target: Path
    ) -> None:
        from engine.training import Hooks, LoraTrainer

        jobs = self.rt.jobs
        if jobs.get(job_id).status.terminal:  # cancelled while it waited
            return
        started = time.monotonic()
        jobs.update(job_id, status=JobStatus.RUNNING, started=iso(time.time()))

        def on_step(step: int, loss: float) -> None:
            per_step = (time.monotonic() - started) / step
            jobs.update(
                job_id,
                step=step,
                progress=round(step / cfg.steps, 4),
                loss=loss,
                eta_s=round(per_step * (cfg.steps - step), 1),
            )

        hooks = Hooks(
            on_step,
            lambda: jobs.cancel_requested(job_id),
            lambda: self.rt.worker.has_pending(),
            self.rt.worker.run_pending,
        )
        trainer = LoraTrainer(model.pipe, cfg, hooks)
        model.loras.invalidate()
        try:
            result = trainer.run([im.image for im in images])
            thumb = self._thumbnail(model, cfg)
            meta = self._metadata(model, jobs.get(job_id), result, thumb)
            self._save(target, result.state, meta, jobs.get(job_id).params["overwrite"])
            jobs.update(
                job_id,
                status=JobStatus.SUCCEEDED,
                finished=iso(time.time()),
                eta_s=0.0,
                result={
                    "file": target.name,
                    "url": f"/loras/{target.name}?user_id={jobs.get(job_id).user_id}",
                    "loss_before": round(result.probe_before, 5),
                    "loss_after": round(result.probe_after, 5),
                    "training_seconds": round(result.seconds, 2),
                    "thumbnail": thumb,
                },
            )
        except Cancelled:
            jobs.update(job_id, status=JobStatus.CANCELLED, finished=iso(time.time()))
        except Exception as exc:  # the job records why; the engine keeps serving
            log.exception("training job %s failed", job_id)
            message = exc.message if isinstance(exc, Conflict) else f"{type(exc).__name__}: {exc}"
            jobs.update(job_id, status=JobStatus.FAILED, finished=iso(time.time()), error=message)
        finally:
            trainer.remove()
            model.loras.invalidate()

    def _thumbnail(self, model: LoadedModel, cfg: Any) -> str:
        """A small sample from the new LoRA (still active), as a data URL."""
        from engine.pipelines import RenderParams, render

        d = model.info.defaults
        side = min(d.width, 512)
        image = render(
            model.pipe,
            RenderParams(
                cfg.captions[0], "", min(d.steps, 30), d.guidance_scale, side, side, (cfg.seed,)
            ),
        )[0]
        image.thumbnail((128, 128))
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    def _metadata(self, model: LoadedModel, job: Job, result: Any, thumb: str) -> dict[str, str]:
        p = job.params
        ours = {
            "base_model": model.info.model,
            "family": model.info.family,
            "trigger_word": p["trigger_word"],
            "rank": p["rank"],
            "alpha": p["alpha"],
            "steps": p["steps"],
            "learning_rate": p["learning_rate"],
            "resolution": p["resolution"],
            "seed": p["seed"],
            "image_count": p["image_count"],
            "image_sha256": p["image_sha256"],
            "captions": p["captions"],
            "created": iso(time.time()),
            "training_seconds": round(result.seconds, 2),
            "thumbnail": thumb,
        }
        meta = {
            f"loramint.{k}": v if isinstance(v, str) else json.dumps(v) for k, v in ours.items()
        }
        # kohya's keys, which A1111 and ComfyUI show in their LoRA info panels.
        meta.update(
            {
                "ss_network_dim": str(p["rank"]),
                "ss_network_alpha": str(p["alpha"]),
                "ss_output_name": p["name"],
                "ss_max_train_steps": str(p["steps"]),
                "ss_sd_model_name": model.info.model,
            }
        )
        meta["lora_adapter_metadata"] = json.dumps(result.adapter_metadata, sort_keys=True)
        meta["format"] = "pt"
        return meta

    def _save(self, target: Path, state: dict, meta: dict[str, str], overwrite: bool) -> None:
        from safetensors.torch import save_file

        if target.exists() and not overwrite:
            raise Conflict(f"a LoRA named {target.name!r} appeared while training; not replaced")
        with atomic_path(target) as tmp:
            save_file(state, str(tmp), metadata=meta)
