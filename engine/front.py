"""The engine's front: what a request needs checked before any work is queued, none of it
needing the model, so a local engine and a celery dispatcher refuse the same requests with the
same answers. It then hands the work to the work queue (`engine.work`), whichever runs it."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

from PIL import Image

from engine.contract.errors import Conflict, InvalidRequest, NotFound, NotReady, QueueFull
from engine.contract.generation import GenerateRequest, GenerateResponse
from engine.contract.jobs import GenerateAccepted, Job, JobStatus
from engine.contract.names import check_file_name
from engine.contract.presets import PresetList
from engine.contract.records import TrainingRecord
from engine.contract.schemas import (
    MAX_TRAINING_STEPS,
    Captions,
    CheckpointDraw,
    CheckpointPicture,
    CheckpointSave,
    ContinueForm,
    SubjectMasks,
    TrainOptions,
)
from engine.contract.training import ResumedFrom
from engine.jobs import TRAINING
from engine.storage import iso
from engine.training.defaults import checked_captions, preset_list, trigger_word
from engine.training.files import JobFiles, kept_checkpoint
from engine.training.presets import group_of
from engine.uploads import TrainingImage
from engine.work.base import Gone, WorkQueue


class Front:
    def __init__(self, work: WorkQueue) -> None:
        self.work = work
        self.store = work.store
        self.settings = work.settings
        self.files = JobFiles(work.store)

    # -- generation ----------------------------------------------------------------------
    def _check_generation(self, user: str, req: GenerateRequest) -> None:
        self.store.check_quota(user, self.settings.user_quota_mb)
        for spec in req.loras:
            self.store.info("loras", user, check_file_name(spec.file, "loras"))  # 404s
        if req.init_image and not req.init_image.startswith("data:"):
            self.store.info("outputs", user, check_file_name(req.init_image, "outputs"))

    async def generate(
        self, user: str, req: GenerateRequest, gone: Callable[[], Awaitable[bool]]
    ) -> GenerateResponse:
        """The images in the answer; a client that hangs up stops the work."""
        await asyncio.to_thread(self._check_generation, user, req)
        return await self.work.generate(user, req, gone)

    def start_generation(self, user: str, req: GenerateRequest) -> GenerateAccepted:
        self._check_generation(user, req)
        job = self.work.start_generation(user, req)
        return GenerateAccepted(job_id=job.id, status_url=f"/jobs/{job.id}", job=job)

    # -- training ------------------------------------------------------------------------
    def train(self, user: str, images: list[TrainingImage], opts: TrainOptions) -> Job:
        """`user` is already checked: it comes from the one identity channel (deps.py)."""
        self._check_share(user)
        file = check_file_name(opts.name, "loras")
        if self.store.exists("loras", user, file) and not opts.overwrite:
            raise Conflict(f"LoRA {file!r} already exists; send overwrite=true to replace it")
        captions = checked_captions(opts, len(images))
        sha256s = [im.sha256 for im in images]  # of what was uploaded, recorded once here
        masks = [im.mask_sha256 for im in images]
        record = TrainingRecord.requested(opts, file, trigger_word(opts), captions, sha256s, masks)
        self.files.prune(user, self.work.jobs.list(user))
        self.files.keep_images(user, images)
        return self.work.start_training(user, record)

    def resume(self, user: str, job_id: str) -> Job:
        """A cancelled training, or one the engine's end cut short, from its last checkpoint
        to its original total."""
        job = self._training_job(user, job_id)
        if not (job.status == JobStatus.CANCELLED or job.cut_short):
            raise Conflict(
                f"job {job_id!r} {job.status.value}"
                + (f" ({job.error})" if job.error else "")
                + ": only a cancelled training, or one the engine's end cut short, is resumed",
                code="not_resumable",
            )
        kept = [c for c in job.checkpoints if c.kept]
        if not kept or self.files.state(user, job_id) is None:
            raise Conflict(
                f"job {job_id!r} stopped before its first checkpoint: nothing to resume; "
                "train again",
                code="no_checkpoint",
            )
        self._check_share(user)
        step = kept[-1].step
        record = TrainingRecord.model_validate(job.params)
        return self.work.start_training(
            user,
            record,
            resumed_from=ResumedFrom(job_id=job_id, step=step),
            checkpoints=[c for c in job.checkpoints if c.step <= step],
            samples=[s for s in job.samples if s.step <= step],
        )

    def continue_lora(self, user: str, file: str, form: ContinueForm) -> Job:
        """`form.steps` more steps on a LoRA trained here, with its kept training state, or
        from its weights with a fresh optimizer if the state is gone."""
        file = check_file_name(file, "loras")
        meta = self.store.lora_entry(user, file).get("metadata") or {}  # 404s
        job = self._source_job(user, meta.get("loramint.job_id"), file)
        record = TrainingRecord.model_validate(job.params)
        if job.status != JobStatus.SUCCEEDED or record.steps is None:
            raise Conflict(f"the training of {file!r} did not finish", code="not_continuable")
        self._check_share(user)
        at = int(meta.get("loramint.step") or record.steps)  # a saved checkpoint: its step
        if at + form.steps > MAX_TRAINING_STEPS:
            raise InvalidRequest(
                f"steps: {file!r} has {at} steps; at most {MAX_TRAINING_STEPS - at} more make "
                f"the {MAX_TRAINING_STEPS} a training may have",
                code="too_many_steps",
            )
        options = {**record.options, "steps": at + form.steps, "overwrite": True}
        if form.learning_rate:
            options["learning_rate"] = form.learning_rate
        # A job's state is its last checkpoint's: this LoRA's only if it is that step.
        last = job.checkpoints[-1].step if job.checkpoints else None
        fresh = self.files.state(user, job.id) is None or not at == last == record.steps
        name = file.removesuffix(".safetensors")
        new = record.model_copy(
            update={"options": options, "overwrite": True, "file": file, "name": name}
        )
        return self.work.start_training(
            user,
            new,
            resumed_from=ResumedFrom(
                job_id=job.id,
                step=at,
                how="continue",
                fresh_optimizer=fresh,
                lora=file if fresh else None,
            ),
        )

    def save_checkpoint(self, user: str, job_id: str, step: int, body: CheckpointSave) -> str:
        """A kept checkpoint becomes one of the user's LoRAs, usable at once."""
        job = self._training_job(user, job_id)
        self.store.check_quota(user, self.settings.user_quota_mb)
        recommended = job.report.recommended if job.report else None
        strength = (
            body.strength
            if body.strength is not None
            else (recommended.strength if recommended else 1.0)
        )
        changes = {
            "loramint.step": str(step),
            "loramint.preferred_strength": f"{strength:g}",
            "loramint.created": iso(time.time()),
        }
        file = self.files.save_as_lora(user, job, step, body.name, changes, body.overwrite)
        points = [
            c.model_copy(update={"saved_as": file}) if c.step == step else c
            for c in job.checkpoints
        ]
        self.work.jobs.progress(job_id, checkpoints=points)
        return file

    async def draw_checkpoint(
        self, user: str, job_id: str, step: int, body: CheckpointDraw, gone: Gone
    ) -> CheckpointPicture:
        """The report card's held-out picture for a kept checkpoint at another strength, added
        to its grid (one already drawn comes back as it is)."""
        job = self._training_job(user, job_id)
        point = kept_checkpoint(job, step, "draw")
        report = job.report
        if report is None or report.grid_prompt is None or report.grid_seed is None:
            why = report.unavailable if report and report.unavailable else "it was not judged"
            raise Conflict(f"job {job_id!r} has no report card grid: {why}", code="not_judged")
        key = f"{round(body.strength, 2):g}"
        picture = point.grid.get(key)
        if picture is None:
            picture = await self.work.draw_checkpoint(
                user, point.file or "", float(key), report.grid_prompt, report.grid_seed, gone
            )
            # Read again: the training may have recorded a checkpoint while this one drew.
            points = [
                c.model_copy(update={"grid": {**c.grid, key: picture}}) if c.step == step else c
                for c in self.work.jobs.get(job_id, user).checkpoints
            ]
            self.work.jobs.progress(job_id, checkpoints=points)
        return CheckpointPicture(step=step, strength=key, picture=picture)

    def _training_job(self, user: str, job_id: str) -> Job:
        job = self.work.jobs.get(job_id, user)  # another user's: the same 404 as none
        if job.kind != TRAINING:
            raise NotFound(f"job {job_id!r} is not a training")
        return job

    def _source_job(self, user: str, job_id: str | None, file: str) -> Job:
        """The training that made a LoRA, while it is remembered."""
        try:
            if job_id:
                return self._training_job(user, job_id)
        except NotFound:
            pass
        raise Conflict(
            f"{file!r} was not trained here, or its training was forgotten: the images it was "
            "trained on are not kept, so it can't be continued; train a new LoRA",
            code="not_continuable",
        )

    def _check_share(self, user: str) -> None:
        """At most `user_training_jobs` trainings per user at once, and room in their quota.
        Only trainings count: a generation still rendering must not block one."""
        limit = self.settings.user_training_jobs
        active = [
            j for j in self.work.jobs.list(user) if j.kind == TRAINING and not j.status.terminal
        ]
        if len(active) >= limit:
            wait = max((j.eta_s or 60.0) for j in active)
            raise QueueFull(
                f"you already have {len(active)} training job(s) queued or running, the most "
                "one user may have (LORAMINT_USER_TRAINING_JOBS); wait for it or cancel it",
                code="too_many_jobs",
                headers={"Retry-After": str(math.ceil(wait))},
            )
        self.store.check_quota(user, self.settings.user_quota_mb)

    # -- captions ------------------------------------------------------------------------
    async def caption(self, user: str, images: list[Image.Image], trigger: str | None) -> Captions:
        return await self.work.caption(user, images, trigger)

    async def subject_masks(self, user: str, images: list[Image.Image]) -> SubjectMasks:
        return await self.work.subject_masks(user, images)

    def presets(self, images: int, masked: bool, group: str | None) -> PresetList:
        """The presets for the served model's group (or `group`'s)."""
        if group is None:
            health = self.work.health()  # celery mode: a live worker's model
            family, defaults = health.get("family"), health.get("defaults")
            if not family or not defaults:
                raise NotReady(
                    "the model is not loaded yet, and presets depend on it: try again soon, "
                    "or send ?group=small|sd|sdxl"
                )
            group = group_of(family, defaults["width"])
        return preset_list(group, images, masked)
