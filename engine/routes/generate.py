"""Health and text-to-image."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from engine.contract.errors import PreviewOnly
from engine.contract.generation import GenerateRequest, GenerateResponse
from engine.contract.handlers import ContractRoute
from engine.contract.jobs import GenerateAccepted
from engine.contract.schemas import ERROR_RESPONSES
from engine.deps import FrontDep, UserIdDep, WorkDep

router = APIRouter(route_class=ContractRoute, responses=ERROR_RESPONSES)


@router.get("/livez")
def livez() -> dict[str, str]:
    """Liveness only, and the one route that needs no engine token: it says nothing else."""
    return {"status": "alive"}


@router.get("/health")
def health(work: WorkDep) -> dict[str, Any]:
    """Status (starting/ready/busy/error) with its reason, the model, device and queue."""
    return work.health()


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses={202: {"model": GenerateAccepted, "description": "With ?async=true: the job."}},
)
async def generate(
    req: GenerateRequest,
    request: Request,
    response: Response,
    user: UserIdDep,
    front: FrontDep,
    as_job: Annotated[
        bool,
        Query(
            alias="async",
            description="Answer 202 at once with a job to follow (queue position, steps, "
            "live previews; cancellable) instead of waiting for the images.",
        ),
    ] = False,
) -> Any:
    """Text to image, with an optional stack of the user's LoRAs. Without ?async=true, work
    whose client hangs up is dropped if it waits, or stopped at its next step if it runs."""
    if as_job:
        if front.settings.mode == "preview":
            raise PreviewOnly("generating as a job (?async=true)")
        # Off the event loop: planning decodes an inline picture and reads the user's files.
        accepted = await asyncio.to_thread(front.start_generation, user, req)
        return JSONResponse(accepted.model_dump(mode="json"), status_code=202)
    answer = await front.generate(user, req, request.is_disconnected)
    if timing := answer.server_timing():
        response.headers["Server-Timing"] = timing
    return answer
