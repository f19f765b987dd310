"""Training work, on the model's side of the line: plan a requested LoRA with the model's
defaults, run it on the device worker (samples, progress, cancel between steps), and save the
finished LoRA with its record. The checks that need no model are the front's (`engine.front`)."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from engine.contract.errors import ApiError, Conflict, InvalidRequest
from engine.contract.jobs import JobPhase, JobSample
from engine.contract.records import TrainingRecord
from engine.contract.training import JobCheckpoint
from engine.generation import failure_message
from engine.jobs import Cancelled
from engine.runtime import LoadedModel, Runtime
from engine.storage import iso
from engine.training.card import ReportCard
from engine.training.config import TrainConfig
from engine.training.defaults import changed_from_preset, train_config
from engine.training.files import JobFiles, checkpoint_name, state_name
from engine.training.memory import card_memory_of, fit_to_card
from engine.training.pictures import draw, sample_steps
from engine.training.presets import group_of
from engine.training.progress import Progress, SpillWatch, images_left
from engine.uploads import TrainingImage

log = logging.getLogger(__name__)


class TrainingWork:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self.store = runtime.store
        self.files = JobFiles(runtime.store)

    @staticmethod
    def plan(
        model: LoadedModel, n_images: int, record: TrainingRecord
    ) -> tuple[TrainConfig, TrainingRecord]:
        """The run's settings for this model, and the record with them."""
        if model.pipe.unet.config.in_channels != 4:
            raise InvalidRequest(
                "this model is an inpainting checkpoint (its UNet also takes a mask): LoRAs "
                "are trained on the base model it was made from; load that to train",
                code="cannot_train_this_model",
            )
        masked = bool(record.mask_sha256)
        opts = record.train_options()
        cfg = train_config(opts, n_images, model.info, masked)
        changed = changed_from_preset(opts, cfg, model.info, n_images, masked)
        cfg, card_plan = fit_to_card(cfg, group_of(model.info.family, model.info.defaults.width),
                                     card_memory_of(model))  # fmt: skip
        return cfg, record.planned(
            preset=opts.preset,
            adapter=opts.adapter,
            changed_from_preset=changed,
            gradient_checkpointing=cfg.gradient_checkpointing,
            card_plan=card_plan,
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
            checkpoint_every=cfg.checkpoint_every,
        )

    def run_job(self, job_id: str) -> None:
        """On the worker: the job as its record says (the images and any checkpoint it goes
        on from are in the store, so any worker can run it)."""
        jobs, job = self.rt.jobs, self.rt.jobs.current(job_id)
        if job.status.terminal:  # cancelled while it waited
            return
        try:
            record = TrainingRecord.model_validate(job.params)
            images = self.files.images(job.user_id, record.kept_images)
            model = self.rt.require_model()
            cfg, record = self.plan(model, len(images), record)
            files = self.files
            resume = files.own_state(job) or files.resume_point(job.user_id, job.resumed_from)
        except (ApiError, ValueError) as exc:  # its images or checkpoint can't be used
            jobs.fail(job_id, getattr(exc, "message", None) or str(exc))
            return
        jobs.record(job_id, record, total_steps=cfg.steps)
        if resume is not None:  # what a worker that stopped drew after it goes again
            job = jobs.current(job_id)
            jobs.progress(
                job_id,
                samples=[x for x in job.samples if x.step <= resume.step],
                checkpoints=[c for c in job.checkpoints if c.step <= resume.step],
            )
        self.run(job_id, model, images, cfg, record, resume)

    def run(
        self,
        job_id: str,
        model: LoadedModel,
        images: list[TrainingImage],
        cfg: TrainConfig,
        record: TrainingRecord,
        resume: Any = None,
    ) -> None:
        """On the worker: train (from `resume`, a `TrainingState`, if given), then save the
        LoRA as the job's user; the job says how."""
        from engine.pipelines import memory_guard  # torch: only on the worker
        from engine.training.trainer import LoraTrainer

        jobs = self.rt.jobs
        user = jobs.current(job_id).user_id
        if not jobs.start(job_id, JobPhase.PREPARING):  # cancelled while it waited
            return
        card = ReportCard(job_id, model, record, images, jobs, self.rt.clip)
        trainer = LoraTrainer(model.pipe, cfg, self._hooks(job_id, model, cfg, card))
        model.loras.invalidate()
        try:
            what = f"training at {cfg.resolution} px, rank {cfg.rank}"
            way_out = "lower the resolution or the rank, or turn prior preservation off"
            with memory_guard(what, way_out):
                result = trainer.run(
                    [im.image for im in images], resume, masks=[im.mask for im in images]
                )
            thumb = self._draw(model, cfg.captions[0], cfg.seed)
            extra = {
                "created": iso(time.time()),
                "training_seconds": round(result.seconds, 2),
                "thumbnail": thumb,
                "job_id": job_id,
            }
            meta = self._metadata(model, record, result.adapter_metadata, extra)
            self._save(user, record, result.state, meta)
            points = jobs.current(job_id).checkpoints  # the last one is the LoRA saved
            if points and points[-1].step == cfg.steps:
                points = [*points[:-1], points[-1].model_copy(update={"saved_as": record.file})]
            jobs.progress(job_id, checkpoints=points, report=card.report(final=True))
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

    @staticmethod
    def _metadata(model: LoadedModel, record: TrainingRecord, adapter: dict, extra: dict):
        meta = record.lora_metadata(model.info.model, model.info.family, extra)
        meta["lora_adapter_metadata"] = json.dumps(adapter, sort_keys=True)
        meta["format"] = "pt"
        return meta

    def _checkpoint(self, job_id: str, model: LoadedModel, card: ReportCard, point) -> None:
        """Keep the LoRA at this step and the state to go on from, drop the oldest beyond
        `keep_checkpoints`, and judge it for the report card."""
        from safetensors.torch import save

        jobs, step = self.rt.jobs, point.state.step
        job = jobs.current(job_id)
        user, name = job.user_id, checkpoint_name(job_id, step)
        extra = {"created": iso(time.time()), "step": step, "job_id": job_id}
        meta = self._metadata(model, card.record, point.adapter_metadata, extra)
        self.files.put(user, name, save(point.lora, metadata=meta))
        self.files.put(user, state_name(job_id), point.state.to_bytes())
        samples = [i for i, s in enumerate(job.samples) if s.step == step]
        if card.images:
            jobs.progress(job_id, phase=JobPhase.JUDGING, phase_step=None, phase_total=None)
        scores, grid = card.judge(step, point.strength)
        point = JobCheckpoint(step=step, samples=samples, file=name, scores=scores, grid=grid)
        # Read again: a picture drawn on demand (front.draw_checkpoint) may have come in.
        points = [*jobs.current(job_id).checkpoints, point]
        keep = card.record.train_options().keep_checkpoints
        kept = sorted(c.step for c in points if c.kept)[-keep:]
        for old in points:  # a resumed job's inherited ones stay its first job's to remove
            if old.kept and old.step not in kept and (old.file or "").startswith(job_id):
                self.files.drop(user, old.file or "")
        points = [c.model_copy(update={"kept": c.kept and c.step in kept}) for c in points]
        # One write: a checkpoint is never seen without the report card that judged it.
        report = card.report(final=False, points=points)
        jobs.progress(job_id, phase=job.phase, checkpoints=points, report=report)

    def _hooks(self, job_id: str, model: LoadedModel, cfg: TrainConfig, card) -> Any:
        """How a run reports its steps and samples, stops, and lets generations in."""
        from engine.training.trainer import Hooks

        jobs, prompts = self.rt.jobs, cfg.sample_prompts
        progress = Progress(
            cfg.steps,
            lambda step: (
                images_left(step, cfg.steps, cfg.sample_every, len(prompts))
                + images_left(step, cfg.steps, cfg.checkpoint_every, card.images)
                - 1
            ),  # the thumbnail, counted by both
            sample_steps(model),
        )
        stop = lambda: jobs.cancel_requested(job_id) or self.rt.stopping.is_set()  # noqa: E731
        card.stop, card.drawn = stop, progress.drew

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

        watch = SpillWatch(model.info.device)

        def step_time(seconds: float) -> None:
            if warning := watch.step(seconds):
                log.warning("training job %s: %s", job_id, warning)
                jobs.progress(job_id, warning=warning)

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
            checkpoint=lambda point: self._checkpoint(job_id, model, card, point),
            step_time=step_time,
        )

    @staticmethod
    def _draw(model: LoadedModel, prompt: str, seed: int, stop=lambda: False) -> str:
        """A small image from the pipeline as it is (the LoRA being trained active), as a
        data URL: the samples and the finished LoRA's thumbnail."""
        from engine.previews import data_url

        image = draw(model, [(prompt, seed)], stop)[0]
        image.thumbnail((128, 128))
        return data_url(image)

    def _save(self, user: str, record: TrainingRecord, state: dict, meta: dict[str, str]) -> None:
        from safetensors.torch import save_file

        store, file = self.rt.store, record.file
        if store.exists("loras", user, file) and not record.overwrite:
            raise Conflict(f"a LoRA named {file!r} appeared while training; not replaced")
        with store.writing("loras", user, file, replace=record.overwrite) as tmp:
            save_file(state, str(tmp), metadata=meta)
