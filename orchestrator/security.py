"""What the browser-facing app adds to the trust boundary: changes only from its own pages,
and headers that keep its pages from being framed, sniffed or made to run others' scripts."""

from __future__ import annotations

from urllib.parse import urlsplit

from engine.contract.guards import ASGIApp, Message, Receive, Scope, Send, header
from engine.contract.handlers import error_response

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Scripts and styles from this app only: the pages' own ES files, no inline code. Images may
# be data: URLs (LoRA thumbnails) and blob: URLs (previews of files being uploaded).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
# Served over HTTPS, browsers are told to come back only that way (a year; not preloaded).
HSTS = (b"strict-transport-security", b"max-age=31536000")


def cross_site(scope: Scope) -> str | None:
    """Why an unsafe request comes from another website, or None. Browsers say where a request
    comes from (`Sec-Fetch-Site`, `Origin`); scripts that send neither are not refused."""
    if scope["method"] not in UNSAFE_METHODS:
        return None
    if header(scope, b"sec-fetch-site") == "cross-site":
        return "Sec-Fetch-Site: cross-site"
    origin = header(scope, b"origin")
    host = (header(scope, b"host") or "").lower()
    if origin is not None and urlsplit(origin).netloc.lower() != host:
        return f"Origin: {origin}"
    return None


class BrowserGuard:
    """403 `cross_site_request` for changes another website's page asks a browser to make
    (CSRF); security headers on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        extra = [*HEADERS, HSTS] if scope.get("scheme") == "https" else HEADERS

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        if reason := cross_site(scope):
            response = error_response(
                403,
                "cross_site_request",
                f"this request came from another website ({reason}); LoraMint takes changes "
                "only from its own pages and from scripts",
            )
            await response(scope, receive, with_headers)
            return
        await self.app(scope, receive, with_headers)
