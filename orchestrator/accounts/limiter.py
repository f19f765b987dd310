"""Events counted per key inside a time window, refused past a maximum: failed logins per
user name (guessing one account's password) and per client address (trying many accounts),
and a preview deployment's generations per client. Kept in memory; a restart forgets."""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable


class WindowLimiter:
    def __init__(
        self, max_events: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_events = max_events
        self.window_s = window_s
        self.clock = clock
        self._events: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> collections.deque[float]:
        """The key's events inside the window; keys with none are dropped, so the table
        holds only the keys seen lately."""
        times = self._events.get(key, collections.deque())
        while times and now - times[0] >= self.window_s:
            times.popleft()
        if times:
            self._events[key] = times
        else:
            self._events.pop(key, None)
        return times

    def retry_after(self, *keys: str) -> int | None:
        """Whole seconds until any of `keys` may try again, or None if all may now."""
        now = self.clock()
        with self._lock:
            waits = [
                self.window_s - (now - times[0])
                for times in (self._recent(k, now) for k in keys)
                if len(times) >= self.max_events
            ]
        return math.ceil(max(waits)) if waits else None

    def record(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._events[key] = self._recent(key, now)
                self._events[key].append(now)

    def forget(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)
