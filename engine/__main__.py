"""`python -m engine`: serve the engine with uvicorn on the configured host and port (in celery
mode: the API that enqueues). `python -m engine worker`: a celery-mode worker."""

from __future__ import annotations

import logging
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI
from pydantic import ValidationError

from engine.api import create_app
from engine.config import get_settings


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:  # say what to fix, not a traceback
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        sys.exit(f"LoraMint engine can't start: {problems}")
    # Supervised, the orchestrator logs each line with its own time: one timestamp is enough.
    stamp = "" if settings.parent_pid else "%(asctime)s "
    logging.basicConfig(
        level=settings.log_level.upper(), format=f"{stamp}%(levelname)s %(name)s: %(message)s"
    )
    # huggingface_hub gives its logger a console handler of its own on import, so each of its
    # warnings printed twice (once bare): ours is the one.
    import huggingface_hub.utils.logging  # noqa: F401

    logging.getLogger("huggingface_hub").handlers.clear()
    if sys.argv[1:] == ["worker"]:
        from engine.queue.worker import run_worker  # Celery: only in celery mode

        if settings.queue.Mode != "celery":
            sys.exit("`python -m engine worker` needs LORAMINT_QUEUE__MODE=celery")
        return run_worker(settings)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.engine_host,
        port=settings.engine_port,
        log_level=settings.log_level,
        access_log=settings.access_log,
        timeout_graceful_shutdown=5,
        proxy_headers=False,  # only the orchestrator calls it; no proxy's word is trusted
    )
    EngineServer(config, app).run()


class EngineServer(uvicorn.Server):
    """uvicorn waits for running requests before it stops; a render holds its request for
    minutes. So the signal also tells the work queue: waiting work is answered at once and
    running work stops at its next step."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.app.state.work.begin_shutdown()
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    main()
