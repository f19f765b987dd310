"""The error hierarchy both processes raise: each class carries an HTTP status and a stable,
machine-readable code; `http.install_error_handlers` turns any of them into the one error body
`{"error": {"code", "message"}}`."""

from __future__ import annotations


class ApiError(Exception):
    """Base class. `message` is for people; `code` is for programs and never changes."""

    status_code = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, code: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers  # sent with the answer: Retry-After, WWW-Authenticate
        if code is not None:
            self.code = code


class InvalidRequest(ApiError):
    status_code = 422
    code = "invalid_request"


class NotAuthenticated(ApiError):
    status_code = 401
    code = "not_authenticated"


class Forbidden(ApiError):
    status_code = 403
    code = "forbidden"


class PreviewOnly(Forbidden):
    """A preview deployment (`LORAMINT_MODE=preview`) only generates."""

    code = "preview_mode"

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} is off here: this LoraMint is a preview that only generates images and "
            "keeps nothing. Run your own LoraMint (see its README) to train and keep LoRAs."
        )


class NotFound(ApiError):
    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class QuotaExceeded(ApiError):
    status_code = 413
    code = "quota_exceeded"


class ClientClosed(ApiError):
    """The client went away, so its work was dropped or stopped; nobody reads this answer."""

    status_code = 499
    code = "client_closed_request"


class UnsupportedMediaType(ApiError):
    status_code = 415
    code = "unsupported_media_type"


class QueueFull(ApiError):
    status_code = 429
    code = "queue_full"


class RateLimited(ApiError):
    status_code = 429
    code = "rate_limited"


class NotReady(ApiError):
    status_code = 503
    code = "not_ready"


class ModelLoadError(ApiError):
    """The configured model could not be loaded; the message names it and the fix."""

    status_code = 503
    code = "model_unavailable"


class EngineUnavailable(ApiError):
    """The orchestrator could not reach the engine, or the engine dropped the connection."""

    status_code = 503
    code = "engine_unavailable"


class EngineTimeout(ApiError):
    status_code = 504
    code = "engine_timeout"


class OutOfMemory(ApiError):
    """The device ran out of memory for this work; what it held was freed, so smaller work
    (and the next request) runs."""

    status_code = 503
    code = "out_of_memory"


class ShuttingDown(ApiError):
    """The engine was told to stop while this work waited or ran."""

    status_code = 503
    code = "shutting_down"


class MaskerUnavailable(ApiError):
    """The subject masking model could not be loaded; the message names it and the way out."""

    status_code = 503
    code = "masker_unavailable"


class CaptionerUnavailable(ApiError):
    """The captioning model could not be loaded; the message names it and the way out."""

    status_code = 503
    code = "captioner_unavailable"
