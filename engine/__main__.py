"""`python -m engine`: serve the engine with uvicorn on the configured host and port."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from engine.api import create_app
from engine.config import get_settings


def main() -> None:
    try:
        settings = get_settings()
    except ValidationError as exc:  # say what to fix, not a traceback
        problems = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        sys.exit(f"LoraMint engine can't start: {problems}")
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
