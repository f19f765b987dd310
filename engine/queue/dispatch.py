"""The engine's web layer in celery mode: the same routes, checks and answers, but no model and
no device. Work goes onto the queue; files come from the shared store; jobs from Redis.

What needs the model (its native size, its default steps, the training settings for its
family) is decided by the worker that takes the task: such a problem comes back as the same
4xx for a synchronous generation, and as the failed job's reason for a job."""

from __future__ import annotations

import asyncio
import base64
import io
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
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
from engine.contract.handlers import error_response
from engine.contract.names import check_file_name
from engine.contract.schemas import (
    Captions,
    GenerateAccepted,
    GenerateRequest,
    GenerateResponse,
    Job,
    TrainOptions,
)
from engine.queue.celery_app import CAPTION, GENERATE, GENERATE_JOB, QUEUES, TRAIN, make_celery
from engine.queue.presence import TTL_S, live_workers
from engine.queue.records import RedisJobStore
from engine.runtime import Health
from engine.storage import UserStore
from engine.training.defaults import checked_captions, trigger_word
from engine.training.service import TrainingService
from engine.uploads import TrainingImage

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


def install_queue_errors(app: FastAPI, settings: EngineSettings) -> None:
    """Redis out of reach: a clear 503 on every route, not a 500."""

    async def handler(_: Request, exc: Exception) -> Response:
        return error_response(503, "queue_unavailable", unreachable(settings, exc))

    for error in (redis.RedisError, OperationalError):
        app.add_exception_handler(error, handler)


def raise_answer(payload: dict[str, Any]) -> Any:
    """The task's answer, or the contract error it carried, raised again here."""
    if "error" not in payload:
        return payload["answer"]
    e = payload["error"]
    exc = ApiError(e["message"], code=e["code"], headers=e.get("headers"))
    exc.status_code = e["status"]
    raise exc


class DispatchRuntime:
    """What the routes use of `engine.runtime.Runtime`, in celery mode."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.store = UserStore(
            open_store(settings.storage, settings.data_dir), settings.data_dir / ".cache"
        )
        self.jobs = RedisJobStore(settings.queue.BrokerUrl, settings.job_history, retries=3)
        self.pubsub = aioredis.Redis.from_url(settings.queue.BrokerUrl)
        self.celery = make_celery(settings.queue)
        self.stopping = threading.Event()
        self.started = time.time()

    def start(self) -> None:
        pass  # nothing to load: the workers hold the model

    def stop(self) -> None:
        self.stopping.set()

    def begin_shutdown(self) -> None:
        self.stopping.set()

    def workers(self) -> list[dict[str, Any]]:
        return live_workers(self.jobs.redis)

    def require_worker(self) -> None:
        if not any(w["status"] in ("ready", "busy") for w in self.workers()):
            raise EngineUnavailable(NO_WORKER, code="no_worker")

    def cancel_job(self, job_id: str, owner: str) -> Job:
        """Queued: marked cancelled (and revoked); running: its flag stops it at its next step."""
        job = self.jobs.request_cancel(job_id, owner)
        self.celery.control.revoke(job_id)  # job tasks carry their job's id
        return job

    def health(self) -> dict[str, Any]:
        try:
            workers = self.workers()
            waiting = sum(self.jobs.redis.llen(q) for q in set(QUEUES.values()))
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

    async def call(
        self, name: str, args: list[Any], gone: Callable[[], Awaitable[bool]] | None = None
    ) -> Any:
        """Send a task and wait for its answer. A client that hangs up stops it (at its next
        step, or before it starts); workers that all vanish end the wait with a 503."""
        self.require_worker()
        task_id = uuid.uuid4().hex
        channel = self.celery.backend.get_key_for_task(task_id).decode()
        # Celery's Redis backend publishes each result as it stores it: subscribed before
        # the task is sent, the answer is seen the moment it exists, with no polling.
        async with self.pubsub.pubsub() as results:
            await results.subscribe(channel)
            result = self.celery.send_task(name, args=args, task_id=task_id)
            try:
                return raise_answer(await self._wait(result, results, gone))
            finally:
                result.forget()

    async def _wait(self, result: AsyncResult, results: Any, gone) -> dict[str, Any]:
        checked, alone_since = time.monotonic(), None
        while not await asyncio.to_thread(result.ready):
            await results.get_message(ignore_subscribe_messages=True, timeout=WAKE_S)
            if gone is not None and await gone():
                self.jobs.flag_cancel(result.id)
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


class QueuedGeneration:
    """`GenerationService`'s two ways of answering, through the queue."""

    def __init__(self, rt: DispatchRuntime) -> None:
        self.rt = rt

    def _check(self, user: str, req: GenerateRequest) -> None:
        self.rt.store.check_quota(user, self.rt.settings.user_quota_mb)
        for spec in req.loras:
            self.rt.store.info("loras", user, check_file_name(spec.file, "loras"))  # 404s

    async def generate(self, user: str, req: GenerateRequest, gone) -> GenerateResponse:
        self._check(user, req)
        started = time.perf_counter()
        answer = await self.rt.call(GENERATE, [user, req.model_dump(mode="json")], gone)
        # The wait in the queue counts: the client waited for it.
        return GenerateResponse(**{**answer, "seconds": round(time.perf_counter() - started, 3)})

    def start_job(self, user: str, req: GenerateRequest) -> GenerateAccepted:
        self._check(user, req)
        body = req.model_dump(mode="json")
        job = self.rt.jobs.create("generate", user, req.steps or 0, {**body, "user_id": user})
        self.rt.celery.send_task(GENERATE_JOB, args=[job.id, user, body], task_id=job.id)
        return GenerateAccepted(job_id=job.id, status_url=f"/jobs/{job.id}", job=job)


class QueuedTraining:
    """`TrainingService.submit` through the queue: the images wait in the shared store."""

    def __init__(self, rt: DispatchRuntime) -> None:
        self.rt = rt

    def submit(self, user: str, images: list[TrainingImage], opts: TrainOptions) -> Job:
        file_name = TrainingService(self.rt).check(user, opts)  # type: ignore[arg-type]
        captions = checked_captions(opts, len(images))
        batch = uuid.uuid4().hex[:12]
        uploads = []
        for i, im in enumerate(images):
            name = f"{batch}-{i}.png"
            with self.rt.store.writing("uploads", user, name) as tmp:
                im.image.save(tmp, format="PNG")
            uploads.append(name)
        params = {
            "name": file_name.removesuffix(".safetensors"),
            "file": file_name,
            "trigger_word": trigger_word(opts),
            "captions": list(captions),
            "image_count": len(images),
            "image_sha256": [im.sha256 for im in images],
            "overwrite": opts.overwrite,
            "options": opts.model_dump(mode="json", include=set(TrainOptions.model_fields)),
        }
        job = self.rt.jobs.create("train-lora", user, opts.steps or 0, params)
        self.rt.celery.send_task(TRAIN, args=[job.id, user, uploads], task_id=job.id)
        return job


class QueuedCaptions:
    def __init__(self, rt: DispatchRuntime) -> None:
        self.rt = rt

    async def caption(self, user: str, images: list[Image.Image], trigger: str | None) -> Captions:
        encoded = []
        for im in images:
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            encoded.append(base64.b64encode(buf.getvalue()).decode())
        return Captions.model_validate(await self.rt.call(CAPTION, [user, encoded, trigger]))
