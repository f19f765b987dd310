"""Health and text-to-image."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from engine.contract.handlers import ContractRoute
from engine.contract.schemas import ERROR_RESPONSES, GenerateRequest, GenerateResponse
from engine.deps import GenerationDep, RuntimeDep, UserIdDep

router = APIRouter(route_class=ContractRoute, responses=ERROR_RESPONSES)


@router.get("/livez")
def livez() -> dict[str, str]:
    """Liveness only, and the one route that needs no engine token: it says nothing else."""
    return {"status": "alive"}


@router.get("/health")
def health(rt: RuntimeDep) -> dict[str, Any]:
    """Status (starting/ready/busy/error) with its reason, the model, device and queue."""
    return rt.health()


@router.post("/generate")
async def generate(
    req: GenerateRequest, request: Request, user: UserIdDep, service: GenerationDep
) -> GenerateResponse:
    """Text to image, with an optional stack of the user's LoRAs. A request whose client hangs
    up while it waits for the device is dropped before it runs."""
    return await service.generate(user, req, request.is_disconnected)
