"""ASGI guards both processes put in front of their routes: only the hosts they serve, and no
body larger than its route allows, refused before it is read."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from starlette.exceptions import HTTPException

from engine.contract.errors import PreviewOnly
from engine.contract.generation import MAX_GENERATE_BYTES
from engine.contract.handlers import error_response
from engine.contract.schemas import (
    ENGINE_TOKEN_HEADER,
    MAX_JSON_BYTES,
    MAX_LORA_BYTES,
    MAX_MASK_BYTES,
    MAX_TRAINING_IMAGE_BYTES,
    MAX_TRAINING_IMAGES,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
MB = 1 << 20


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps a server to this machine."""
    name = host_name(host)
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(host: str) -> str:
    """`Host` without its port: `127.0.0.1:5001` -> `127.0.0.1`, `[::1]:5001` -> `::1`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_hosts(configured: Iterable[str] | None, bound: str) -> frozenset[str]:
    """The configured names, or by default the loopback names and the bound address."""
    names = configured if configured is not None else (*LOOPBACK_HOSTS, bound)
    return frozenset(host_name(n) for n in names if n)


class HostGuard:
    """Answers 400 to a `Host` it does not serve: a DNS-rebinding page's requests carry the
    attacker's name. `*` allows any host; `*.example.org` any subdomain of it. The loopback
    names are always served to a loopback peer: configuring a LAN name must not lock out
    this machine's own browser and scripts (a rebinding page never sends a loopback name)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.any = "*" in hosts
        self.exact = {h for h in hosts if not h.startswith("*")}
        self.suffixes = tuple(h[1:] for h in hosts if h.startswith("*."))

    def serves(self, host: str | None, peer: str | None = None) -> bool:
        if self.any:
            return True
        name = host_name(host or "")
        if name in LOOPBACK_HOSTS and peer and is_loopback(peer):
            return True
        return name in self.exact or (bool(self.suffixes) and name.endswith(self.suffixes))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        peer = (scope.get("client") or (None,))[0]
        if scope["type"] in ("http", "websocket") and not self.serves(header(scope, b"host"), peer):
            host = header(scope, b"host")
            response = error_response(
                400,
                "invalid_host",
                f"this server does not answer to the host {host!r}; add it to the allowed "
                "hosts (Server.AllowedHosts, or LORAMINT_ALLOWED_HOSTS for the engine)",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def body_limit(method: str, path: str) -> int:
    """The largest body a route takes: its files plus 1 MB of form fields, or 1 MB of JSON."""
    if path == "/train-lora":  # and a mask for each image
        return MAX_TRAINING_IMAGES * (MAX_TRAINING_IMAGE_BYTES + MAX_MASK_BYTES) + MAX_JSON_BYTES
    if path in ("/caption", "/subject-masks"):
        return MAX_TRAINING_IMAGES * MAX_TRAINING_IMAGE_BYTES + MAX_JSON_BYTES
    if path == "/loras" and method == "POST":
        return MAX_LORA_BYTES + MAX_JSON_BYTES
    if path == "/images" and method == "POST":
        return MAX_TRAINING_IMAGE_BYTES + MAX_JSON_BYTES
    if path == "/generate":  # an init image and a mask may come inline, as data URLs
        return MAX_GENERATE_BYTES
    return MAX_JSON_BYTES


class BodyTooLarge(HTTPException):
    """Raised from `receive` once a streamed body passes its limit; FastAPI re-raises HTTP
    exceptions from body parsing, so the error handlers answer it as a 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            413, f"the request body is larger than this route's limit ({_size(limit)})"
        )


def _size(n: int) -> str:
    return f"{n / MB:g} MB" if n >= MB else f"{n / 1024:g} KB"


class BodyLimit:
    """Refuses a body over `limit_for(method, path)` bytes with 413: at once when
    Content-Length says so, else as soon as the streamed bytes pass it."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[str, str], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["method"], scope["path"])
        length = header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > limit:
            exc = BodyTooLarge(limit)
            await error_response(413, "too_large", str(exc.detail))(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counted, send)


class EngineTokenGuard:
    """The engine serves its orchestrator only: every request must carry the engine's token.
    `GET /livez`, which says nothing but "alive", is the one exception, so a container's
    health check needs no secret."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) != ("GET", "/livez"):
            given = (header(scope, ENGINE_TOKEN_HEADER.encode()) or "").encode()
            if not hmac.compare_digest(given, self.token):
                response = error_response(
                    401,
                    "engine_token_required",
                    "this engine serves its orchestrator only: requests must carry its token "
                    f"in the {ENGINE_TOKEN_HEADER} header",
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class PreviewGuard:
    """A preview deployment (`LORAMINT_MODE=preview`) only generates: a request that
    `allowed(method, path)` does not admit gets 403 preview_mode before its body is read, so
    no upload is even received."""

    def __init__(self, app: ASGIApp, allowed: Callable[[str, str], bool]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self.allowed(scope["method"], scope["path"]):
            exc = PreviewOnly(f"{scope['method']} {scope['path']}")
            await error_response(exc.status_code, exc.code, exc.message)(scope, receive, send)
            return
        await self.app(scope, receive, send)
