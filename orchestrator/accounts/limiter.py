"""Events counted per key inside a time window, refused past a maximum: failed logins
(`LoginLimiter`) and a preview deployment's generations per client. Kept in memory; a restart
forgets."""

from __future__ import annotations

import collections
import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator

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

    def take_back(self, key: str) -> None:
        """Undo the key's latest `record`."""
        with self._lock:
            if times := self._events.get(key):
                times.pop()
                if not times:
                    del self._events[key]


class LoginRefused(Exception):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class LoginLimiter:
    """Failed sign-ins, counted before the password is checked: an attempt is recorded the
    moment it starts and given back if it succeeds, and one (user, client) pair has at most
    one check in flight, so parallel guesses can't outrun the count.

    Keyed on (user, client), so one place guessing can't lock the user out of every other
    place; a looser ceiling per user name caps guessing spread over many addresses, and one
    per client caps one address trying many names."""

    def __init__(
        self,
        per_pair: int,
        per_user: int,
        per_client: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limits = {
            "pair": WindowLimiter(per_pair, window_s, clock),
            "user": WindowLimiter(per_user, window_s, clock),
            "client": WindowLimiter(per_client, window_s, clock),
        }
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def attempt(self, user: str, client: str) -> Iterator[Callable[[], None]]:
        """Around one password check; raises LoginRefused before it when over a limit. Call
        the yielded function when the password was right."""
        keys = {
            "pair": f"{user.lower()}\n{client}",
            "user": user.lower(),
            "client": client,
        }
        with self._lock:
            if keys["pair"] in self._in_flight:
                raise LoginRefused(1)
            waits = [lim.retry_after(keys[name]) for name, lim in self._limits.items()]
            if wait := max((w for w in waits if w), default=None):
                raise LoginRefused(wait)
            for name, lim in self._limits.items():
                lim.record(keys[name])
            self._in_flight.add(keys["pair"])
        succeeded = False

        def success() -> None:
            nonlocal succeeded
            succeeded = True

        try:
            yield success
        finally:
            with self._lock:
                self._in_flight.discard(keys["pair"])
                if succeeded:  # it was no failure: take it back, and the pair starts afresh
                    self._limits["pair"].forget(keys["pair"])
                    self._limits["user"].take_back(keys["user"])
                    self._limits["client"].take_back(keys["client"])
