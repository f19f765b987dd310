"""`python -m orchestrator`: serve LoraMint and supervise its engine."""

from __future__ import annotations

import logging

import uvicorn

from orchestrator.app import create_app
from orchestrator.config import get_settings


def main() -> None:
    settings = get_settings()
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per forwarded request
    url = f"http://{settings.Server.Host}:{settings.Server.Port}"
    print(f"LoraMint is starting at {url}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.Server.Host,
        port=settings.Server.Port,
        log_level="info",
        timeout_graceful_shutdown=15,
    )


if __name__ == "__main__":
    main()
