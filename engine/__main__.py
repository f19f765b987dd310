"""`python -m engine`: serve the engine with uvicorn on the configured host and port."""

from __future__ import annotations

import logging

import uvicorn

from engine.api import create_app
from engine.config import get_settings


def main() -> None:
    settings = get_settings()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        create_app(settings),
        host=settings.engine_host,
        port=settings.engine_port,
        log_level=settings.log_level,
        access_log=settings.access_log,
    )


if __name__ == "__main__":
    main()
