"""Where the engine's work runs, chosen once from the settings (as `engine.blobs.open_store`
chooses storage): this process's device, or Celery workers on Redis."""

from __future__ import annotations

from engine.config import EngineSettings
from engine.work.base import WorkQueue

__all__ = ["WorkQueue", "open_queue"]


def open_queue(settings: EngineSettings) -> WorkQueue:
    if settings.queue.Mode == "celery":
        from engine.queue.dispatch import CeleryQueue  # Celery and Redis: only in this mode

        return CeleryQueue(settings)
    from engine.work.local import LocalQueue

    return LocalQueue(settings)
