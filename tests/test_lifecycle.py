"""The one owner of a job's life (`engine/lifecycle.py`) over the engine's file store: every
status change goes through it, and nothing leaves a terminal state."""

from __future__ import annotations

import pytest

from engine.contract.jobs import JobPhase, JobStatus
from engine.contract.records import ImageParameters
from engine.jobs import JobStore
from engine.lifecycle import JobLifecycle

PARAMS = ImageParameters(user_id="alice", prompt="a fox", negative_prompt="", loras=[])


@pytest.fixture
def jobs(tmp_path) -> JobLifecycle:
    return JobLifecycle(JobStore(tmp_path / "jobs"))


def test_a_job_runs_to_its_end_and_stays_there(jobs, tmp_path):
    job = jobs.create("generate", "alice", 4, PARAMS)
    assert job.params == {"user_id": "alice", "prompt": "a fox", "negative_prompt": "", "loras": []}
    assert jobs.start(job.id, JobPhase.GENERATING)
    assert jobs.current(job.id).status == JobStatus.RUNNING and jobs.current(job.id).started
    jobs.progress(job.id, step=2, preview="data:image/png;base64,x")
    with pytest.raises(ValueError, match="status"):
        jobs.progress(job.id, status=JobStatus.SUCCEEDED)
    done = jobs.succeed(job.id, {"images": []})
    assert (done.status, done.phase, done.preview, done.eta_s) == (
        JobStatus.SUCCEEDED, JobPhase.DONE, None, 0.0
    )  # fmt: skip
    assert jobs.fail(job.id, "too late").status == JobStatus.SUCCEEDED  # a terminal state stays
    again = JobLifecycle(JobStore(tmp_path / "jobs")).current(job.id)  # as persisted
    assert again.status == JobStatus.SUCCEEDED and again.result == {"images": []}


def test_a_cancelled_job_does_not_start_and_a_stopped_one_says_why(jobs):
    queued = jobs.create("generate", "alice", 4, PARAMS)
    assert jobs.cancel(queued.id, "alice").status == JobStatus.CANCELLED
    assert not jobs.start(queued.id, JobPhase.GENERATING)
    running = jobs.create("generate", "alice", 4, PARAMS)
    jobs.start(running.id, JobPhase.GENERATING)
    jobs.progress(running.id, preview="data:image/png;base64,x")
    stopped = jobs.stop(running.id)  # the engine is stopping, nobody asked to cancel
    assert stopped.status == JobStatus.FAILED and "engine stopped" in stopped.error
    assert stopped.preview is None
    asked = jobs.create("generate", "alice", 4, PARAMS)
    jobs.start(asked.id, JobPhase.GENERATING)
    assert jobs.cancel(asked.id, "alice").status == JobStatus.RUNNING  # stops at its next step
    assert jobs.stop(asked.id).status == JobStatus.CANCELLED
