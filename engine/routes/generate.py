from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from engine.deps import GenerationDep, RuntimeDep
from engine.schemas import GenerateRequest, GenerateResponse

router = APIRouter()


@router.get("/health")
def health(rt: RuntimeDep) -> dict[str, Any]:
    """Status (starting/ready/busy/error) with its reason, the model, device and queue."""
    return rt.health()


@router.post("/generate")
async def generate(req: GenerateRequest, service: GenerationDep) -> GenerateResponse:
    """Text to image, with an optional stack of the user's LoRAs."""
    return await service.generate(req)
