"""FastAPI dependencies, as `Annotated` aliases the routes use.

They are `async def` though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop per dependency per request that costs more than the work itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

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


async def current_user(settings: SettingsDep) -> str:
    """Every request acts as the configured DefaultUser until authentication lands."""
    return settings.DefaultUser


UserDep = Annotated[str, Depends(current_user)]
