"""The public REST API: each route acts as the current user and forwards to the engine."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.responses import StreamingResponse

from orchestrator.deps import EngineDep, SupervisorDep, UserDep

router = APIRouter(tags=["api"])
Streamed = StreamingResponse

GENERATE_EXAMPLE = {
    "prompt": "fox in pixel art style",
    "negative_prompt": "",
    "loras": [{"file": "anime_style_v1.safetensors", "strength": 0.75}],
    "seed": 42,
    "steps": 2,
    "guidance_scale": 0.0,
    "width": 512,
    "height": 512,
    "num_images": 1,
}
TRAIN_FORM = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["images", "name"],
                "properties": {
                    "images": {
                        "type": "array",
                        "items": {"type": "string", "format": "binary"},
                        "description": "1-5 PNG, JPEG or WEBP images",
                    },
                    "name": {"type": "string"},
                    "trigger_word": {"type": "string"},
                    "captions": {"type": "array", "items": {"type": "string"}},
                    "steps": {"type": "integer"},
                    "rank": {"type": "integer"},
                    "learning_rate": {"type": "number"},
                    "resolution": {"type": "integer"},
                    "seed": {"type": "integer"},
                    "train_text_encoder": {"type": "boolean"},
                    "overwrite": {"type": "boolean"},
                },
            }
        }
    },
}


@router.get("/health")
async def health(supervisor: SupervisorDep) -> dict[str, Any]:
    """The orchestrator is up; `engine` says how the engine is (state, reason, its health)."""
    return {"status": "ok", "engine": supervisor.status()}


@router.post("/generate", response_class=Streamed)
async def generate(
    request: Request,
    engine: EngineDep,
    user: UserDep,
    body: Annotated[dict[str, Any], Body(examples=[GENERATE_EXAMPLE])],
) -> StreamingResponse:
    """Text to image. Only `prompt` is required; the response lists each image's file, url,
    seed and full parameters."""
    return await engine.forward(request, "/generate", json={**body, "user_id": user})


@router.post(
    "/train-lora",
    response_class=Streamed,
    status_code=202,
    openapi_extra={"requestBody": TRAIN_FORM},
)
async def train_lora(request: Request, engine: EngineDep, user: UserDep) -> StreamingResponse:
    """Start training a LoRA from 1-5 images; answers 202 with `job_id` and `status_url`."""
    return await engine.forward(request, "/train-lora", params={"user_id": user}, stream_body=True)


@router.get("/loras", response_class=Streamed)
async def list_loras(request: Request, engine: EngineDep, user: UserDep) -> StreamingResponse:
    """Your LoRAs with size, created and safetensors header metadata."""
    return await engine.forward(request, "/loras", params={"user_id": user})


@router.post("/loras", response_class=Streamed, status_code=201)
async def import_lora(request: Request, engine: EngineDep, user: UserDep) -> StreamingResponse:
    """Import a LoRA `.safetensors` (multipart `file`, optional `name`, `overwrite`)."""
    return await engine.forward(request, "/loras", params={"user_id": user}, stream_body=True)


@router.get("/loras/{file}", response_class=Streamed)
async def download_lora(
    request: Request, engine: EngineDep, user: UserDep, file: str
) -> StreamingResponse:
    """Download a LoRA; `?format=kohya` converts it for A1111/ComfyUI."""
    return await engine.forward(request, f"/loras/{file}", params={"user_id": user})


@router.delete("/loras/{file}", response_class=Streamed)
async def delete_lora(
    request: Request, engine: EngineDep, user: UserDep, file: str
) -> StreamingResponse:
    return await engine.forward(request, f"/loras/{file}", params={"user_id": user})


@router.get("/images", response_class=Streamed)
async def list_images(request: Request, engine: EngineDep, user: UserDep) -> StreamingResponse:
    """Your images, newest first, with prompt, seed and parameters."""
    return await engine.forward(request, "/images", params={"user_id": user})


@router.get("/images/{file}", response_class=Streamed)
async def download_image(
    request: Request, engine: EngineDep, user: UserDep, file: str
) -> StreamingResponse:
    return await engine.forward(request, f"/images/{file}", params={"user_id": user})


@router.delete("/images/{file}", response_class=Streamed)
async def delete_image(
    request: Request, engine: EngineDep, user: UserDep, file: str
) -> StreamingResponse:
    return await engine.forward(request, f"/images/{file}", params={"user_id": user})


@router.get("/jobs", response_class=Streamed)
async def list_jobs(request: Request, engine: EngineDep, user: UserDep) -> StreamingResponse:
    """Your jobs, newest first."""
    return await engine.forward(request, "/jobs", params={"user_id": user})


@router.get("/jobs/{job_id}", response_class=Streamed)
async def get_job(
    request: Request, engine: EngineDep, user: UserDep, job_id: str
) -> StreamingResponse:
    """status, step, total_steps, progress, loss, eta_s, result, error..."""
    return await engine.forward(request, f"/jobs/{job_id}", params={"user_id": user})


@router.get("/jobs/{job_id}/events", response_class=Streamed)
async def job_events(
    request: Request, engine: EngineDep, user: UserDep, job_id: str
) -> StreamingResponse:
    """Server-Sent Events: the job after every change, until it ends."""
    return await engine.forward(request, f"/jobs/{job_id}/events", params={"user_id": user})


@router.post("/jobs/{job_id}/cancel", response_class=Streamed)
async def cancel_job(
    request: Request, engine: EngineDep, user: UserDep, job_id: str
) -> StreamingResponse:
    """Stop a job within one training step; no partial file is left."""
    return await engine.forward(request, f"/jobs/{job_id}/cancel", params={"user_id": user})
