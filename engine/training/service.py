"""`POST /train-lora` behind the route: the job, the run on the device worker, and saving the
finished LoRA."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

from engine.contract.errors import ApiError, Conflict, QueueFull
from engine.contract.names import check_file_name
from engine.contract.schemas import Job, JobPhase, JobSample, JobStatus, TrainOptions
from engine.jobs import Cancelled
from engine.runtime import LoadedModel, Runtime
from engine.storage import iso
from engine.training.config import TrainConfig
from engine.training.defaults import train_config, trigger_word
from engine.training.progress import Progress
from engine.uploads import TrainingImage
from engine.values import RenderParams

log = logging.getLogger(__name__)


class TrainingService:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def submit(self, user: str, images: list[TrainingImage], opts: TrainOptions) -> Job:
        """`user` is already checked: it comes from the one identity channel (deps.py)."""
        model = self.rt.require_model()
        file_name = self.check(user, opts)
        cfg, params = self.plan(model, images, opts)
        job = self.rt.jobs.create("train-lora", user, cfg.steps, params)
        future = self.rt.worker.submit(
            lambda: self.run(job.id, model, images, cfg, user, file_name),
            label=f"train {file_name}",
            background=True,
        )
        self.rt.track(job.id, future)
        return self.rt.jobs.current(job.id)

    def check(self, user: str, opts: TrainOptions) -> str:
        """Refuse what would fail anyway, before anything is queued; the LoRA's file name."""
        self._check_share(user)
        file_name = check_file_name(opts.name, "loras")
        if self.rt.store.exists("loras", user, file_name) and not opts.overwrite:
            raise Conflict(f"LoRA {file_name!r} already exists; send overwrite=true to replace it")
        return file_name

    @staticmethod
    def plan(
        model: LoadedModel, images: list[TrainingImage], opts: TrainOptions
    ) -> tuple[TrainConfig, dict[str, Any]]:
        """The run's settings for this model, and what the job records of them."""
        cfg = train_config(opts, len(images), model.info)
        file_name = check_file_name(opts.name, "loras")
        params = {
            "name": file_name.removesuffix(".safetensors"),
            "file": file_name,
            "trigger_word": trigger_word(opts),
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
            "sample_every": cfg.sample_every,
            "sample_prompts": list(cfg.sample_prompts),
            "image_count": len(images),
            "image_sha256": [im.sha256 for im in images],
            "overwrite": opts.overwrite,
        }
        return cfg, params

    def _check_share(self, user: str) -> None:
        """At most `user_training_jobs` jobs per user at once, and room in their quota."""
        limit = self.rt.settings.user_training_jobs
        # Only trainings count: a generation still rendering must not block one.
        active = [
            j for j in self.rt.jobs.list(user) if j.kind == "train-lora" and not j.status.terminal
        ]
        if len(active) >= limit:
            wait = max((j.eta_s or 60.0) for j in active)
            raise QueueFull(
                f"you already have {len(active)} training job(s) queued or running, the most "
                "one user may have (LORAMINT_USER_TRAINING_JOBS); wait for it or cancel it",
                code="too_many_jobs",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        self.rt.store.check_quota(user, self.rt.settings.user_quota_mb)

    def run(
        self,
        job_id: str,
        model: LoadedModel,
        images: list[TrainingImage],
        cfg: TrainConfig,
        user: str,
        file_name: str,
    ) -> None:
        from engine.pipelines import memory_guard  # torch: only on the worker
        from engine.training.trainer import Hooks, LoraTrainer

        jobs = self.rt.jobs
        if jobs.current(job_id).status.terminal:  # cancelled while it waited
            return
        jobs.update(
            job_id, status=JobStatus.RUNNING, phase=JobPhase.PREPARING, started=iso(time.time())
        )
        progress = Progress(cfg.steps)

        def on_step(step: int, loss: float) -> None:
            last = step == cfg.steps  # then the check, the thumbnail and the file
            jobs.update(
                job_id,
                phase=JobPhase.SAVING if last else JobPhase.TRAINING,
                phase_step=None,
                phase_total=None,
                step=step,
                progress=round(step / cfg.steps, 4),
                loss=loss,
                loss_history=progress.add(step, loss),
                eta_s=progress.eta(step),
            )

        def sample(step: int) -> None:
            drawn = [
                JobSample(step=step, prompt=p, seed=cfg.seed, image=self._draw(model, p, cfg.seed))
                for p in cfg.sample_prompts
            ]
            jobs.update(job_id, samples=[*jobs.current(job_id).samples, *drawn])

        def between_steps() -> None:
            try:
                self.rt.worker.run_pending()
            finally:  # a stack the generations fused must not stay in the weights it trains
                model.loras.invalidate()

        hooks = Hooks(
            on_step,
            lambda: jobs.cancel_requested(job_id) or self.rt.stopping.is_set(),
            lambda: self.rt.worker.has_pending(),
            between_steps,
            on_prepare=lambda done, total: jobs.update(job_id, phase_step=done, phase_total=total),
            sample=sample,
        )
        trainer = LoraTrainer(model.pipe, cfg, hooks)
        model.loras.invalidate()
        try:
            what = f"training at {cfg.resolution} px, rank {cfg.rank}"
            way_out = "lower the resolution or the rank, or turn prior preservation off"
            with memory_guard(what, way_out):
                result = trainer.run([im.image for im in images])
            thumb = self._draw(model, cfg.captions[0], cfg.seed)
            meta = self._metadata(model, jobs.current(job_id), result, thumb)
            overwrite = jobs.current(job_id).params["overwrite"]
            self._save(user, file_name, result.state, meta, overwrite)
            jobs.update(
                job_id,
                status=JobStatus.SUCCEEDED,
                finished=iso(time.time()),
                eta_s=0.0,
                result={
                    "file": file_name,
                    "url": f"/loras/{file_name}?user_id={user}",
                    "loss_before": round(result.probe_before, 5),
                    "loss_after": round(result.probe_after, 5),
                    "training_seconds": round(result.seconds, 2),
                    "thumbnail": thumb,
                },
            )
        except Cancelled:
            jobs.update(job_id, **jobs.stopped(job_id))
        except Exception as exc:  # the job records why; the engine keeps serving
            log.exception("training job %s failed", job_id)
            message = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
            jobs.update(job_id, status=JobStatus.FAILED, finished=iso(time.time()), error=message)
        finally:
            trainer.remove()
            model.loras.invalidate()

    def _draw(self, model: LoadedModel, prompt: str, seed: int) -> str:
        """A small image from the pipeline as it is (the LoRA being trained active), as a
        data URL: the samples and the finished LoRA's thumbnail."""
        from engine.pipelines import render
        from engine.previews import data_url

        d = model.info.defaults
        side = min(d.width, 512)
        params = RenderParams(prompt, "", min(d.steps, 30), d.guidance_scale, side, side, (seed,))
        image = render(model.pipe, params)[0]
        image.thumbnail((128, 128))
        return data_url(image)

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

    def _save(
        self, user: str, file_name: str, state: dict, meta: dict[str, str], overwrite: bool
    ) -> None:
        from safetensors.torch import save_file

        store = self.rt.store
        if store.exists("loras", user, file_name) and not overwrite:
            raise Conflict(f"a LoRA named {file_name!r} appeared while training; not replaced")
        with store.writing("loras", user, file_name, replace=overwrite) as tmp:
            save_file(state, str(tmp), metadata=meta)
