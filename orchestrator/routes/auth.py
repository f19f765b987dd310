"""Signing in and out with a browser (Auth.Mode accounts): `/login` and `/logout`.

A login is a server-side session: a random id in an HttpOnly, SameSite=Lax cookie (Secure under
HTTPS), stored hashed; logging out, disabling the user or a new password ends it. Repeated
failures are refused per user name and client address, with looser ceilings per name and per
address (429 with Retry-After; `LoginLimiter`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from engine.contract.handlers import ContractRoute
from orchestrator.accounts.limiter import LoginLimiter, LoginRefused
from orchestrator.accounts.store import User
from orchestrator.deps import (
    SESSION_COOKIE,
    AccountsDep,
    SettingsDep,
    client_address,
    signed_in,
)
from orchestrator.routes.pages import templates

router = APIRouter(include_in_schema=False, route_class=ContractRoute)
HOME = "/generate"


def safe_next(target: str | None) -> str:
    """Only a path on this site: an open redirect would let a link send people elsewhere."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return HOME


def _login_page(
    request: Request,
    next_: str,
    error: str | None,
    status: int,
    retry_after: int | None = None,
    username: str = "",
) -> Response:
    context = {
        "title": "Sign in",
        "page": "login",
        "next": next_,
        "error": error,
        "username": username,
    }
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return templates.TemplateResponse(request, "login.html", context, status, headers)


def with_session(response: Response, request: Request, session: str, days: float) -> Response:
    response.set_cookie(
        SESSION_COOKIE,
        session,
        max_age=int(days * 86400),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    if signed_in(request):
        return RedirectResponse(safe_next(next), 303)
    return _login_page(request, safe_next(next), None, 200)


@router.post("/login")
def login(
    request: Request,
    accounts: AccountsDep,
    settings: SettingsDep,
    username: Annotated[str, Form(max_length=64)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=2000)] = HOME,
) -> Response:
    limiter: LoginLimiter = request.app.state.login_limiter
    client = client_address(request)
    try:
        with limiter.attempt(username, client) as succeeded:
            user: User | None = accounts.verify_password(username, password)
            if user is not None:
                succeeded()
    except LoginRefused as refused:
        wait = refused.retry_after
        error = f"Too many failed sign-ins; try again in {wait} s."
        return _login_page(request, next, error, 429, wait, username)
    if user is None:
        return _login_page(request, next, "Wrong user name or password.", 401, None, username)
    response = RedirectResponse(safe_next(next), 303)
    return with_session(response, request, accounts.start_session(user), settings.Auth.SessionDays)


@router.post("/logout")
def logout(request: Request, accounts: AccountsDep) -> Response:
    if session := request.cookies.get(SESSION_COOKIE):
        accounts.end_session(session)
    response = RedirectResponse("/login", 303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
