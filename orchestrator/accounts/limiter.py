"""Events counted per key inside a time window, refused past a maximum: failed logins per
user name (guessing one account's password) and per client address (trying many accounts),
and a preview deployment's generations per client. Kept in memory; a restart forgets."""

from __future__ import annotations

import collections
import math
import threading
import time
from collections.abc import Callable

SWEEP_AT = 4096


class WindowLimiter:
    def __init__(
        self, max_events: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_events = max_events
        self.window_s = window_s
        self.clock = clock
        self._events: dict[str, collections.deque[float]] = {}
        self._swept = -math.inf
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
            # Keys are only pruned when seen again, and a public preview sees many addresses
            # once: past a size the whole table is swept, at most once a window.
            if len(self._events) >= SWEEP_AT and now - self._swept >= self.window_s:
                for key in list(self._events):
                    self._recent(key, now)
                self._swept = now
            for key in keys:
                self._events[key] = self._recent(key, now)
                self._events[key].append(now)

    def forget(self, key: str) -> None:
        with self._lock:
            self._events.pop(key, None)
