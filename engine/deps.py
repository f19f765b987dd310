"""FastAPI dependencies, as `Annotated` aliases the routes use.

They are `async def` though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop per dependency per request that costs more than the work itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from engine.generation import GenerationService
from engine.runtime import Runtime
from engine.storage import UserStore, check_user_id
from engine.training_service import TrainingService


async def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_store(rt: RuntimeDep) -> UserStore:
    return rt.store


async def get_generation(rt: RuntimeDep) -> GenerationService:
    return GenerationService(rt)


async def get_training(rt: RuntimeDep) -> TrainingService:
    return TrainingService(rt)


async def get_user_id(
    rt: RuntimeDep,
    user_id: Annotated[str | None, Query(description="Defaults to the configured user.")] = None,
) -> str:
    return check_user_id(rt.settings.default_user if user_id is None else user_id)


async def get_owner(
    user_id: Annotated[str | None, Query(description="When given, only this user's jobs.")] = None,
) -> str | None:
    return None if user_id is None else check_user_id(user_id)


OwnerDep = Annotated[str | None, Depends(get_owner)]
StoreDep = Annotated[UserStore, Depends(get_store)]
GenerationDep = Annotated[GenerationService, Depends(get_generation)]
UserIdDep = Annotated[str, Depends(get_user_id)]
TrainingDep = Annotated[TrainingService, Depends(get_training)]
