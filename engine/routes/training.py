"""LoRA training and the jobs that track it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from sse_starlette.sse import EventSourceResponse

from engine.contract.handlers import ContractRoute
from engine.contract.jobs import Job, JobList, TrainAccepted
from engine.contract.presets import ModelGroup, PresetList
from engine.contract.schemas import (
    ERROR_RESPONSES,
    MAX_TRAINING_IMAGES,
    CaptionForm,
    Captions,
    CheckpointDraw,
    CheckpointPicture,
    CheckpointSave,
    CheckpointSaved,
    ContinueForm,
    SubjectMaskForm,
    SubjectMasks,
    TrainForm,
)
from engine.deps import FrontDep, UserIdDep, WorkDep
from engine.uploads import read_form_images, with_mask_files

router = APIRouter(route_class=ContractRoute, responses=ERROR_RESPONSES)


@router.post("/train-lora", status_code=202)
async def train_lora(
    front: FrontDep,
    user_id: UserIdDep,
    form: Annotated[TrainForm, Form(media_type="multipart/form-data")],
) -> TrainAccepted:
    """Start training; answers at once with the job to follow."""
    images = await read_form_images(front.store, user_id, form, masked=True)
    images = await with_mask_files(images, form.masks)
    job = front.train(user_id, images, form)
    return TrainAccepted(job_id=job.id, status_url=f"/jobs/{job.id}", job=job)


@router.post("/caption")
async def caption(
    front: FrontDep,
    user_id: UserIdDep,
    form: Annotated[CaptionForm, Form(media_type="multipart/form-data")],
) -> Captions:
    """One caption per image, with the trigger word, to edit before training."""
    images = await read_form_images(front.store, user_id, form)
    return await front.caption(user_id, [im.image for im in images], form.trigger_word)


@router.post("/subject-masks")
async def subject_masks(
    front: FrontDep,
    user_id: UserIdDep,
    form: Annotated[SubjectMaskForm, Form(media_type="multipart/form-data")],
) -> SubjectMasks:
    """One mask per image, white over its subject, to edit and send with /train-lora."""
    images = await read_form_images(front.store, user_id, form)
    return await front.subject_masks(user_id, [im.image for im in images])


@router.get("/presets")
def presets(
    front: FrontDep,
    user_id: UserIdDep,
    images: Annotated[int, Query(ge=1, le=MAX_TRAINING_IMAGES)] = 3,
    masked: bool = False,
    group: ModelGroup | None = None,
) -> PresetList:
    """Training presets with their values for the model served (or `group`'s) and `images`
    images, and why each is so."""
    return front.presets(images, masked, group)


@router.get("/jobs")
def list_jobs(work: WorkDep, user_id: UserIdDep) -> JobList:
    """Newest first, without their samples, preview, loss history, report card and
    checkpoints' pictures (GET /jobs/{id} has them)."""
    light = {"samples": [], "preview": None, "loss_history": [], "report": None}
    return JobList(
        jobs=[
            job.model_copy(
                update={
                    **light,
                    "checkpoints": [c.model_copy(update={"grid": {}}) for c in job.checkpoints],
                }
            )
            for job in work.jobs.list(user_id)
        ]
    )


@router.get("/jobs/{job_id}")
def get_job(work: WorkDep, job_id: str, user_id: UserIdDep) -> Job:
    return work.jobs.get(job_id, user_id)


@router.get("/jobs/{job_id}/events")
async def job_events(work: WorkDep, job_id: str, user_id: UserIdDep) -> EventSourceResponse:
    """Server-Sent Events: the job's state now and after every change, until it ends."""
    work.jobs.get(job_id, user_id)
    return EventSourceResponse(work.jobs.events(job_id, user_id), ping=10)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(work: WorkDep, job_id: str, user_id: UserIdDep) -> Job:
    """A queued job leaves the queue; a running one stops at its next step."""
    return work.cancel(job_id, user_id)


@router.post("/jobs/{job_id}/resume", status_code=202)
def resume_job(front: FrontDep, job_id: str, user_id: UserIdDep) -> TrainAccepted:
    """A cancelled training, or one cut short by the engine's end, goes on from its last
    checkpoint to its original total, as a new job (`resumed_from`)."""
    job = front.resume(user_id, job_id)
    return TrainAccepted(job_id=job.id, status_url=f"/jobs/{job.id}", job=job)


@router.post("/jobs/{job_id}/checkpoints/{step}/save", status_code=201)
def save_checkpoint(
    front: FrontDep, job_id: str, step: int, body: CheckpointSave, user_id: UserIdDep
) -> CheckpointSaved:
    """That checkpoint becomes one of your LoRAs, with its step and preferred strength."""
    file = front.save_checkpoint(user_id, job_id, step, body)
    return CheckpointSaved(file=file, url=f"/loras/{file}?user_id={user_id}")


@router.post("/jobs/{job_id}/checkpoints/{step}/draw")
async def draw_checkpoint(
    front: FrontDep,
    request: Request,
    job_id: str,
    step: int,
    body: CheckpointDraw,
    user_id: UserIdDep,
) -> CheckpointPicture:
    """The report card's held-out picture for that checkpoint at another strength, drawn
    between other work and added to the checkpoint's `grid`."""
    return await front.draw_checkpoint(user_id, job_id, step, body, request.is_disconnected)


@router.post("/loras/{file:path}/continue", status_code=202)
async def continue_lora(
    front: FrontDep,
    user_id: UserIdDep,
    file: str,
    form: Annotated[ContinueForm, Form(media_type="multipart/form-data")],
) -> TrainAccepted:
    """More steps on a LoRA trained here; it is replaced by the longer-trained one."""
    job = front.continue_lora(user_id, file, form)
    return TrainAccepted(job_id=job.id, status_url=f"/jobs/{job.id}", job=job)
