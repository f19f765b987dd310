"""The engine's error hierarchy; `api.py` maps it to HTTP in one handler."""

from __future__ import annotations


class EngineError(Exception):
    """Base class: carries an HTTP status and a stable machine-readable code."""

    status_code = 500
    code = "engine_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(EngineError):
    status_code = 422
    code = "invalid_request"


class NotFound(EngineError):
    status_code = 404
    code = "not_found"


class Conflict(EngineError):
    status_code = 409
    code = "conflict"


class QueueFull(EngineError):
    status_code = 429
    code = "queue_full"


class NotReady(EngineError):
    status_code = 503
    code = "not_ready"


class ModelLoadError(EngineError):
    """The configured model could not be loaded; the message names it and the fix."""

    status_code = 503
    code = "model_unavailable"
