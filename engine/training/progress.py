"""A training run's time left and loss curve, as the job reports them."""

from __future__ import annotations

import math
import time

ETA_AFTER = 3  # steps before a time left is shown: the first step also warms up
CHART_POINTS = 200
SMOOTHING = 0.1  # each step's weight in the charted loss: one step's loss is mostly noise


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.every = max(1, math.ceil(total / CHART_POINTS))
        self.history: list[tuple[int, float]] = []
        self._smoothed: float | None = None
        self._first: float | None = None  # when step 1 ended

    def eta(self, step: int, now: float | None = None) -> float | None:
        """Seconds left from the rate measured since step 1 ended (so the first step's
        warm-up and the preparing before it do not count); None until ETA_AFTER steps."""
        now = time.monotonic() if now is None else now
        if self._first is None or step <= 1:
            self._first = now
            return None
        if step < ETA_AFTER:
            return None
        per_step = (now - self._first) / (step - 1)
        return round(per_step * (self.total - step), 1)

    def add(self, step: int, loss: float) -> list[tuple[int, float]]:
        """The loss curve so far, smoothed (each step's loss comes from one random noise
        level, so alone it jumps about), one point per `every` steps."""
        s = self._smoothed
        self._smoothed = loss if s is None else s + SMOOTHING * (loss - s)
        if step % self.every == 0 or step == self.total:
            self.history.append((step, round(self._smoothed, 5)))
        return list(self.history)
