"""The work queue in celery mode (`engine.work.WorkQueue`): no model and no device here. Work
goes onto Redis as signed tasks for the workers; files come from the shared store; jobs from
Redis.

What needs the model (its native size, its default steps, the training settings for its
family) is decided by the worker that takes the task: such a problem comes back as the same
4xx for a synchronous generation, and as the failed job's reason for a job."""

from __future__ import annotations

import asyncio
import base64
import io
import time
import uuid
from typing import Any

import redis
import redis.asyncio as aioredis
from celery.result import AsyncResult
from fastapi import FastAPI, Request, Response
from kombu.exceptions import OperationalError
from PIL import Image

from engine.blobs import open_store
from engine.config import EngineSettings
from engine.contract.errors import ApiError, ClientClosed, EngineUnavailable
from engine.contract.generation import GenerateRequest, GenerateResponse
from engine.contract.handlers import error_response
from engine.contract.jobs import Job
from engine.contract.records import ImageParameters, TrainingRecord
from engine.contract.schemas import Captions, SubjectMasks
from engine.jobs import GENERATION, TRAINING
from engine.lifecycle import JobLifecycle
from engine.queue.celery_app import (
    CAPTION,
    DRAW_CHECKPOINT,
    GENERATE,
    GENERATE_JOB,
    QUEUES,
    SUBJECT_MASKS,
    TRAIN,
    make_celery,
)
from engine.queue.presence import TTL_S, live_workers
from engine.queue.records import RedisJobStore
from engine.queue.signing import sign
from engine.runtime import Health
from engine.storage import UserStore
from engine.work.base import Gone, WorkQueue

# What /health shows per worker only (the top level describes the model the workers serve).
WORKER_ONLY = ("name", "status", "running", "queue_depth", "lora_cache")
WAKE_S = 0.25  # a waiting request checks its client and the workers at least this often
NO_WORKER = (
    "no engine worker is connected: start one with `python -m engine worker` "
    "(LORAMINT_QUEUE__MODE=celery, the same LORAMINT_QUEUE__BROKERURL)"
)


def unreachable(settings: EngineSettings, exc: Exception) -> str:
    host = settings.queue.BrokerUrl.split("@")[-1]  # no password in messages
    return (
        f"the queue (Redis at {host}) can't be reached ({type(exc).__name__}): start it, or "
        "check LORAMINT_QUEUE__BROKERURL"
    )


def raise_answer(payload: dict[str, Any]) -> Any:
    """The task's answer, or the contract error it carried, raised again here."""
    if "error" not in payload:
        return payload["answer"]
    e = payload["error"]
    exc = ApiError(e["message"], code=e["code"], headers=e.get("headers"))
    exc.status_code = e["status"]
    raise exc


class CeleryQueue(WorkQueue):
    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.store = UserStore(
            open_store(settings.storage, settings.data_dir), settings.data_dir / ".cache"
        )
        self.records = RedisJobStore(settings.queue.BrokerUrl, settings.job_history, retries=3)
        self.jobs = JobLifecycle(self.records)
        self.pubsub = aioredis.Redis.from_url(settings.queue.BrokerUrl)
        self.celery = make_celery(settings.queue)
        self.secret = settings.queue_secret or ""
        self.started = time.time()

    def install(self, app: FastAPI) -> None:
        """Redis out of reach: a clear 503 on every route, not a 500."""

        async def handler(_: Request, exc: Exception) -> Response:
            return error_response(503, "queue_unavailable", unreachable(self.settings, exc))

        for error in (redis.RedisError, OperationalError):
            app.add_exception_handler(error, handler)

    def start(self) -> None:
        pass  # nothing to load: the workers hold the model

    def stop(self) -> None:
        pass

    def begin_shutdown(self) -> None:
        pass  # queued work waits in Redis for the workers, whoever dispatches it

    def send(self, name: str, args: list[Any], task_id: str | None = None) -> AsyncResult:
        """A signed task (signing.py): workers refuse any other."""
        task_id = task_id or uuid.uuid4().hex
        signature = sign(self.secret, name, task_id, args)
        return self.celery.send_task(
            name, args=args, kwargs={"signature": signature}, task_id=task_id
        )

    def workers(self) -> list[dict[str, Any]]:
        return live_workers(self.records.redis)

    def _require_worker(self) -> None:
        if not any(w["status"] in ("ready", "busy") for w in self.workers()):
            raise EngineUnavailable(NO_WORKER, code="no_worker")

    def cancel(self, job_id: str, owner: str) -> Job:
        """Queued: marked cancelled (and revoked); running: its flag stops it at its next step."""
        job = self.jobs.cancel(job_id, owner)
        self.celery.control.revoke(job_id)  # job tasks carry their job's id
        return job

    def health(self) -> dict[str, Any]:
        try:
            workers = self.workers()
            waiting = sum(self.records.redis.llen(q) for q in set(QUEUES.values()))
        except redis.RedisError as exc:
            return {"status": Health.WAITING.value, "reason": unreachable(self.settings, exc)}
        live = [w for w in workers if w["status"] in ("ready", "busy")]
        first = live[0] if live else {"model": self.settings.model}
        return {
            **{k: v for k, v in first.items() if k not in WORKER_ONLY},
            "status": Health.READY.value if live else Health.WAITING.value,
            "reason": None if live else NO_WORKER,
            "queue": "celery",
            "workers": workers,
            "queue_depth": waiting,
            "uptime_s": round(time.time() - self.started, 1),
        }

    async def _call(self, name: str, args: list[Any], gone: Gone | None = None) -> Any:
        """Send a task and wait for its answer. A client that hangs up stops it (at its next
        step, or before it starts); workers that all vanish end the wait with a 503."""
        self._require_worker()
        task_id = uuid.uuid4().hex
        channel = self.celery.backend.get_key_for_task(task_id).decode()
        # Celery's Redis backend publishes each result as it stores it: subscribed before
        # the task is sent, the answer is seen the moment it exists, with no polling.
        async with self.pubsub.pubsub() as results:
            await results.subscribe(channel)
            result = self.send(name, args, task_id)
            try:
                return raise_answer(await self._wait(result, results, gone))
            finally:
                result.forget()

    async def _wait(self, result: AsyncResult, results: Any, gone) -> dict[str, Any]:
        checked, alone_since = time.monotonic(), None
        while not await asyncio.to_thread(result.ready):
            await results.get_message(ignore_subscribe_messages=True, timeout=WAKE_S)
            if gone is not None and await gone():
                self.records.flag_cancel(result.id)
                self.celery.control.revoke(result.id)
                raise ClientClosed("the client went away; the generation was stopped")
            if time.monotonic() - checked > 1.0:
                checked = time.monotonic()
                alone_since = None if self.workers() else (alone_since or checked)
                if alone_since and checked - alone_since > TTL_S:
                    self.celery.control.revoke(result.id)
                    raise EngineUnavailable(NO_WORKER, code="no_worker")
        if result.failed():  # the details are in the worker's log, not for the client
            raise ApiError(
                f"the worker failed ({type(result.result).__name__}); its log has details"
            )
        return result.result

    # -- the work ------------------------------------------------------------------------
    async def generate(self, user: str, req: GenerateRequest, gone: Gone) -> GenerateResponse:
        started = time.perf_counter()
        answer = await self._call(GENERATE, [user, req.model_dump(mode="json")], gone)
        # The wait in the queue counts: the client waited for it.
        return GenerateResponse(**{**answer, "seconds": round(time.perf_counter() - started, 3)})

    def start_generation(self, user: str, req: GenerateRequest) -> Job:
        job = self.jobs.create(
            GENERATION, user, req.steps or 0, ImageParameters.requested(user, req)
        )
        self.send(GENERATE_JOB, [job.id, user, req.model_dump(mode="json")], task_id=job.id)
        return job

    def start_training(self, user: str, record: TrainingRecord, **fields: Any) -> Job:
        """The images wait in the shared store for the worker that takes the task."""
        job = self.jobs.create(TRAINING, user, record.options.get("steps") or 0, record)
        if fields:
            self.jobs.progress(job.id, **fields)
        self.send(TRAIN, [job.id, user], task_id=job.id)
        return self.jobs.current(job.id)

    async def draw_checkpoint(
        self, user: str, file: str, strength: float, prompt: str, seed: int, gone: Gone
    ) -> str:
        """Any worker can: the checkpoint is in the shared store."""
        return await self._call(DRAW_CHECKPOINT, [user, file, strength, prompt, seed], gone)

    async def caption(self, user: str, images: list[Image.Image], trigger: str | None) -> Captions:
        answer = await self._call(CAPTION, [user, _pngs(images), trigger])
        return Captions.model_validate(answer)

    async def subject_masks(self, user: str, images: list[Image.Image]) -> SubjectMasks:
        answer = await self._call(SUBJECT_MASKS, [user, _pngs(images)])
        return SubjectMasks.model_validate(answer)


def _pngs(images: list[Image.Image]) -> list[str]:
    """Pictures as a task's arguments: base64 PNGs."""
    out = []
    for im in images:
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append(base64.b64encode(buf.getvalue()).decode())
    return out
