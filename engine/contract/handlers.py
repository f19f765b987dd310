"""How both apps turn requests into checked input and failures into the one error body.

- `install_error_handlers`: every error, expected or not, answers `{"error": {"code",
  "message"}}` as JSON, never text/plain.
- `ContractRoute`: JSON bodies parsed strictly (an object, finite numbers, bounded nesting),
  and no body accepted on a route that documents none.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.contract.errors import ApiError, InvalidRequest, UnsupportedMediaType

log = logging.getLogger("loramint")
MAX_JSON_DEPTH = 32
HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def validation_message(exc: RequestValidationError) -> str:
    """One line a person can act on: each bad field with what is wrong with it."""
    parts = []
    for err in exc.errors():
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON: {err.get('ctx', {}).get('error', '')}")
            continue
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        if not loc and err.get("type") == "missing":
            parts.append("the request body is missing")
            continue
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "invalid request"


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.code, exc.message, exc.headers)


async def _validation(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", validation_message(exc))


async def _http(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # The details go to the log, not to the client: they can name paths and internals.
    log.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", f"internal error ({type(exc).__name__}); the server log has details"
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number (JSON has no NaN or Infinity)")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number")
    return value


def _too_deep(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _kind(value: Any) -> str:
    kinds = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return kinds.get(type(value), "a number")


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or `json.JSONDecodeError` saying what is wrong (FastAPI
    turns that into a 422 validation error)."""
    too_deep = f"nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        value = json.loads(raw, parse_constant=_no_constant, parse_float=_finite)
    except json.JSONDecodeError:
        raise
    except RecursionError as exc:
        raise json.JSONDecodeError(too_deep, "", 0) from exc
    except ValueError as exc:  # NaN, Infinity, overflow, bad UTF-8
        raise json.JSONDecodeError(str(exc), "", 0) from exc
    if _too_deep(value, MAX_JSON_DEPTH):
        raise json.JSONDecodeError(too_deep, "", 0)
    if not isinstance(value, dict):
        raise json.JSONDecodeError(f"the body must be a JSON object, not {_kind(value)}", "", 0)
    return value


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json_object(await self.body())
        return self._json


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length", "0").strip()
    return length not in ("", "0") or "transfer-encoding" in request.headers


def _is_json(content_type: str | None) -> bool:
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class ContractRoute(APIRoute):
    """The route class of both apps' API routers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # Routes that stream their body on document it in openapi_extra instead of a parameter.
        takes_body = self.body_field is not None or "requestBody" in (self.openapi_extra or {})
        # A JSON route takes JSON only: a page elsewhere can post text/plain or a form without
        # asking first (no CORS preflight), but not application/json.
        takes_json = self.body_field is not None and not isinstance(
            self.body_field.field_info, params.Form
        )

        async def strict(request: Request) -> Response:
            if takes_json and not _is_json(request.headers.get("content-type")):
                raise UnsupportedMediaType(
                    "send the body as JSON, with the header Content-Type: application/json"
                )
            if not takes_body and _has_body(request):
                raise InvalidRequest(
                    f"{request.method} {request.url.path} takes no request body; send its "
                    "parameters in the query string",
                    code="unexpected_body",
                )
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict
