"""The four pages. Server-rendered shells; their scripts call the public API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from orchestrator.deps import SupervisorDep
from orchestrator.supervisor import EngineState

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
PAGES = {
    "generate": ("generate.html", "Generate"),
    "train-lora": ("train.html", "Train a LoRA"),
    "my-images": ("images.html", "My images"),
    "my-loras": ("loras.html", "My LoRAs"),
}


def banner(supervisor: SupervisorDep) -> str | None:
    status = supervisor.status()
    if status["state"] != EngineState.READY.value:
        reason = status["reason"]
        return f"Engine {status['state']}" + (f": {reason}" if reason else "")
    if (status["health"] or {}).get("model") == "builtin:demo":
        return "Running the built-in demo model (shapes and colours only)."
    return None


@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/generate")


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """The API reference (Swagger UI), from the app's own files."""
    return templates.TemplateResponse(request, "docs.html", {"openapi_url": "/openapi.json"})


def _page(page: str):
    template, title = PAGES[page]

    def handler(request: Request, supervisor: SupervisorDep) -> HTMLResponse:
        return templates.TemplateResponse(
            request, template, {"page": page, "title": title, "banner": banner(supervisor)}
        )

    return handler


for _name in PAGES:
    router.add_api_route(f"/{_name}", _page(_name), methods=["GET"], response_class=HTMLResponse)
