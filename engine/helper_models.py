"""Models beside the pipeline (the captioner, the report card's judge, the subject masker):
each loaded once, on first use, on the device thread. A model that fails to load (offline and
not in the cache, not the kind of model asked for) is not tried again for a while: the same
clear error answers at once instead of a network wait per request."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from engine.contract.errors import ApiError

log = logging.getLogger(__name__)
RETRY_AFTER_S = 300
T = TypeVar("T")


class HelperModel(Generic[T]):
    """`load(*args)` the first time `get(*args)` is called; its failure is raised as
    `unavailable(why)` until RETRY_AFTER_S has passed."""

    def __init__(
        self, name: str, load: Callable[..., T], unavailable: Callable[[str], ApiError]
    ) -> None:
        self.name = name
        self.load = load
        self.unavailable = unavailable
        self.loaded: T | None = None
        self.failed: tuple[float, str] | None = None

    def get(self, *args: Any) -> T:
        if self.loaded is not None:
            return self.loaded
        if self.failed and time.monotonic() - self.failed[0] < RETRY_AFTER_S:
            raise self.unavailable(self.failed[1])
        log.info("loading %s", self.name)
        try:
            self.loaded = self.load(*args)
        except Exception as exc:  # offline and not cached, not that kind of model...
            self.failed = (time.monotonic(), f"{type(exc).__name__}: {exc}")
            raise self.unavailable(self.failed[1]) from exc
        return self.loaded


def from_cache_first(load: Callable[..., T], **kw: Any) -> T:
    """`load(**kw)` from the Hub cache (or a folder) first: no network wait when it is there
    or when this machine is offline; else downloaded."""
    from engine.pipelines import hub_unreachable

    try:
        return load(local_files_only=True, **kw)
    except OSError:
        if why := hub_unreachable():
            raise OSError(f"not on this machine, and can't be downloaded: {why}") from None
    return load(**kw)
