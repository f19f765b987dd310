"""LoRA training and the jobs that track it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import JSONResponse
from sse_starlette.sse import EventSourceResponse

from engine.deps import OwnerDep, RuntimeDep, TrainingDep, UserIdDep
from engine.jobs import job_view
from engine.schemas import MAX_SEED
from engine.training_service import TrainOptions
from engine.uploads import read_training_images

router = APIRouter()


@router.post("/train-lora", status_code=202)
async def train_lora(
    service: TrainingDep,
    images: Annotated[list[UploadFile], File(description="1-5 PNG, JPEG or WEBP images.")],
    name: Annotated[str, Form(min_length=1, max_length=64, description="The LoRA's name.")],
    user_id: Annotated[str | None, Form()] = None,
    user_query: Annotated[str | None, Query(alias="user_id")] = None,
    trigger_word: Annotated[str | None, Form(max_length=64)] = None,
    captions: Annotated[list[str] | None, Form(description="One per image.")] = None,
    steps: Annotated[int | None, Form(ge=1, le=5000)] = None,
    rank: Annotated[int | None, Form(ge=1, le=128)] = None,
    learning_rate: Annotated[float | None, Form(gt=0, le=0.01)] = None,
    resolution: Annotated[int | None, Form(ge=64, le=2048)] = None,
    seed: Annotated[int | None, Form(ge=0, le=MAX_SEED)] = None,
    train_text_encoder: Annotated[bool, Form()] = False,
    flip: Annotated[bool, Form(description="Also train on mirrored copies.")] = True,
    overwrite: Annotated[bool, Form()] = False,
    prior_preservation: Annotated[
        bool | None,
        Form(
            description="Also train on the base model's own images for the captions without "
            "the trigger word, so other prompts stay as they were. Default: on for small "
            "models (the demo model), off otherwise (it doubles the cost of a step)."
        ),
    ] = None,
) -> JSONResponse:
    """Start training; answers at once with the job to follow."""
    user = service.user(user_id if user_id is not None else user_query)
    decoded = await read_training_images(images)
    opts = TrainOptions(
        name,
        trigger_word,
        captions,
        steps,
        rank,
        learning_rate,
        resolution,
        seed,
        train_text_encoder,
        overwrite,
        flip,
        prior_preservation,
    )
    job = service.submit(user, decoded, opts)
    return JSONResponse(
        {"job_id": job.id, "status_url": f"/jobs/{job.id}", "job": job_view(job)},
        status_code=202,
    )


@router.get("/jobs")
def list_jobs(rt: RuntimeDep, user_id: UserIdDep) -> dict[str, Any]:
    return {"jobs": [job_view(j) for j in rt.jobs.list(user_id)]}


@router.get("/jobs/{job_id}")
def get_job(rt: RuntimeDep, job_id: str, owner: OwnerDep) -> dict[str, Any]:
    return job_view(rt.jobs.get(job_id, owner))


@router.get("/jobs/{job_id}/events")
async def job_events(rt: RuntimeDep, job_id: str, owner: OwnerDep) -> EventSourceResponse:
    """Server-Sent Events: the job's state now and after every change, until it ends."""
    rt.jobs.get(job_id, owner)
    return EventSourceResponse(rt.jobs.events(job_id), ping=10)


@router.post("/jobs/{job_id}/cancel")
def cancel_job(rt: RuntimeDep, job_id: str, owner: OwnerDep) -> dict[str, Any]:
    """Stops a running job within one step; a queued one never starts."""
    rt.jobs.get(job_id, owner)
    return job_view(rt.jobs.request_cancel(job_id))
