"""The engine's front: what a request needs checked before any work is queued, none of it
needing the model, so a local engine and a celery dispatcher refuse the same requests with the
same answers. It then hands the work to the work queue (`engine.work`), whichever runs it."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable

from PIL import Image

from engine.contract.errors import Conflict, QueueFull
from engine.contract.names import check_file_name
from engine.contract.records import TrainingRecord
from engine.contract.schemas import (
    Captions,
    GenerateAccepted,
    GenerateRequest,
    GenerateResponse,
    Job,
    TrainOptions,
)
from engine.training.defaults import checked_captions, trigger_word
from engine.uploads import TrainingImage
from engine.work.base import WorkQueue

TRAINING = "train-lora"


class Front:
    def __init__(self, work: WorkQueue) -> None:
        self.work = work
        self.store = work.store
        self.settings = work.settings

    # -- generation ----------------------------------------------------------------------
    def _check_generation(self, user: str, req: GenerateRequest) -> None:
        self.store.check_quota(user, self.settings.user_quota_mb)
        for spec in req.loras:
            self.store.info("loras", user, check_file_name(spec.file, "loras"))  # 404s

    async def generate(
        self, user: str, req: GenerateRequest, gone: Callable[[], Awaitable[bool]]
    ) -> GenerateResponse:
        """The images in the answer; a client that hangs up stops the work."""
        self._check_generation(user, req)
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
        record = TrainingRecord.requested(opts, file, trigger_word(opts), captions, sha256s)
        return self.work.start_training(user, images, record)

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
