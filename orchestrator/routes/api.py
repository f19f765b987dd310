"""The public REST API: each route acts as the current user and forwards to the engine.

Bodies follow the contract (`engine.contract.schemas`): JSON bodies (`/generate`, `PATCH
/loras/...`) are validated here and forwarded as sent; the multipart forms (`/train-lora`,
`/caption`, `POST /loras`)
stream through unparsed, are documented here from their contract classes, and the engine
validates them with those same classes. File names and job ids are checked before anything is
forwarded."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from engine.contract.files import (
    Deleted,
    ImageList,
    ImageUploaded,
    ImageUploadForm,
    LoraEntry,
    LoraImported,
    LoraImportForm,
    LoraList,
    LoraPatch,
)
from engine.contract.generation import GenerateRequest, GenerateResponse
from engine.contract.handlers import ContractRoute
from engine.contract.jobs import GenerateAccepted, Job, JobList, TrainAccepted
from engine.contract.names import check_file_name, check_job_id
from engine.contract.presets import PresetList
from engine.contract.schemas import (
    ERROR_RESPONSES,
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
from orchestrator.banner import banner
from orchestrator.deps import EngineDep, PreviewQuotaDep, SupervisorDep, UserDep

router = APIRouter(tags=["api"], route_class=ContractRoute, responses=ERROR_RESPONSES)


@router.get("/health")
async def health(supervisor: SupervisorDep) -> dict[str, Any]:
    """The orchestrator is up; `engine` says how the engine is (state, reason, its health);
    `banner` says it in words for the pages (null when all is well)."""
    status = supervisor.status()
    return {"status": "ok", "engine": status, "banner": banner(status)}


@router.post(
    "/generate",
    response_class=Response,
    responses={
        200: {"model": GenerateResponse},
        202: {"model": GenerateAccepted, "description": "With ?async=true: the job to follow."},
    },
)
async def generate(
    req: GenerateRequest,
    request: Request,
    engine: EngineDep,
    user: UserDep,
    _quota: PreviewQuotaDep,
    as_job: Annotated[
        bool,
        Query(
            alias="async",
            description="Answer 202 at once with a job: its events carry the queue position, "
            "the step and a live preview; POST /jobs/{id}/cancel stops it.",
        ),
    ] = False,
) -> Response:
    """Text to image. Only `prompt` is required; the response lists each image's file, url,
    seed and full parameters. Hanging up stops the work."""
    body = await request.body()
    return await engine.forward(request, "/generate", user, body=body, watch_client=not as_job)


@router.patch("/loras/{file:path}", response_class=Response, responses={200: {"model": LoraEntry}})
async def edit_lora(
    file: str, patch: LoraPatch, request: Request, engine: EngineDep, user: UserDep
) -> Response:
    """Change a LoRA's trigger word, description or preferred strength (its tensors are kept
    byte for byte)."""
    path = engine_path("/loras/{file:path}", {"file": file})
    return await engine.forward(request, path, user, body=await request.body())


@router.post(
    "/jobs/{job_id}/checkpoints/{step}/save",
    response_class=Response,
    status_code=201,
    responses={201: {"model": CheckpointSaved}},
)
async def save_checkpoint(
    job_id: str, step: int, body: CheckpointSave, request: Request, engine: EngineDep, user: UserDep
) -> Response:
    """A training's checkpoint becomes one of your LoRAs, with its step and preferred
    strength (default: the report card's recommendation)."""
    path = engine_path("/jobs/{job_id}/checkpoints/{step}/save", {"job_id": job_id, "step": step})
    return await engine.forward(request, path, user, body=await request.body())


@router.post(
    "/jobs/{job_id}/checkpoints/{step}/draw",
    response_class=Response,
    responses={200: {"model": CheckpointPicture}},
)
async def draw_checkpoint(
    job_id: str, step: int, body: CheckpointDraw, request: Request, engine: EngineDep, user: UserDep
) -> Response:
    """The report card's held-out picture for a kept checkpoint at another strength, added to
    the job's grid (hanging up stops it)."""
    path = engine_path("/jobs/{job_id}/checkpoints/{step}/draw", {"job_id": job_id, "step": step})
    return await engine.forward(request, path, user, body=await request.body(), watch_client=True)


@dataclass(frozen=True)
class Forwarded:
    """A route passed to the engine as it is, as the current user."""

    method: str
    path: str
    status: int
    doc: str
    model: type[BaseModel] | None = None  # the answer, for the docs
    form: type[BaseModel] | None = None  # a multipart body, streamed through


FORWARDED = [
    Forwarded(
        "POST",
        "/train-lora",
        202,
        "Start training a LoRA from 1-5 images; answers at once with `job_id` and `status_url`.",
        TrainAccepted,
        TrainForm,
    ),
    Forwarded("GET", "/loras", 200, "Your LoRAs with size, created and header metadata.", LoraList),
    Forwarded(
        "POST",
        "/loras",
        201,
        "Import a LoRA .safetensors (diffusers or kohya format).",
        LoraImported,
        LoraImportForm,
    ),
    Forwarded("GET", "/loras/{file:path}", 200, "Download a LoRA; ?format=kohya converts it."),
    Forwarded("DELETE", "/loras/{file:path}", 200, "Delete a LoRA.", Deleted),
    Forwarded(
        "POST",
        "/caption",
        200,
        "Caption 1-5 training images; edit them, then send them with /train-lora.",
        Captions,
        CaptionForm,
    ),
    Forwarded(
        "GET",
        "/presets",
        200,
        "Training presets (object, character, style, quick-test) with their values for the "
        "model served and why each is so: ?images= (1-5, default 3), ?masked=, ?group= "
        "(small, sd, sdxl: another model group's).",
        PresetList,
    ),
    Forwarded(
        "POST",
        "/subject-masks",
        200,
        "A mask over the subject of each of 1-5 training images, to edit and send with "
        "/train-lora (masked training).",
        SubjectMasks,
        SubjectMaskForm,
    ),
    Forwarded(
        "GET",
        "/images",
        200,
        "Your images, newest first, a page at a time: ?limit=, ?cursor= (the page's "
        "next_cursor), ?q= (prompt or LoRA name).",
        ImageList,
    ),
    Forwarded(
        "POST",
        "/images",
        201,
        "Put an image of your own into your gallery (PNG, JPEG or WEBP; recorded as "
        "`source: upload`).",
        ImageUploaded,
        ImageUploadForm,
    ),
    Forwarded("GET", "/images/{file:path}", 200, "Download an image (PNG with its parameters)."),
    Forwarded("DELETE", "/images/{file:path}", 200, "Delete an image.", Deleted),
    Forwarded("GET", "/jobs", 200, "Your jobs (training and generations), newest first.", JobList),
    Forwarded(
        "GET",
        "/jobs/{job_id}",
        200,
        "A job: status, phase, queue position, step, loss, eta_s, preview and samples.",
        Job,
    ),
    Forwarded(
        "GET", "/jobs/{job_id}/events", 200, "Server-Sent Events: the job after every change."
    ),
    Forwarded("POST", "/jobs/{job_id}/cancel", 200, "Stop a job; no partial file is left.", Job),
    Forwarded(
        "POST",
        "/jobs/{job_id}/resume",
        202,
        "Resume a cancelled training, or one cut short by an engine stop, from its last "
        "checkpoint: a new job (`resumed_from`).",
        TrainAccepted,
    ),
    Forwarded(
        "POST",
        "/loras/{file:path}/continue",
        202,
        "Train a LoRA made here some more steps; the longer-trained one replaces it.",
        TrainAccepted,
        ContinueForm,
    ),
]


def engine_path(template: str, params: dict[str, str]) -> str:
    """The engine's path for this request, its file name or job id checked first."""
    checked: dict[str, Any] = {}
    if "file" in params:
        kind = "loras" if template.startswith("/loras") else "outputs"
        checked["file"] = check_file_name(params["file"], kind)
    if "job_id" in params:
        checked["job_id"] = check_job_id(params["job_id"])
    if "step" in params:
        checked["step"] = int(params["step"])  # the route's type checked it
    return template.replace(":path", "").format(**checked)


def _forwarder(route: Forwarded):
    async def handler(request: Request, engine: EngineDep, user: UserDep) -> Response:
        path = engine_path(route.path, request.path_params)
        return await engine.forward(request, path, user, stream_body=route.form is not None)

    return handler


PATH_PARAMETERS = {
    "file": "The file's name in your folder, as listed (e.g. my_style.safetensors).",
    "job_id": "The job's id, as `POST /train-lora` or `/generate?async=true` answered it.",
}


def _openapi_extra(route: Forwarded) -> dict[str, Any]:
    """What FastAPI can't see of a forwarded route: its path parameters (the handler reads
    them from the request) and its multipart body."""
    names = re.findall(r"{(\w+)(?::path)?}", route.path)
    extra: dict[str, Any] = {
        "parameters": [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
                "description": PATH_PARAMETERS[name],
            }
            for name in names
        ]
    }
    if route.form is not None:
        schema = route.form.model_json_schema()
        content = {"multipart/form-data": {"schema": schema}}
        extra["requestBody"] = {"required": True, "content": content}
    return extra


for _route in FORWARDED:
    router.add_api_route(
        _route.path,
        _forwarder(_route),
        methods=[_route.method],
        status_code=_route.status,
        response_class=Response,
        responses={_route.status: {"model": _route.model}} if _route.model else None,
        description=_route.doc,
        summary=_route.doc.split(";")[0].split(":")[0].rstrip("."),
        name=f"{_route.method} {_route.path}",
        openapi_extra=_openapi_extra(_route),
    )
