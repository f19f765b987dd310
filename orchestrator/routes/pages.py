"""The pages. Server-rendered shells; their scripts call the public API. In Auth.Mode accounts
each needs a signed-in browser (else 303 to /login), and /admin an admin."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from orchestrator.accounts.store import User
from orchestrator.banner import banner
from orchestrator.deps import SettingsDep, SupervisorDep, signed_in

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).resolve().parents[1] / "templates")
PAGES = {
    "generate": ("generate.html", "Generate"),
    "train-lora": ("train.html", "Train a LoRA"),
    "my-images": ("images.html", "My images"),
    "my-loras": ("loras.html", "My LoRAs"),
    "my-jobs": ("jobs.html", "Jobs"),
    "account": ("account.html", "Your account"),
    "admin": ("admin.html", "Users"),
}
ACCOUNT_PAGES = ("account", "admin")
# The main navigation, every page's: (page, label).
NAV = [
    ("generate", "Generate"),
    ("train-lora", "Train LoRA"),
    ("my-images", "My images"),
    ("my-loras", "My LoRAs"),
    ("my-jobs", "Jobs"),
]


@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/generate")


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    """The API reference (Swagger UI), from the app's own files."""
    return templates.TemplateResponse(request, "docs.html", {"openapi_url": "/openapi.json"})


def _message(request: Request, page: str, user: User | None, text: str, status: int) -> Response:
    context = {"page": page, "title": "LoraMint", "user": user, "message": text}
    return templates.TemplateResponse(request, "message.html", context, status)


def _page(page: str):
    template, title = PAGES[page]

    def handler(request: Request, supervisor: SupervisorDep, settings: SettingsDep) -> Response:
        user = None
        if settings.Auth.Mode == "accounts":
            user = signed_in(request)
            if user is None:
                return RedirectResponse(f"/login?next=/{page}", 303)
            if page == "admin" and not user.is_admin:
                message = f"Sorry: only admins manage users, and {user.name} is not one."
                return _message(request, page, user, message, 403)
        elif settings.Mode == "preview" and page != "generate":
            message = "This LoraMint is a preview: it only generates images and keeps nothing."
            return _message(request, page, user, message, 403)
        elif page in ACCOUNT_PAGES:
            message = "There are no accounts here: everyone is the same user (Auth.Mode none)."
            return _message(request, page, user, message, 404)
        context = {
            "page": page,
            "title": title,
            "banner": banner(supervisor.status()),
            "user": user,
        }
        return templates.TemplateResponse(request, template, context)

    return handler


templates.env.globals["NAV"] = NAV
for _name in PAGES:
    router.add_api_route(f"/{_name}", _page(_name), methods=["GET"], response_class=HTMLResponse)
