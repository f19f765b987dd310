"""The engine's HTTP API. Routes stay thin: the work lives in the services they call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from engine.config import EngineSettings, get_settings
from engine.contract.guards import (
    BodyLimit,
    EngineTokenGuard,
    HostGuard,
    PreviewGuard,
    allowed_hosts,
    body_limit,
)
from engine.contract.handlers import install_error_handlers
from engine.routes import files, generate, training
from engine.work import open_queue

# All a preview engine serves; its /generate refuses ?async=true (no jobs) itself.
PREVIEW = {("GET", "/livez"), ("GET", "/health"), ("POST", "/generate")}


def create_app(settings: EngineSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    work = open_queue(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        work.bind_loop(asyncio.get_running_loop())
        work.start()
        yield
        work.stop()

    app = FastAPI(title="LoraMint engine", version="0.1.0", lifespan=lifespan)
    app.state.work = work
    install_error_handlers(app)
    work.install(app)
    # Added last runs first: the host, then the token, then the body's size.
    app.add_middleware(BodyLimit, limit_for=body_limit)
    if settings.mode == "preview":
        app.add_middleware(PreviewGuard, allowed=lambda method, path: (method, path) in PREVIEW)
    if settings.engine_token is not None:
        app.add_middleware(EngineTokenGuard, token=settings.engine_token.get_secret_value())
    app.add_middleware(HostGuard, hosts=allowed_hosts(settings.allowed_hosts, settings.engine_host))

    for module in (generate, files, training):
        app.include_router(module.router)
    return app
