"""The one owner of a job's life: queued -> running -> succeeded | failed | cancelled.

The work that runs a job (a generation, a training) reports through here and never writes a
status itself, so every change is checked (nothing leaves a terminal state), persisted, and
reaches the job's event streams the same way, whichever store keeps the records: files for a
local engine (`engine.jobs.JobStore`), Redis in celery mode (`engine.queue.records`)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any, Protocol

from pydantic import BaseModel

from engine.contract.jobs import Job, JobPhase, JobStatus
from engine.storage import iso


class JobRecords(Protocol):
    """Where job records live; `JobStore` and `RedisJobStore` are the two."""

    def bind_loop(self, loop: Any) -> None: ...
    def create(self, kind: str, user_id: str, total_steps: int, params: dict) -> Job: ...
    def get(self, job_id: str, owner: str) -> Job: ...
    def current(self, job_id: str) -> Job: ...
    def list(self, user_id: str) -> list[Job]: ...
    def update(self, job_id: str, **changes: Any) -> Job: ...
    def request_cancel(self, job_id: str, owner: str) -> Job: ...
    def cancel_requested(self, job_id: str) -> bool: ...
    def stopped(self, job_id: str) -> dict[str, Any]: ...
    def events(self, job_id: str, owner: str) -> AsyncIterator[dict[str, Any]]: ...


class JobLifecycle:
    def __init__(self, records: JobRecords) -> None:
        self.records = records

    # -- reading -------------------------------------------------------------------------
    def get(self, job_id: str, owner: str) -> Job:
        """The job if `owner` owns it; anyone else gets the same 404 as for no such job."""
        return self.records.get(job_id, owner)

    def current(self, job_id: str) -> Job:
        """The job as it is now, for the code running it (no owner check)."""
        return self.records.current(job_id)

    def list(self, user_id: str) -> list[Job]:
        return self.records.list(user_id)

    def events(self, job_id: str, owner: str) -> AsyncIterator[dict[str, Any]]:
        return self.records.events(job_id, owner)

    def ended(self, job_id: str) -> bool:
        return self.records.current(job_id).status.terminal

    def cancel_requested(self, job_id: str) -> bool:
        return self.records.cancel_requested(job_id)

    # -- the life ------------------------------------------------------------------------
    def create(self, kind: str, user_id: str, total_steps: int, params: BaseModel) -> Job:
        return self.records.create(
            kind, user_id, total_steps, params.model_dump(mode="json", exclude_none=True)
        )

    def record(self, job_id: str, params: BaseModel, **changes: Any) -> Job:
        """What the job was planned as, once the model decided it (steps, sizes...)."""
        return self._change(
            job_id, params=params.model_dump(mode="json", exclude_none=True), **changes
        )

    def start(self, job_id: str, phase: JobPhase) -> bool:
        """Its work begins; False if the job ended while it waited (it was cancelled)."""
        if self.ended(job_id):
            return False
        self._change(job_id, status=JobStatus.RUNNING, phase=phase, started=iso(time.time()))
        return True

    def progress(self, job_id: str, **changes: Any) -> Job:
        """Step, phase, loss, previews, samples, queue place: anything but the status."""
        if "status" in changes:
            raise ValueError("a status changes through start/succeed/fail/stop only")
        return self._change(job_id, **changes)

    def succeed(self, job_id: str, result: dict[str, Any]) -> Job:
        return self._end(job_id, JobStatus.SUCCEEDED, result=result, eta_s=0.0)

    def fail(self, job_id: str, message: str) -> Job:
        return self._end(job_id, JobStatus.FAILED, error=message)

    def stop(self, job_id: str) -> Job:
        """Its work stopped early: cancelled if someone asked, else as its store says (a
        stopping local engine fails it; a stopping worker hands it back to the queue)."""
        return self._change(job_id, **{"preview": None, **self.records.stopped(job_id)})

    def cancel(self, job_id: str, owner: str) -> Job:
        """Ask it to stop: a queued job ends at once, a running one at its next step."""
        return self.records.request_cancel(job_id, owner)

    def _end(self, job_id: str, status: JobStatus, **changes: Any) -> Job:
        return self._change(
            job_id, status=status, finished=iso(time.time()), preview=None, **changes
        )

    def _change(self, job_id: str, **changes: Any) -> Job:
        if self.ended(job_id) and "status" in changes:
            return self.records.current(job_id)  # it ended already (a cancel won the race)
        return self.records.update(job_id, **changes)
