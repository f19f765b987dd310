"""What a worker does with each task: the engine's own services on this worker's device
thread, so a queued generation or training is the same work as a local one.

A task answers `{"answer": ...}` or `{"error": {status, code, message}}`: the contract's errors
cross the queue as data and the dispatcher raises them again, so a client sees the same 4xx
whichever mode serves it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Ignore, Reject
from PIL import Image

from engine.captions import CaptionWork
from engine.contract.errors import ApiError, ClientClosed, ShuttingDown
from engine.contract.generation import GenerateRequest
from engine.generation import GenerationWork
from engine.jobs import Cancelled
from engine.queue.celery_app import (
    CAPTION,
    DRAW_CHECKPOINT,
    GENERATE,
    GENERATE_JOB,
    SUBJECT_MASKS,
    TRAIN,
)
from engine.queue.presence import Presence
from engine.queue.signing import verify
from engine.runtime import Runtime
from engine.subject import SubjectMaskWork
from engine.training.pictures import submit_checkpoint
from engine.training.service import TrainingWork

log = logging.getLogger(__name__)
RETRY_S = 3.0  # a task this worker can't take now goes back to the queue for this long


def error_payload(exc: ApiError) -> dict[str, Any]:
    return {
        "status": exc.status_code,
        "code": exc.code,
        "message": exc.message,
        "headers": exc.headers,
    }


def answer(run: Callable[[], Any]) -> dict[str, Any]:
    try:
        return {"answer": run()}
    except ApiError as exc:
        return {"error": error_payload(exc)}


def generate_now(rt: Runtime, user: str, body: dict, task_id: str) -> dict[str, Any]:
    service = GenerationWork(rt)
    plan = service.plan(user, GenerateRequest.model_validate(body))
    started = time.perf_counter()
    hung_up = lambda: rt.jobs.cancel_requested(task_id)  # noqa: E731 - the dispatcher sets it
    future = rt.worker.submit(
        lambda: service.render_images(plan, hung_up), label="generate", owner=user
    )
    try:
        images = future.result()
    except (Cancelled, ShuttingDown):  # stopped, or never started: this worker is stopping
        if hung_up():
            raise ClientClosed("the client went away; the generation was stopped") from None
        raise Reject("the worker is stopping", requeue=True) from None  # another one will
    results = service.save_all(plan, images)
    return service.response(plan, results, time.perf_counter() - started).model_dump(mode="json")


def draw_checkpoint_now(
    rt: Runtime, user: str, file: str, strength: float, prompt: str, seed: int, task_id: str
) -> str:
    from engine.previews import data_url

    hung_up = lambda: rt.jobs.cancel_requested(task_id)  # noqa: E731 - the dispatcher sets it
    future = submit_checkpoint(rt, user, file, strength, (prompt, seed), hung_up)
    try:
        return data_url(future.result())
    except (Cancelled, ShuttingDown):
        if hung_up():
            raise ClientClosed("the client went away; the drawing was stopped") from None
        raise Reject("the worker is stopping", requeue=True) from None


def hand_back_if_stopping(rt: Runtime, job_id: str) -> None:
    """A worker told to stop ends its job at the next step; the job (queued again by
    `RedisJobStore.stopped`) goes back to the queue for another worker."""
    if rt.stopping.is_set() and not rt.jobs.ended(job_id):
        log.info("job %s: this worker is stopping; handed back to the queue", job_id)
        raise Reject("the worker is stopping", requeue=True)


def generate_job(rt: Runtime, job_id: str, user: str, body: dict) -> None:
    if rt.jobs.ended(job_id):  # cancelled while it waited
        return
    service = GenerationWork(rt)
    try:
        plan = service.plan(user, GenerateRequest.model_validate(body))
    except ApiError as exc:
        rt.jobs.fail(job_id, exc.message)
        return
    rt.jobs.record(job_id, plan.job_parameters(), total_steps=plan.passes.steps)
    work = rt.worker.submit(lambda: service.run_job(job_id, plan), label="generate", owner=user)
    with contextlib.suppress(ShuttingDown):  # it never started: handed back below
        saved = work.result()
        if saved is not None:  # the task ends once the job has its images
            saved.result()
    hand_back_if_stopping(rt, job_id)


def train_job(rt: Runtime, job_id: str) -> None:
    """The job's images and any checkpoint it goes on from are in the shared store."""
    with contextlib.suppress(ShuttingDown):  # it never started: handed back below
        if not rt.jobs.ended(job_id):  # else cancelled while it waited
            log.info("training job %s: started", job_id)
            work = TrainingWork(rt)
            label = f"train {rt.jobs.current(job_id).params.get('file')}"
            rt.worker.submit(lambda: work.run_job(job_id), label=label, background=True).result()
    hand_back_if_stopping(rt, job_id)


def _pictures(images: list[str]) -> list[Image.Image]:
    return [Image.open(io.BytesIO(base64.b64decode(im))).convert("RGB") for im in images]


def caption_now(rt: Runtime, user: str, images: list[str], trigger: str | None) -> dict:
    captions = asyncio.run(CaptionWork(rt).caption(user, _pictures(images), trigger))
    return captions.model_dump(mode="json")


def subject_masks_now(rt: Runtime, user: str, images: list[str]) -> dict:
    masks = asyncio.run(SubjectMaskWork(rt).masks(user, _pictures(images)))
    return masks.model_dump(mode="json")


def register(app: Celery, rt: Runtime, presence: Presence, secret: str) -> None:
    """The worker's tasks. Each runs only if the dispatcher signed it (signing.py), and under
    a lease (presence.py), so a copy of a task that is still running elsewhere waits in the
    queue instead of running twice."""
    training = threading.Lock()  # at most one training on this worker at a time

    def leased(task: Task, args: list[Any], signature: Any, run: Callable[[], Any]) -> Any:
        task_id = task.request.id
        if not verify(secret, task.name, task_id, args, signature):
            log.warning(
                "refused task %s %s: not signed with this queue's secret", task.name, task_id
            )
            raise Reject("not signed with the queue's secret", requeue=False)
        if not presence.claim(task_id):
            raise task.retry(countdown=RETRY_S)
        try:
            if presence.done(task_id):
                raise Ignore()  # a copy of a task that ran: its answer is already out
            result = run()
            presence.mark_done(task_id)
            return result
        finally:
            presence.release(task_id)

    @app.task(name=GENERATE, bind=True, max_retries=None)
    def generate(self: Task, user: str, body: dict, signature: str | None = None) -> dict:
        run = lambda: answer(lambda: generate_now(rt, user, body, self.request.id))  # noqa: E731
        return leased(self, [user, body], signature, run)

    @app.task(name=GENERATE_JOB, bind=True, max_retries=None)
    def generate_as_job(
        self: Task, job_id: str, user: str, body: dict, signature: str | None = None
    ) -> None:
        leased(self, [job_id, user, body], signature, lambda: generate_job(rt, job_id, user, body))

    @app.task(name=CAPTION, bind=True, max_retries=None)
    def caption(
        self: Task, user: str, images: list[str], trigger: str | None, signature: str | None = None
    ) -> dict:
        run = lambda: answer(lambda: caption_now(rt, user, images, trigger))  # noqa: E731
        return leased(self, [user, images, trigger], signature, run)

    @app.task(name=SUBJECT_MASKS, bind=True, max_retries=None)
    def subject_masks(
        self: Task, user: str, images: list[str], signature: str | None = None
    ) -> dict:
        run = lambda: answer(lambda: subject_masks_now(rt, user, images))  # noqa: E731
        return leased(self, [user, images], signature, run)

    @app.task(name=DRAW_CHECKPOINT, bind=True, max_retries=None)
    def draw(
        self: Task,
        user: str,
        file: str,
        strength: float,
        prompt: str,
        seed: int,
        signature: str | None = None,
    ) -> dict:
        args = [user, file, strength, prompt, seed]
        run = lambda: answer(  # noqa: E731
            lambda: draw_checkpoint_now(rt, *args, self.request.id)
        )
        return leased(self, args, signature, run)

    @app.task(name=TRAIN, bind=True, max_retries=None)
    def train(self: Task, job_id: str, user: str, signature: str | None = None) -> None:
        if not training.acquire(blocking=False):  # this worker trains already: another may
            raise self.retry(countdown=RETRY_S)
        try:
            leased(self, [job_id, user], signature, lambda: train_job(rt, job_id))
        finally:
            training.release()
