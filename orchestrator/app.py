"""The orchestrator app: pages, public API, and the engine supervisor in the lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from orchestrator.client import EngineClient
from orchestrator.config import OrchestratorSettings, get_settings
from orchestrator.errors import OrchestratorError
from orchestrator.routes import api, pages
from orchestrator.supervisor import EngineSupervisor

log = logging.getLogger("loramint")


def error_body(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OrchestratorError)
    async def _ours(_: Request, exc: OrchestratorError) -> JSONResponse:
        return error_body(exc.status_code, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        msg = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'] if p != 'body')}: {e['msg']}" for e in exc.errors()
        )
        return error_body(422, "invalid_request", msg or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_body(exc.status_code, code, str(exc.detail))


def create_app(
    settings: OrchestratorSettings | None = None, supervisor: EngineSupervisor | None = None
) -> FastAPI:
    settings = settings or get_settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        sup = supervisor or EngineSupervisor(settings)
        app.state.settings = settings
        app.state.supervisor = sup
        app.state.engine = EngineClient(
            settings.Engine.BaseUrl, settings.Engine.RequestTimeoutSeconds
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
        description="Make images with Stable Diffusion and teach it new concepts. "
        "Every page's action is also a REST call below.",
    )
    install_error_handlers(app)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    app.include_router(pages.router)
    app.include_router(api.router)
    return app
