"""Training work, on the model's side of the line: plan a requested LoRA with the model's
defaults, run it on the device worker (samples, progress, cancel between steps), and save the
finished LoRA with its record. The checks that need no model are the front's (`engine.front`)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from engine.contract.errors import Conflict
from engine.contract.records import TrainingRecord
from engine.contract.schemas import JobPhase, JobSample
from engine.generation import failure_message
from engine.jobs import Cancelled
from engine.runtime import LoadedModel, Runtime
from engine.storage import iso
from engine.training.config import TrainConfig
from engine.training.defaults import train_config
from engine.training.progress import Progress, images_left
from engine.uploads import TrainingImage
from engine.values import RenderParams

log = logging.getLogger(__name__)


def sample_steps(model: LoadedModel) -> int:
    """Sampling steps of a sample image or thumbnail: the model's default, at most 30."""
    return min(model.info.defaults.steps, 30)


class TrainingWork:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    @staticmethod
    def plan(
        model: LoadedModel, n_images: int, record: TrainingRecord
    ) -> tuple[TrainConfig, TrainingRecord]:
        """The run's settings for this model, and the record with them."""
        cfg = train_config(record.train_options(), n_images, model.info)
        return cfg, record.planned(
            captions=list(cfg.captions),
            steps=cfg.steps,
            rank=cfg.rank,
            alpha=cfg.alpha,
            learning_rate=cfg.learning_rate,
            resolution=cfg.resolution,
            seed=cfg.seed,
            train_text_encoder=cfg.train_text_encoder,
            flip=cfg.flip,
            unet_targets=list(cfg.unet_targets),
            unet_blocks=list(cfg.unet_blocks or []),
            prior_preservation=cfg.prior is not None,
            sample_every=cfg.sample_every,
            sample_prompts=list(cfg.sample_prompts),
        )

    def run(
        self,
        job_id: str,
        model: LoadedModel,
        images: list[TrainingImage],
        cfg: TrainConfig,
        record: TrainingRecord,
    ) -> None:
        """On the worker: train, then save the LoRA as the job's user; the job says how."""
        from engine.pipelines import memory_guard  # torch: only on the worker
        from engine.training.trainer import LoraTrainer

        jobs = self.rt.jobs
        user = jobs.current(job_id).user_id
        if not jobs.start(job_id, JobPhase.PREPARING):  # cancelled while it waited
            return
        trainer = LoraTrainer(model.pipe, cfg, self._hooks(job_id, model, cfg))
        model.loras.invalidate()
        try:
            what = f"training at {cfg.resolution} px, rank {cfg.rank}"
            way_out = "lower the resolution or the rank, or turn prior preservation off"
            with memory_guard(what, way_out):
                result = trainer.run([im.image for im in images])
            thumb = self._draw(model, cfg.captions[0], cfg.seed)
            extra = {
                "created": iso(time.time()),
                "training_seconds": round(result.seconds, 2),
                "thumbnail": thumb,
            }
            meta = record.lora_metadata(model.info.model, model.info.family, extra)
            meta["lora_adapter_metadata"] = json.dumps(result.adapter_metadata, sort_keys=True)
            meta["format"] = "pt"
            self._save(user, record, result.state, meta)
            jobs.succeed(
                job_id,
                {
                    "file": record.file,
                    "url": f"/loras/{record.file}?user_id={user}",
                    "loss_before": round(result.probe_before, 5),
                    "loss_after": round(result.probe_after, 5),
                    "training_seconds": round(result.seconds, 2),
                    "thumbnail": thumb,
                },
            )
        except Cancelled:
            jobs.stop(job_id)
        except Exception as exc:  # the job records why; the engine keeps serving
            log.exception("training job %s failed", job_id)
            jobs.fail(job_id, failure_message(exc))
        finally:
            trainer.remove()
            model.loras.invalidate()

    def _hooks(self, job_id: str, model: LoadedModel, cfg: TrainConfig) -> Any:
        """How a run reports its steps and samples, stops, and lets generations in."""
        from engine.training.trainer import Hooks

        jobs, prompts = self.rt.jobs, cfg.sample_prompts
        progress = Progress(
            cfg.steps,
            lambda step: images_left(step, cfg.steps, cfg.sample_every, len(prompts)),
            sample_steps(model),
        )
        stop = lambda: jobs.cancel_requested(job_id) or self.rt.stopping.is_set()  # noqa: E731

        def on_step(step: int, loss: float) -> None:
            last = step == cfg.steps  # then the check, the thumbnail and the file
            jobs.progress(
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
            phase, drawn = jobs.current(job_id).phase, []
            for i, prompt in enumerate(prompts, 1):
                jobs.progress(
                    job_id, phase=JobPhase.SAMPLING, phase_step=i, phase_total=len(prompts)
                )
                started = time.monotonic()
                image = self._draw(model, prompt, cfg.seed, stop)  # a cancel stops it mid-image
                progress.drew(time.monotonic() - started)
                drawn.append(JobSample(step=step, prompt=prompt, seed=cfg.seed, image=image))
            samples = [*jobs.current(job_id).samples, *drawn]
            jobs.progress(job_id, phase=phase, phase_step=None, phase_total=None, samples=samples)

        def between_steps() -> None:
            try:
                self.rt.worker.run_pending()
            finally:  # a stack the generations fused must not stay in the weights it trains
                model.loras.invalidate()

        return Hooks(
            on_step,
            stop,
            lambda: self.rt.worker.has_pending(),
            between_steps,
            on_prepare=lambda done, total: jobs.progress(
                job_id, phase_step=done, phase_total=total
            ),
            sample=sample,
        )

    def _draw(self, model: LoadedModel, prompt: str, seed: int, stop=lambda: False) -> str:
        """A small image from the pipeline as it is (the LoRA being trained active), as a
        data URL: the samples and the finished LoRA's thumbnail. Cancelled at the first
        sampling step after `stop()`."""
        from engine.pipelines import render
        from engine.previews import data_url

        def step(_i: int, _latents: Any) -> None:
            if stop():
                raise Cancelled()

        d = model.info.defaults
        side = min(d.width, 512)
        params = RenderParams(
            prompt, "", sample_steps(model), d.guidance_scale, side, side, (seed,)
        )
        image = render(model.pipe, params, step)[0]
        image.thumbnail((128, 128))
        return data_url(image)

    def _save(self, user: str, record: TrainingRecord, state: dict, meta: dict[str, str]) -> None:
        from safetensors.torch import save_file

        store, file = self.rt.store, record.file
        if store.exists("loras", user, file) and not record.overwrite:
            raise Conflict(f"a LoRA named {file!r} appeared while training; not replaced")
        with store.writing("loras", user, file, replace=record.overwrite) as tmp:
            save_file(state, str(tmp), metadata=meta)
