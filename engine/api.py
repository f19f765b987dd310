"""The engine's HTTP API. Routes stay thin: the work lives in the services they call."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.config import EngineSettings, get_settings
from engine.deps import GenerationDep, RuntimeDep, StoreDep, UserIdDep
from engine.errors import EngineError
from engine.runtime import Runtime
from engine.schemas import GenerateRequest, GenerateResponse
from engine.uploads import save_lora_upload

log = logging.getLogger(__name__)


def error_body(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(EngineError)
    async def _engine_error(_: Request, exc: EngineError) -> JSONResponse:
        return error_body(exc.status_code, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_body(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_body(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_body(500, "internal_error", f"{type(exc).__name__}: {exc}")


def create_app(settings: EngineSettings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime(settings)
        app.state.runtime = runtime
        runtime.start()
        yield
        runtime.stop()

    app = FastAPI(title="LoraMint engine", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)

    @app.get("/health")
    def health(rt: RuntimeDep) -> dict[str, Any]:
        return rt.health()

    @app.post("/generate")
    async def generate(req: GenerateRequest, service: GenerationDep) -> GenerateResponse:
        return await service.generate(req)

    @app.get("/loras")
    def list_loras(store: StoreDep, user_id: UserIdDep) -> dict[str, Any]:
        return {"user_id": user_id, "loras": store.list_loras(user_id)}

    @app.post("/loras", status_code=201)
    async def upload_lora(
        store: StoreDep,
        user_id: UserIdDep,
        file: Annotated[UploadFile, File(description="A LoRA .safetensors file.")],
        name: Annotated[str | None, Form(description="Defaults to the upload's name.")] = None,
        overwrite: Annotated[bool, Form()] = False,
    ) -> dict[str, Any]:
        return await save_lora_upload(store, user_id, file, name, overwrite)

    @app.get("/loras/{file}")
    def download_lora(store: StoreDep, user_id: UserIdDep, file: str) -> FileResponse:
        path = store.resolve("loras", user_id, file)
        return FileResponse(path, media_type="application/octet-stream", filename=path.name)

    @app.delete("/loras/{file}")
    def delete_lora(store: StoreDep, user_id: UserIdDep, file: str) -> dict[str, Any]:
        store.delete("loras", user_id, file)
        return {"deleted": file}

    @app.get("/images")
    def list_images(store: StoreDep, user_id: UserIdDep) -> dict[str, Any]:
        return {"user_id": user_id, "images": store.list_images(user_id)}

    @app.get("/images/{file}")
    def download_image(store: StoreDep, user_id: UserIdDep, file: str) -> FileResponse:
        return FileResponse(store.resolve("outputs", user_id, file), media_type="image/png")

    @app.delete("/images/{file}")
    def delete_image(store: StoreDep, user_id: UserIdDep, file: str) -> dict[str, Any]:
        store.delete("outputs", user_id, file)
        return {"deleted": file}

    return app
