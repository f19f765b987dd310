"""Repeated failed logins, refused for a while: per user name (guessing one account's
password) and per client address (trying many accounts). Kept in memory; a restart forgets."""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable


class LoginLimiter:
    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        """The key's failures inside the window; keys with none are dropped, so the table
        holds only names and addresses that failed lately."""
        times = self._failures.get(key, collections.deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if times:
            self._failures[key] = times
        else:
            self._failures.pop(key, None)
        return times

    def retry_after(self, *keys: str) -> int | None:
        """Whole seconds until any of `keys` may try again, or None if all may now."""
        now = self.clock()
        with self._lock:
            waits = [
                self.window_s - (now - times[0])
                for times in (self._recent(k, now) for k in keys)
                if len(times) >= self.max_failures
            ]
        return math.ceil(max(waits)) if waits else None

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._failures[key] = self._recent(key, now)
                self._failures[key].append(now)

    def forget(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
