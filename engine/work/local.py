"""The default: this process loads the model and runs all work on its one device thread
(`engine.worker.DeviceWorker`), jobs kept as files in the data dir."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import Future
from typing import Any

from PIL import Image

from engine.captions import CaptionWork
from engine.config import EngineSettings
from engine.contract.errors import ClientClosed, ShuttingDown
from engine.contract.generation import GenerateRequest, GenerateResponse
from engine.contract.jobs import Job
from engine.contract.records import TrainingRecord
from engine.contract.schemas import Captions, SubjectMasks
from engine.generation import GenerationWork
from engine.jobs import GENERATION, TRAINING, Cancelled
from engine.runtime import STOPPING, Runtime
from engine.subject import SubjectMaskWork
from engine.training.pictures import submit_checkpoint
from engine.training.service import TrainingWork
from engine.work.base import Gone, WorkQueue

log = logging.getLogger(__name__)
GONE_POLL_S = 0.25  # how often a waiting request checks that its client is still there


class LocalQueue(WorkQueue):
    def __init__(self, settings: EngineSettings) -> None:
        self.rt = Runtime(settings)
        self.settings, self.store, self.jobs = settings, self.rt.store, self.rt.jobs

    def start(self) -> None:
        self.rt.start()

    def stop(self) -> None:
        self.rt.stop()

    def begin_shutdown(self) -> None:
        self.rt.begin_shutdown()

    def health(self) -> dict[str, Any]:
        return self.rt.health()

    def cancel(self, job_id: str, owner: str) -> Job:
        return self.rt.cancel_job(job_id, owner)

    async def caption(self, user: str, images: list[Image.Image], trigger: str | None) -> Captions:
        return await CaptionWork(self.rt).caption(user, images, trigger)

    async def subject_masks(self, user: str, images: list[Image.Image]) -> SubjectMasks:
        return await SubjectMaskWork(self.rt).masks(user, images)

    # -- generation ----------------------------------------------------------------------
    async def generate(self, user: str, req: GenerateRequest, gone: Gone) -> GenerateResponse:
        """If the client hangs up, queued work is dropped and running work stops at its
        next step; nothing is saved."""
        work = GenerationWork(self.rt)
        plan = await asyncio.to_thread(work.plan, user, req)  # decodes pictures, reads files
        started = time.perf_counter()
        hung_up = threading.Event()
        marks: dict[str, float] = {}

        def render() -> list[Image.Image]:
            marks["started"] = time.perf_counter()
            try:
                return work.render_images(plan, hung_up.is_set)
            finally:
                marks["rendered"] = time.perf_counter()

        future = self.rt.worker.submit(render, label="generate", owner=user)
        images = await self._wait(future, gone, hung_up)
        keep = work.inline_all if self.settings.mode == "preview" else work.save_all
        results = await asyncio.to_thread(keep, plan, images)
        answer = work.response(plan, results, time.perf_counter() - started)
        answer._timing = {
            "wait": marks["started"] - started,
            "render": marks["rendered"] - marks["started"],
            "save": time.perf_counter() - marks["rendered"],
        }
        return answer

    async def _wait(self, future: Future, gone: Gone, hung_up: threading.Event) -> list:
        waiting = asyncio.wrap_future(future)
        while True:
            done, _ = await asyncio.wait({waiting}, timeout=GONE_POLL_S)
            if done:
                break
            if not hung_up.is_set() and await gone():
                hung_up.set()
                if self.rt.worker.withdraw(future):
                    log.info("dropped a queued generation: its client went away")
                    raise ClientClosed("the client went away before its generation started")
                log.info("stopping a running generation: its client went away")
        try:
            return waiting.result()
        except Cancelled:
            if hung_up.is_set():
                raise ClientClosed("the client went away; the generation was stopped") from None
            raise ShuttingDown(STOPPING) from None

    def start_generation(self, user: str, req: GenerateRequest) -> Job:
        work = GenerationWork(self.rt)
        plan = work.plan(user, req)  # the model's own refusals come before any job
        job = self.jobs.create(GENERATION, user, plan.passes.steps, plan.job_parameters())
        future = self.rt.worker.submit(
            lambda: work.run_job(job.id, plan), label="generate", owner=user
        )
        self.rt.track(job.id, future)
        return self.jobs.current(job.id)

    # -- training ------------------------------------------------------------------------
    async def draw_checkpoint(
        self, user: str, file: str, strength: float, prompt: str, seed: int, gone: Gone
    ) -> str:
        from engine.previews import data_url  # torch: only once a model is loaded

        hung_up = threading.Event()
        where = (prompt, seed)
        future = submit_checkpoint(self.rt, user, file, strength, where, hung_up.is_set)
        image = await self._wait(future, gone, hung_up)
        return await asyncio.to_thread(data_url, image)

    def start_training(self, user: str, record: TrainingRecord, **fields: Any) -> Job:
        model = self.rt.require_model()
        work = TrainingWork(self.rt)
        cfg, record = work.plan(model, record.image_count, record)
        job = self.jobs.create(TRAINING, user, cfg.steps, record)
        if fields:
            self.jobs.progress(job.id, **fields)
        future = self.rt.worker.submit(
            lambda: work.run_job(job.id), label=f"train {record.file}", background=True
        )
        self.rt.track(job.id, future)
        return self.jobs.current(job.id)
