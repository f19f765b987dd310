"""FastAPI dependencies, as `Annotated` aliases the routes use.

They are `async def` though none awaits: FastAPI runs a plain `def` dependency in its thread
pool, a thread hop per dependency per request that costs more than the work itself."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from engine.contract.errors import Forbidden, NotAuthenticated, RateLimited
from orchestrator.accounts.store import Accounts, User
from orchestrator.client import EngineClient
from orchestrator.config import OrchestratorSettings
from orchestrator.supervisor import EngineSupervisor

SESSION_COOKIE = "loramint_session"


async def get_settings(request: Request) -> OrchestratorSettings:
    return request.app.state.settings


async def get_engine(request: Request) -> EngineClient:
    return request.app.state.engine


async def get_supervisor(request: Request) -> EngineSupervisor:
    return request.app.state.supervisor


async def get_accounts(request: Request) -> Accounts:
    return request.app.state.accounts


SettingsDep = Annotated[OrchestratorSettings, Depends(get_settings)]
EngineDep = Annotated[EngineClient, Depends(get_engine)]
SupervisorDep = Annotated[EngineSupervisor, Depends(get_supervisor)]
AccountsDep = Annotated[Accounts, Depends(get_accounts)]


def signed_in(request: Request) -> User | None:
    """Who is asking, in Auth.Mode accounts: a script by its API token (`Authorization:
    Bearer`), a browser by its session cookie; None if neither is valid."""
    accounts: Accounts = request.app.state.accounts
    auth = request.headers.get("authorization")
    if auth is not None:
        scheme, _, token = auth.partition(" ")
        return accounts.token_user(token.strip()) if scheme.lower() == "bearer" else None
    session = request.cookies.get(SESSION_COOKIE)
    return accounts.session_user(session) if session else None


async def current_account(request: Request) -> User:
    user = signed_in(request)
    if user is None:
        raise NotAuthenticated(
            "sign in first: a browser logs in at /login, a script sends "
            "Authorization: Bearer TOKEN (tokens: the /account page or python -m orchestrator "
            "tokens create NAME)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


AccountDep = Annotated[User, Depends(current_account)]


async def current_admin(user: AccountDep) -> User:
    if not user.is_admin:
        raise Forbidden(f"{user.name!r} is not an admin")
    return user


AdminDep = Annotated[User, Depends(current_admin)]


async def current_user(request: Request, settings: SettingsDep) -> str:
    """The one identity channel: who is asking. Auth.Mode none: the configured DefaultUser;
    accounts: the signed-in user. A client never chooses the user: a `user_id` in the query
    naming anyone else is refused (the engine's URLs carry the user's own id, so that passes)."""
    if settings.Auth.Mode == "none":
        user = settings.DefaultUser
    else:
        user = (await current_account(request)).name
    others = [u for u in request.query_params.getlist("user_id") if u != user]
    if others:
        raise Forbidden(
            f"user_id: you act as {user!r} here and can't act as {others[0]!r}; leave user_id out"
        )
    return user


UserDep = Annotated[str, Depends(current_user)]


def client_address(request: Request) -> str:
    """Who is asking, by address: behind a trusted proxy (Server.TrustForwardedFor), the
    address it appended last; else the peer's. uvicorn's own proxy handling is off (it would
    believe X-Forwarded-For from any loopback client), so this is the one place it is read."""
    settings: OrchestratorSettings = request.app.state.settings
    trusted = settings.Server.TrustForwardedFor
    forwarded = request.headers.get("x-forwarded-for", "") if trusted else ""
    if forwarded.strip():
        return forwarded.split(",")[-1].strip()
    return request.client.host if request.client else ""


async def preview_quota(request: Request, settings: SettingsDep) -> None:
    """Mode preview: each client's generations per minute (Preview.GenerationsPerMinute)."""
    if settings.Mode != "preview":
        return
    limiter = request.app.state.generate_limiter
    key = client_address(request)
    if wait := limiter.retry_after(key):
        raise RateLimited(
            f"this preview makes {settings.Preview.GenerationsPerMinute} generations a minute "
            f"per visitor; try again in {wait} s",
            headers={"Retry-After": str(wait)},
        )
    limiter.record(key)


PreviewQuotaDep = Annotated[None, Depends(preview_quota)]
