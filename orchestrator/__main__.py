"""`python -m orchestrator`: serve LoraMint and supervise its engine; with arguments, the
accounts command line (`users ...`, `tokens ...`)."""

from __future__ import annotations

import logging
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from orchestrator.accounts import cli
from orchestrator.app import create_app
from orchestrator.config import get_settings


def main() -> None:
    settings = get_settings()
    if len(sys.argv) > 1:  # users / tokens: the accounts command line
        sys.exit(cli.main(sys.argv[1:], settings))
    if problem := settings.serving_problem():
        sys.exit(f"LoraMint can't start: {problem}")
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per forwarded request
    print(f"LoraMint is starting at {'  '.join(settings.urls())}  (Ctrl-C to stop)", flush=True)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.Server.Host,
        port=settings.Server.Port,
        log_level="info",
        timeout_graceful_shutdown=15,
        proxy_headers=False,  # X-Forwarded-For is read by deps.client_address, when trusted
        **settings.tls,
    )
    OrchestratorServer(config, app).run()


class OrchestratorServer(uvicorn.Server):
    """On SIGTERM or Ctrl-C the engine is told at once: it answers the requests that wait on
    it (503 shutting_down) while this server waits for them to finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        supervisor = getattr(self.app.state, "supervisor", None)
        if supervisor is not None:
            supervisor.begin_shutdown()
        super().handle_exit(sig, frame)


if __name__ == "__main__":
    main()
