"""Job records in Redis, for celery mode: the dispatcher and every worker see the same jobs, and
a restarted dispatcher (or orchestrator) still knows every one of them.

The same interface as `engine.jobs.JobStore`, so the services and routes don't care which
they have. Each job is one JSON string; a user's jobs are a sorted set by creation time; every
change is published on the job's channel, which is what Server-Sent Events wait on."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry

from engine.contract.errors import Conflict, NotFound
from engine.contract.jobs import Job, JobPhase, JobStatus
from engine.storage import iso

PREFIX = "loramint:"
# A job that ended is kept this long, and at most `history` of a user's; cancel flags likewise.
FINISHED_TTL_S = 7 * 24 * 3600


def connect(url: str, retries: int) -> redis.Redis:
    """A client that retries through a short outage. A worker rides out a Redis restart (20
    retries, ~30 s) rather than failing the training step that met it; the dispatcher answers
    503 within a second instead of holding a request."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        retry=Retry(ExponentialWithJitterBackoff(base=0.1, cap=2.0), retries=retries),
        retry_on_error=[redis.ConnectionError, redis.TimeoutError],
    )


def _job_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def _user_key(user_id: str) -> str:
    return f"{PREFIX}jobs:{user_id}"


def _cancel_key(job_id: str) -> str:
    return f"{PREFIX}cancel:{job_id}"


def channel(job_id: str) -> str:
    return f"{PREFIX}events:{job_id}"


class RedisJobStore:
    def __init__(self, url: str, history: int = 100, retries: int = 20) -> None:
        self.url = url
        self.history = history
        self.redis = connect(url, retries)

    def bind_loop(self, loop: Any) -> None:
        """Nothing to bind: events come from Redis, not from threads of this process."""

    def _save(self, job: Job, pipe: Any) -> None:
        ttl = FINISHED_TTL_S if job.status.terminal else None
        pipe.set(_job_key(job.id), job.model_dump_json(), ex=ttl)
        pipe.publish(channel(job.id), job.status.value)

    def create(self, kind: str, user_id: str, total_steps: int, params: dict[str, Any]) -> Job:
        now = time.time()
        job = Job(
            id=uuid.uuid4().hex[:16],
            kind=kind,
            user_id=user_id,
            created=iso(now),
            total_steps=total_steps,
            params=params,
        )
        with self.redis.pipeline() as pipe:
            self._save(job, pipe)
            pipe.zadd(_user_key(user_id), {job.id: now})
            pipe.execute()
        self._forget_old(user_id)
        return job

    def _forget_old(self, user_id: str) -> None:
        """Keep the newest `history` jobs of a user (running ones are never that old)."""
        old = self.redis.zrange(_user_key(user_id), 0, -self.history - 1)
        if old:
            with self.redis.pipeline() as pipe:
                pipe.zrem(_user_key(user_id), *old)
                pipe.delete(*[_job_key(j) for j in old])
                pipe.execute()

    def _load(self, job_id: str) -> Job | None:
        text = self.redis.get(_job_key(job_id))
        return None if text is None else Job.model_validate_json(text)

    def get(self, job_id: str, owner: str) -> Job:
        """The job if `owner` owns it; anyone else gets the same 404 as for no such job."""
        job = self._load(job_id)
        if job is None or job.user_id != owner:
            raise NotFound(f"job {job_id!r} not found")
        return job

    def current(self, job_id: str) -> Job:
        job = self._load(job_id)
        if job is None:
            raise KeyError(job_id)
        return job

    def list(self, user_id: str) -> list[Job]:
        ids = self.redis.zrevrange(_user_key(user_id), 0, -1)
        texts = self.redis.mget([_job_key(j) for j in ids]) if ids else []
        return [Job.model_validate_json(t) for t in texts if t is not None]

    def update(self, job_id: str, **changes: Any) -> Job:
        if "status" in changes and changes["status"].terminal:
            changes = {"phase": JobPhase.DONE, "queue_position": None, **changes}
        # One writer per job at a time (the worker holding its lease), so read-modify-write
        # is safe; WATCH guards the one race left, a cancel from the dispatcher.
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(_job_key(job_id))
                    job = self.current(job_id).model_copy(update=changes)
                    pipe.multi()
                    self._save(job, pipe)
                    pipe.execute()
                    return job
                except redis.WatchError:
                    continue

    def request_cancel(self, job_id: str, owner: str) -> Job:
        job = self.get(job_id, owner)
        if job.status.terminal:
            raise Conflict(f"job {job_id!r} already {job.status.value}")
        self.flag_cancel(job_id)
        if job.status == JobStatus.QUEUED:
            return self.update(job_id, status=JobStatus.CANCELLED, finished=iso(time.time()))
        return job

    def flag_cancel(self, task_id: str) -> None:
        """Ask the worker running this job (or synchronous task) to stop at its next step."""
        self.redis.set(_cancel_key(task_id), "1", ex=FINISHED_TTL_S)

    def cancel_requested(self, job_id: str) -> bool:
        return bool(self.redis.exists(_cancel_key(job_id)))

    def stopped(self, job_id: str) -> dict[str, Any]:
        """Cancelled if someone asked; else its worker is stopping, and the job goes back to
        the queue for another worker (tasks.py hands its message back) from the start."""
        if self.cancel_requested(job_id):
            return {"status": JobStatus.CANCELLED, "finished": iso(time.time())}
        return {
            "status": JobStatus.QUEUED,
            "phase": JobPhase.QUEUED,
            "step": 0,
            "progress": 0.0,
            "eta_s": None,
            "preview": None,
        }

    async def events(self, job_id: str, owner: str) -> AsyncIterator[dict[str, Any]]:
        """The job's state now, then after every change, ending with a terminal state."""
        self.get(job_id, owner)
        client = aioredis.Redis.from_url(self.url, decode_responses=True)
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(channel(job_id))  # before the first read: no change missed
            last = None
            while True:
                text = await client.get(_job_key(job_id))
                if text is None:
                    return
                job = Job.model_validate_json(text)
                if job != last:
                    yield {"event": job.status.value, "data": text}
                    last = job
                if job.status.terminal:
                    return
                # A timeout re-reads the record: a change is never waited on for long.
                await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
        finally:
            await pubsub.aclose()
            await client.aclose()
