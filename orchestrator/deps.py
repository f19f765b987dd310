"""FastAPI dependencies, as `Annotated` aliases the routes use.

They are `async def` though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop per dependency per request that costs more than the work itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engine.contract.errors import Forbidden
from orchestrator.client import EngineClient
from orchestrator.config import OrchestratorSettings
from orchestrator.supervisor import EngineSupervisor


async def get_settings(request: Request) -> OrchestratorSettings:
    return request.app.state.settings


async def get_engine(request: Request) -> EngineClient:
    return request.app.state.engine


async def get_supervisor(request: Request) -> EngineSupervisor:
    return request.app.state.supervisor


SettingsDep = Annotated[OrchestratorSettings, Depends(get_settings)]
EngineDep = Annotated[EngineClient, Depends(get_engine)]
SupervisorDep = Annotated[EngineSupervisor, Depends(get_supervisor)]


async def current_user(request: Request, settings: SettingsDep) -> str:
    """The one identity channel: who is asking. Until accounts land every request acts as the
    configured DefaultUser. A client never chooses the user: a `user_id` in the query naming
    anyone else is refused (the engine's URLs carry the user's own id, so that one passes)."""
    user = settings.DefaultUser
    others = [u for u in request.query_params.getlist("user_id") if u != user]
    if others:
        raise Forbidden(
            f"user_id: you act as {user!r} here and can't act as {others[0]!r}; leave user_id out"
        )
    return user


UserDep = Annotated[str, Depends(current_user)]
