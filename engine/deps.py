"""FastAPI dependencies, as `Annotated` aliases the routes use.

They are `async def` though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop per dependency per request that costs more than the work itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from engine.captions import CaptionService
from engine.contract.names import check_user_id
from engine.generation import GenerationService
from engine.runtime import Runtime
from engine.storage import UserStore
from engine.training.service import TrainingService


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_store(rt: RuntimeDep) -> UserStore:
    return rt.store


def queued(rt: Runtime) -> bool:
    """Celery mode: the runtime is a DispatchRuntime and the work goes onto the queue (imported
    only then: the default install has no Celery)."""
    return rt.settings.queue.Mode == "celery"


async def get_generation(rt: RuntimeDep) -> GenerationService:
    if queued(rt):
        from engine.queue.dispatch import QueuedGeneration

        return QueuedGeneration(rt)  # type: ignore[arg-type, return-value]
    return GenerationService(rt)


async def get_training(rt: RuntimeDep) -> TrainingService:
    if queued(rt):
        from engine.queue.dispatch import QueuedTraining

        return QueuedTraining(rt)  # type: ignore[arg-type, return-value]
    return TrainingService(rt)


async def get_captions(rt: RuntimeDep) -> CaptionService:
    if queued(rt):
        from engine.queue.dispatch import QueuedCaptions

        return QueuedCaptions(rt)  # type: ignore[arg-type, return-value]
    return CaptionService(rt)


async def get_user_id(
    rt: RuntimeDep,
    user_id: Annotated[
        str | None,
        Query(
            description="The user this request acts as (default: the configured default "
            "user). The only place the engine takes a user from; the orchestrator sets it."
        ),
    ] = None,
) -> str:
    return check_user_id(rt.settings.default_user if user_id is None else user_id)


StoreDep = Annotated[UserStore, Depends(get_store)]
GenerationDep = Annotated[GenerationService, Depends(get_generation)]
UserIdDep = Annotated[str, Depends(get_user_id)]
TrainingDep = Annotated[TrainingService, Depends(get_training)]
CaptionDep = Annotated[CaptionService, Depends(get_captions)]
