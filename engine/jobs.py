"""Jobs (LoRA training; generations asked for with ?async=true): state, persistence,
cancellation, live updates.

Each job is a JSON file under `{data_dir}/jobs/`, rewritten atomically when its state changes,
so jobs survive an engine restart; one that was queued or running when the engine died is
marked failed with the reason "engine restarted". Updates come from the device worker thread
and reach Server-Sent-Event listeners on the event loop through `call_soon_threadsafe`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from engine.atomic import atomic_path
from engine.contract.errors import Conflict, NotFound
from engine.contract.jobs import Job, JobPhase, JobStatus
from engine.storage import iso

log = logging.getLogger(__name__)
PERSIST_EVERY_S = 2.0
# Job kinds.
TRAINING = "train-lora"
GENERATION = "generate"
# Changes kept on disk at once, not within PERSIST_EVERY_S: a resume after a crash needs them.
DURABLE = {"status", "checkpoints", "report"}


class Cancelled(Exception):
    """Raised inside a job's work when someone asked to cancel it."""


class JobStore:
    def __init__(self, folder: Path, history: int = 100) -> None:
        self.folder = folder  # made by the first job saved: a preview engine writes nothing
        self.history = history
        self._jobs: dict[str, Job] = {}
        self._cancel: set[str] = set()
        self._lock = threading.Lock()
        self._listeners: dict[str, set[asyncio.Queue[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._saved_at: dict[str, float] = {}
        self._recover()

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def _recover(self) -> None:
        for path in sorted(self.folder.glob("*.json")):
            try:
                job = Job.model_validate_json(path.read_text())
            except ValueError:
                log.warning("skipping unreadable job file %s", path)
                continue
            if not job.status.terminal:
                job.status, job.error = JobStatus.FAILED, "engine restarted"
                job.cut_short = True
                job.phase, job.queue_position, job.preview = JobPhase.DONE, None, None
                job.finished = iso(time.time())
                self._persist(job)
            self._jobs[job.id] = job

    def _persist(self, job: Job) -> None:
        with atomic_path(self.folder / f"{job.id}.json") as tmp:
            tmp.write_text(job.model_dump_json(indent=1))
        self._saved_at[job.id] = time.monotonic()

    def create(self, kind: str, user_id: str, total_steps: int, params: dict[str, Any]) -> Job:
        job = Job(
            id=uuid.uuid4().hex[:16],
            kind=kind,
            user_id=user_id,
            created=iso(time.time()),
            total_steps=total_steps,
            params=params,
        )
        with self._lock:
            self._jobs[job.id] = job
            self._persist(job)
            self._forget_old(user_id)
        return job

    def _forget_old(self, user_id: str) -> None:
        """Keep the newest `history` finished jobs of a user."""
        done = [j for j in self._jobs.values() if j.user_id == user_id and j.status.terminal]
        for job in sorted(done, key=lambda j: j.created, reverse=True)[self.history :]:
            del self._jobs[job.id]
            self._saved_at.pop(job.id, None)
            self._cancel.discard(job.id)
            (self.folder / f"{job.id}.json").unlink(missing_ok=True)

    def get(self, job_id: str, owner: str) -> Job:
        """The job if `owner` owns it; anyone else gets the same 404 as for no such job."""
        job = self._jobs.get(job_id)
        if job is None or job.user_id != owner:
            raise NotFound(f"job {job_id!r} not found")
        return job

    def current(self, job_id: str) -> Job:
        """The job as it is now, for the code running it (no owner check)."""
        return self._jobs[job_id]

    def list(self, user_id: str) -> list[Job]:
        jobs = [j for j in self._jobs.values() if j.user_id == user_id]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def update(self, job_id: str, **changes: Any) -> Job:
        """Apply changes; persist on status changes and at most every PERSIST_EVERY_S."""
        if "status" in changes and changes["status"].terminal:
            changes = {"phase": JobPhase.DONE, "queue_position": None, **changes}
        with self._lock:
            job = self._jobs[job_id].model_copy(update=changes)
            self._jobs[job_id] = job
            due = time.monotonic() - self._saved_at.get(job_id, 0) > PERSIST_EVERY_S
            if due or DURABLE & changes.keys():
                self._persist(job)
        self._notify(job_id)
        return job

    def request_cancel(self, job_id: str, owner: str) -> Job:
        job = self.get(job_id, owner)
        if job.status.terminal:
            raise Conflict(f"job {job_id!r} already {job.status.value}")
        self._cancel.add(job_id)
        if job.status == JobStatus.QUEUED:
            return self.update(job_id, status=JobStatus.CANCELLED, finished=iso(time.time()))
        return job

    def cancel_requested(self, job_id: str) -> bool:
        return job_id in self._cancel

    def stopped(self, job_id: str) -> dict[str, Any]:
        """The final state of a job whose work stopped early: cancelled if someone asked,
        else failed, because the engine itself is stopping."""
        if self.cancel_requested(job_id):
            return {"status": JobStatus.CANCELLED, "finished": iso(time.time())}
        return {
            "status": JobStatus.FAILED,
            "finished": iso(time.time()),
            "error": "the engine stopped before the job finished; start it again",
            "cut_short": True,
        }

    def _notify(self, job_id: str) -> None:
        if self._loop is None:
            return
        for q in list(self._listeners.get(job_id, ())):
            self._loop.call_soon_threadsafe(q.put_nowait, None)

    async def events(self, job_id: str, owner: str) -> AsyncIterator[dict[str, Any]]:
        """The job's state now, then after every change, ending with a terminal state."""
        self.get(job_id, owner)
        q: asyncio.Queue[None] = asyncio.Queue()
        self._listeners.setdefault(job_id, set()).add(q)
        try:
            last = None
            while True:
                job = self.current(job_id)
                if job != last:
                    yield {"event": job.status.value, "data": job.model_dump_json()}
                    last = job
                if job.status.terminal:
                    return
                await q.get()
        finally:
            self._listeners[job_id].discard(q)
