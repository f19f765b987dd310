"""FastAPI dependencies, as `Annotated` aliases the routes use.

They are `async def` though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop per dependency per request that costs more than the work itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from engine.contract.names import check_user_id
from engine.front import Front
from engine.storage import UserStore
from engine.work import WorkQueue


async def get_work(request: Request) -> WorkQueue:
    return request.app.state.work


WorkDep = Annotated[WorkQueue, Depends(get_work)]


async def get_store(work: WorkDep) -> UserStore:
    return work.store


async def get_front(work: WorkDep) -> Front:
    return Front(work)


async def get_user_id(
    work: WorkDep,
    user_id: Annotated[
        str | None,
        Query(
            description="The user this request acts as (default: the configured default "
            "user). The only place the engine takes a user from; the orchestrator sets it."
        ),
    ] = None,
) -> str:
    return check_user_id(work.settings.default_user if user_id is None else user_id)


StoreDep = Annotated[UserStore, Depends(get_store)]
FrontDep = Annotated[Front, Depends(get_front)]
UserIdDep = Annotated[str, Depends(get_user_id)]
