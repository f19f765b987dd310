"""The accounts API (Auth.Mode accounts): your password and API tokens (`/account/...`), and
for admins the users with their storage use (`/admin/users...`). The pages /account and /admin
call it."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request, Response

from engine.contract.accounts import (
    Me,
    NewToken,
    NewUser,
    PasswordChange,
    TokenEntry,
    TokenList,
    TokenRequest,
    Usage,
    UserChange,
    UserEntry,
    UserList,
)
from engine.contract.errors import ApiError, Conflict, InvalidRequest
from engine.contract.handlers import ContractRoute
from engine.contract.schemas import ERROR_RESPONSES
from orchestrator.accounts.store import TokenInfo, User
from orchestrator.deps import (
    SESSION_COOKIE,
    AccountDep,
    AccountsDep,
    AdminDep,
    EngineDep,
    SettingsDep,
)
from orchestrator.routes.auth import with_session

router = APIRouter(tags=["account"], route_class=ContractRoute, responses=ERROR_RESPONSES)


def _entry(info: TokenInfo) -> TokenEntry:
    return TokenEntry(**vars(info))


@router.get("/account/me")
def me(user: AccountDep) -> Me:
    return Me(name=user.name, is_admin=user.is_admin)


@router.post("/account/password")
def change_password(
    body: PasswordChange,
    request: Request,
    response: Response,
    user: AccountDep,
    accounts: AccountsDep,
    settings: SettingsDep,
) -> Me:
    """Set a new password. Every session of yours ends; this browser gets a new one. API
    tokens stay valid: `POST /account/tokens/revoke-all` ends them too."""
    if accounts.verify_password(user.name, body.current_password) is None:
        raise InvalidRequest("current_password: that is not your password", code="wrong_password")
    accounts.set_password(user.name, body.new_password)
    if SESSION_COOKIE in request.cookies:
        with_session(response, request, accounts.start_session(user), settings.Auth.SessionDays)
    return Me(name=user.name, is_admin=user.is_admin)


@router.get("/account/tokens")
def list_tokens(user: AccountDep, accounts: AccountsDep) -> TokenList:
    return TokenList(tokens=[_entry(t) for t in accounts.tokens(user)])


@router.post("/account/tokens", status_code=201)
def create_token(body: TokenRequest, user: AccountDep, accounts: AccountsDep) -> NewToken:
    """A new API token; the answer is the only time it is shown."""
    info, token = accounts.create_token(user, body.label)
    return NewToken(**vars(info), token=token)


@router.post("/account/tokens/revoke-all")
def revoke_all_tokens(user: AccountDep, accounts: AccountsDep) -> TokenList:
    """Revoke every token of yours at once: a new password does not end them."""
    accounts.revoke_all_tokens(user)
    return TokenList(tokens=[_entry(t) for t in accounts.tokens(user)])


@router.delete("/account/tokens/{token_id}")
def revoke_token(token_id: str, user: AccountDep, accounts: AccountsDep) -> TokenEntry:
    return _entry(accounts.revoke_token(token_id, owner=user))


async def _user_entry(user: User, engine: EngineDep) -> UserEntry:
    try:
        usage: Usage | None = Usage(**await engine.get_json("/usage", user.name))
    except ApiError:  # the list still shows while the engine restarts
        usage = None
    return UserEntry(
        name=user.name,
        is_admin=user.is_admin,
        disabled=user.disabled,
        created=user.created,
        usage=usage,
    )


@router.get("/admin/users")
async def list_users(_: AdminDep, accounts: AccountsDep, engine: EngineDep) -> UserList:
    """Every user, with what each keeps on the engine's storage."""
    users = accounts.users()
    return UserList(users=await asyncio.gather(*(_user_entry(u, engine) for u in users)))


@router.post("/admin/users", status_code=201)
async def add_user(
    body: NewUser, _: AdminDep, accounts: AccountsDep, engine: EngineDep
) -> UserEntry:
    # argon2 takes a good fraction of a second on purpose: not on the event loop.
    user = await asyncio.to_thread(accounts.add_user, body.name, body.password, admin=body.admin)
    return await _user_entry(user, engine)


@router.patch("/admin/users/{name}")
async def change_user(
    name: str, body: UserChange, admin: AdminDep, accounts: AccountsDep, engine: EngineDep
) -> UserEntry:
    """Disable (their sessions end and their tokens stop working at once) or enable a user."""
    if name == admin.name and body.disabled:
        raise Conflict("you can't disable yourself; another admin can")
    return await _user_entry(accounts.set_disabled(name, body.disabled), engine)
