"""`python -m orchestrator`: serve LoraMint and supervise its engine; with arguments, the
accounts command line (`users ...`, `tokens ...`)."""

from __future__ import annotations

import logging
import sys

import uvicorn

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
    scheme = "https" if settings.tls else "http"
    url = f"{scheme}://{settings.Server.Host}:{settings.Server.Port}"
    print(f"LoraMint is starting at {url}  (Ctrl-C to stop)", flush=True)
    uvicorn.run(
        create_app(settings),
        host=settings.Server.Host,
        port=settings.Server.Port,
        log_level="info",
        timeout_graceful_shutdown=15,
        **settings.tls,
    )


if __name__ == "__main__":
    main()
