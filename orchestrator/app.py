"""The orchestrator app: pages, public API, and the engine supervisor in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from engine.contract.guards import (
    BodyLimit,
    HostGuard,
    PreviewGuard,
    allowed_hosts,
    body_limit,
)
from engine.contract.handlers import install_error_handlers
from orchestrator.accounts.db import Database
from orchestrator.accounts.limiter import LoginLimiter, WindowLimiter
from orchestrator.accounts.store import Accounts
from orchestrator.client import EngineClient
from orchestrator.config import OrchestratorSettings, get_settings
from orchestrator.routes import account, api, auth, pages
from orchestrator.routes.pages import PAGES
from orchestrator.security import BrowserGuard
from orchestrator.supervisor import EngineSupervisor


def preview_allows(method: str, path: str) -> bool:
    """All a preview serves: generating, health, the pages (the others only say they are
    off, in words) and their files."""
    if method == "POST":
        return path == "/generate"
    pages = {f"/{name}" for name in PAGES}
    return method in ("GET", "HEAD") and (
        path in ("/", "/health", "/docs", "/openapi.json", *pages) or path.startswith("/static/")
    )


def create_app(
    settings: OrchestratorSettings | None = None, supervisor: EngineSupervisor | None = None
) -> FastAPI:
    settings = settings or get_settings()
    accounts_on = settings.Auth.Mode == "accounts"

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sup = supervisor or EngineSupervisor(settings)
        app.state.settings = settings
        app.state.supervisor = sup
        if accounts_on:
            rules = settings.Auth
            app.state.accounts = Accounts(Database(settings.database), rules.SessionDays)
            app.state.login_limiter = LoginLimiter(
                rules.MaxFailedLogins,
                rules.MaxFailedLoginsPerUser,
                rules.MaxFailedLoginsPerClient,
                rules.FailureWindowMinutes * 60,
            )
        app.state.generate_limiter = WindowLimiter(settings.Preview.GenerationsPerMinute, 60)
        app.state.engine = EngineClient(
            settings.Engine.BaseUrl, settings.Engine.RequestTimeoutSeconds, lambda: sup.token
        )
        task = asyncio.create_task(sup.run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await sup.stop()
            await app.state.engine.aclose()

    app = FastAPI(
        title="LoraMint",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by pages.py from the app's own files, without inline script
        redoc_url=None,
        description="Make images with Stable Diffusion and teach it new concepts. "
        "Every page's action is also a REST call below.",
    )
    install_error_handlers(app)
    # Added last runs first: the host, then where a change comes from, then the body's size.
    app.add_middleware(BodyLimit, limit_for=body_limit)
    app.add_middleware(BrowserGuard)
    if settings.Mode == "preview":
        app.add_middleware(PreviewGuard, allowed=preview_allows)
    hosts = allowed_hosts(settings.Server.AllowedHosts, settings.Server.Host)
    app.add_middleware(HostGuard, hosts=hosts)
    apidocs = importlib.resources.files("fastapi_offline") / "static"
    app.mount("/static/apidocs", StaticFiles(directory=str(apidocs)), name="apidocs")
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    if accounts_on:
        app.include_router(auth.router)
        app.include_router(account.router)
    return app
