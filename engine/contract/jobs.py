"""A job as the API shows it (`GET /jobs/{id}`, its events, `?async=true` answers): a
generation or a training, its status and phase, progress, samples, checkpoints and report card."""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, Field

from engine.contract.training import JobCheckpoint, ResumedFrom, TrainingReport


class JobStatus(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class JobPhase(str, enum.Enum):
    """What a job is doing now, finer than its status."""

    QUEUED = "queued"
    PREPARING = "preparing"  # training: encoding the images, drawing the prior images
    TRAINING = "training"
    SAMPLING = "sampling"  # training: drawing sample images (phase_step of phase_total)
    JUDGING = "judging"  # training: scoring a checkpoint for the report card
    SAVING = "saving"  # training: the last check, the thumbnail, writing the file
    GENERATING = "generating"
    DONE = "done"


class JobSample(BaseModel):
    """An image drawn with the training adapter at `step`, to see what the LoRA learns."""

    step: int
    prompt: str
    seed: int
    image: str = Field(description="A PNG data URL.")


class Job(BaseModel):
    id: str
    kind: str = Field(description="generate or train-lora.")
    user_id: str
    status: JobStatus = JobStatus.QUEUED
    phase: JobPhase = JobPhase.QUEUED
    phase_step: int | None = Field(None, description="Progress inside the phase (preparing).")
    phase_total: int | None = None
    queue_position: int | None = Field(
        None, description="While queued: 1 means next on the device."
    )
    step: int = 0
    total_steps: int = 0
    progress: float = 0.0
    loss: float | None = None
    loss_history: list[tuple[int, float]] = Field(
        default_factory=list, description="(step, loss), thinned to at most ~200 points."
    )
    eta_s: float | None = Field(
        None, description="Seconds left, from the measured step rate; absent until known."
    )
    preview: str | None = Field(
        None, description="generate: the current step's latents as a small PNG data URL."
    )
    warning: str | None = Field(
        None,
        description="train-lora: what slows the run, said while it runs (steps suddenly "
        "several times slower on a GPU: memory spilling into system RAM).",
    )
    samples: list[JobSample] = Field(default_factory=list)
    checkpoints: list[JobCheckpoint] = Field(
        default_factory=list, description="train-lora: the LoRA as it was every few steps."
    )
    resumed_from: ResumedFrom | None = None
    report: TrainingReport | None = Field(
        None, description="train-lora: how good the LoRA is and what to do next."
    )
    created: str
    started: str | None = None
    finished: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    result: dict[str, Any] | None = None
    error: str | None = None
    cut_short: bool = Field(
        False,
        description="failed because the engine stopped or restarted, not by its own error: "
        "a training may be resumed from its last checkpoint.",
    )


class JobList(BaseModel):
    jobs: list[Job]


class TrainAccepted(BaseModel):
    job_id: str
    status_url: str
    job: Job


class GenerateAccepted(TrainAccepted):
    """`POST /generate?async=true`: follow the job; its result holds the images."""
