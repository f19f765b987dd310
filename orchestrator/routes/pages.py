"""The pages. Server-rendered shells; their scripts call the public API. In Auth.Mode accounts
each needs a signed-in browser (else 303 to /login), and /admin an admin."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from engine.contract.errors import Forbidden, NotFound
from orchestrator.deps import SettingsDep, SupervisorDep, signed_in
from orchestrator.supervisor import EngineState

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
PAGES = {
    "generate": ("generate.html", "Generate"),
    "train-lora": ("train.html", "Train a LoRA"),
    "my-images": ("images.html", "My images"),
    "my-loras": ("loras.html", "My LoRAs"),
    "account": ("account.html", "Your account"),
    "admin": ("admin.html", "Users"),
}
ACCOUNT_PAGES = ("account", "admin")


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

    def handler(request: Request, supervisor: SupervisorDep, settings: SettingsDep) -> Response:
        user = None
        if settings.Auth.Mode == "accounts":
            user = signed_in(request)
            if user is None:
                return RedirectResponse(f"/login?next=/{page}", 303)
            if page == "admin" and not user.is_admin:
                raise Forbidden(f"only admins manage users, and {user.name!r} is not one")
        elif page in ACCOUNT_PAGES:
            raise NotFound("there are no accounts: Auth.Mode is none")
        context = {"page": page, "title": title, "banner": banner(supervisor), "user": user}
        return templates.TemplateResponse(request, template, context)

    return handler


for _name in PAGES:
    router.add_api_route(f"/{_name}", _page(_name), methods=["GET"], response_class=HTMLResponse)
