"""A training run's time left and loss curve, as the job reports them."""

from __future__ import annotations

import math
import statistics
import time

ETA_AFTER = 3  # steps before a time left is shown: the first step also warms up
CHART_POINTS = 200
SMOOTHING = 0.1  # each step's weight in the charted loss: one step's loss is mostly noise


def images_left(step: int, total: int, every: int, prompts: int) -> int:
    """Images a run still draws once `step` is reported (its samples come after the report):
    `prompts` at every `every`-th step and at the last, then the finished LoRA's thumbnail."""
    events = 0
    if every and prompts:
        events = total // every - (step - 1) // every + (1 if total % every else 0)
    return max(0, events) * prompts + 1


class Progress:
    """`images_left(step)`: how many images the run still draws after `step` (its samples and
    the finished LoRA's thumbnail), each of `image_steps` sampling steps: they count in the
    time left, at the rate measured when one was drawn (before that, a sampling step priced as
    a third of a training step, which is a forward pass against forward and backward)."""

    def __init__(self, total: int, images_left=lambda step: 0, image_steps: int = 0) -> None:
        self.total = total
        self.images_left = images_left
        self.image_steps = image_steps
        self.every = max(1, math.ceil(total / CHART_POINTS))
        self.history: list[tuple[int, float]] = []
        self._smoothed: float | None = None
        self._first: float | None = None  # when step 1 ended
        self._drawing = 0.0  # seconds spent drawing images since step 1 ended
        self._drawn = 0
        self._image_s = 0.0  # a drawn image's seconds, smoothed
        self._per_step: float | None = None

    def drew(self, seconds: float) -> None:
        """One image was drawn in `seconds` (not training time)."""
        if self._first is not None:
            self._drawing += seconds
        self._drawn += 1
        self._image_s = seconds if self._drawn == 1 else self._image_s * 0.7 + seconds * 0.3

    def eta(self, step: int, now: float | None = None) -> float | None:
        """Seconds left from the rate measured since step 1 ended (so the first step's
        warm-up and the preparing before it do not count), the images still to draw
        included; None until ETA_AFTER steps."""
        now = time.monotonic() if now is None else now
        if self._first is None or step <= 1:
            self._first, self._drawing = now, 0.0
            return None
        if step < ETA_AFTER:
            return None
        self._per_step = (now - self._first - self._drawing) / (step - 1)
        return round(self._per_step * (self.total - step) + self._images_s(step), 1)

    def _images_s(self, step: int) -> float:
        per_image = self._image_s if self._drawn else (self._per_step or 0.0) * self.image_steps / 3
        return per_image * self.images_left(step)

    def add(self, step: int, loss: float) -> list[tuple[int, float]]:
        """The loss curve so far, smoothed (each step's loss comes from one random noise
        level, so alone it jumps about), one point per `every` steps."""
        s = self._smoothed
        self._smoothed = loss if s is None else s + SMOOTHING * (loss - s)
        if step % self.every == 0 or step == self.total:
            self.history.append((step, round(self._smoothed, 5)))
        return list(self.history)


class SpillWatch:
    """Says once when training steps suddenly take `factor` times their usual time for `run`
    steps in a row: on a GPU, memory spilling into system RAM (NVIDIA's drivers do this
    rather than fail), which makes a run 10-100x slower without a word. The usual time is
    the median of `window` steps after `warmup` (the first steps compile and fill caches).
    Only a step's own time counts: generations and samples between steps don't."""

    def __init__(
        self, device: str, warmup: int = 5, window: int = 10, factor: float = 3.0, run: int = 3
    ) -> None:
        self.device, self.warmup, self.window = device, warmup, window
        self.factor, self.run = factor, run
        self.seen: list[float] = []
        self.rate: float | None = None
        self.slow = 0
        self.said = False

    def step(self, seconds: float) -> str | None:
        """The warning, the first time the steps are slow; else None."""
        if self.said or self.device == "cpu":  # a CPU's steps vary with whatever else runs
            return None
        if self.rate is None:
            self.seen.append(seconds)
            if len(self.seen) == self.warmup + self.window:
                self.rate = statistics.median(self.seen[self.warmup :])
            return None
        self.slow = self.slow + 1 if seconds >= self.factor * self.rate else 0
        if self.slow < self.run:
            return None
        self.said = True
        where = (
            "GPU memory is probably spilling into system RAM"
            if self.device.startswith("cuda")
            else "memory is probably being swapped"
        )
        return (
            f"training steps now take {seconds / self.rate:.0f}x as long as at the start "
            f"({self.rate:.2f} s -> {seconds:.2f} s a step): {where}. Close other programs using "
            "the GPU, or cancel and train again at a lower resolution or rank"
        )
