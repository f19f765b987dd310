"""The orchestrator's error hierarchy, mapped to HTTP in `app.py`'s one handler."""

from __future__ import annotations


class OrchestratorError(Exception):
    status_code = 500
    code = "orchestrator_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(OrchestratorError):
    status_code = 422
    code = "invalid_request"


class EngineUnavailable(OrchestratorError):
    status_code = 503
    code = "engine_unavailable"


class EngineTimeout(OrchestratorError):
    status_code = 504
    code = "engine_timeout"
