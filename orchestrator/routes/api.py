"""The public REST API: each route acts as the current user and forwards to the engine."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from orchestrator.deps import EngineDep, SupervisorDep, UserDep
from orchestrator.errors import InvalidRequest

router = APIRouter(tags=["api"])
Forwarded = Response

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
GENERATE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["prompt"],
                "properties": {
                    "prompt": {"type": "string"},
                    "negative_prompt": {"type": "string"},
                    "loras": {
                        "type": "array",
                        "description": "Stacked LoRAs from your folder, strength -2..2.",
                        "items": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {"type": "string"},
                                "strength": {"type": "number", "default": 1.0},
                            },
                        },
                    },
                    "seed": {"type": "integer", "description": "Drawn when omitted."},
                    "steps": {"type": "integer", "description": "Model default when omitted."},
                    "guidance_scale": {"type": "number"},
                    "width": {"type": "integer", "description": "Multiple of 8."},
                    "height": {"type": "integer", "description": "Multiple of 8."},
                    "num_images": {"type": "integer", "default": 1},
                },
            },
            "example": GENERATE_EXAMPLE,
        }
    },
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
                    "flip": {"type": "boolean"},
                    "prior_preservation": {"type": "boolean"},
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


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object. Only parsed, not validated: the engine validates it and says
    what is wrong, and a second validation here would cost every request."""
    try:
        body = json.loads(await request.body())
    except ValueError as exc:
        raise InvalidRequest(f"the body is not valid JSON ({exc})") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("the body must be a JSON object")
    return body


@router.post("/generate", response_class=Forwarded, openapi_extra={"requestBody": GENERATE_BODY})
async def generate(request: Request, engine: EngineDep, user: UserDep) -> Response:
    """Text to image. Only `prompt` is required; the response lists each image's file, url,
    seed and full parameters."""
    body = await json_object(request)
    return await engine.forward(request, "/generate", json={**body, "user_id": user})


@router.post(
    "/train-lora",
    response_class=Forwarded,
    status_code=202,
    openapi_extra={"requestBody": TRAIN_FORM},
)
async def train_lora(request: Request, engine: EngineDep, user: UserDep) -> Response:
    """Start training a LoRA from 1-5 images; answers 202 with `job_id` and `status_url`."""
    return await engine.forward(request, "/train-lora", params={"user_id": user}, stream_body=True)


# The rest forward as they are, as the current user: (method, path, status, what it does).
FORWARDED = [
    ("GET", "/loras", 200, "Your LoRAs with size, created and safetensors header metadata."),
    ("POST", "/loras", 201, "Import a LoRA .safetensors (multipart file, name, overwrite)."),
    ("GET", "/loras/{file}", 200, "Download a LoRA; ?format=kohya converts it for A1111/ComfyUI."),
    ("DELETE", "/loras/{file}", 200, "Delete a LoRA."),
    ("GET", "/images", 200, "Your images, newest first, with prompt, seed and parameters."),
    ("GET", "/images/{file}", 200, "Download an image (PNG with its parameters embedded)."),
    ("DELETE", "/images/{file}", 200, "Delete an image."),
    ("GET", "/jobs", 200, "Your jobs, newest first."),
    (
        "GET",
        "/jobs/{job_id}",
        200,
        "A job: status, step, total_steps, progress, loss, eta_s, result, error.",
    ),
    (
        "GET",
        "/jobs/{job_id}/events",
        200,
        "Server-Sent Events: the job after every change, until it ends.",
    ),
    (
        "POST",
        "/jobs/{job_id}/cancel",
        200,
        "Stop a job within one training step; no partial file is left.",
    ),
]


def _forwarder(path: str, stream_body: bool):
    async def handler(request: Request, engine: EngineDep, user: UserDep) -> Response:
        return await engine.forward(
            request,
            path.format(**request.path_params),
            params={"user_id": user},
            stream_body=stream_body,
        )

    return handler


for _method, _path, _status, _doc in FORWARDED:
    router.add_api_route(
        _path,
        _forwarder(_path, stream_body=_method == "POST" and _path == "/loras"),
        methods=[_method],
        status_code=_status,
        response_class=Forwarded,
        description=_doc,
        summary=_doc.split(":")[0].split(";")[0].rstrip("."),
        name=f"{_method} {_path}",
    )
