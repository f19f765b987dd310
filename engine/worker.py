"""The one thread that touches the device.

Diffusers pipelines are not thread-safe and LoRA adapter state is global to the pipeline, so
every model call runs here, in submission order. Interactive work (generation) may also run
inside a long background task (training) at the points where that task calls `run_pending`.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from engine.contract.errors import QueueFull

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Task:
    def __init__(self, fn: Callable[[], Any], label: str) -> None:
        self.fn = fn
        self.label = label
        self.future: Future[Any] = Future()

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            self.future.set_result(self.fn())
        except BaseException as exc:  # the caller gets it; the worker must survive
            self.future.set_exception(exc)


class DeviceWorker:
    def __init__(self, max_queue: int) -> None:
        self.max_queue = max_queue
        self._interactive: collections.deque[_Task] = collections.deque()
        self._background: collections.deque[_Task] = collections.deque()
        self._cond = threading.Condition()
        self._running: str | None = None
        self._stopped = False
        self._thread = threading.Thread(target=self._loop, name="device-worker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    @property
    def depth(self) -> int:
        """Tasks waiting, not counting the one running."""
        with self._cond:
            return len(self._interactive) + len(self._background)

    @property
    def running(self) -> str | None:
        return self._running

    def has_pending(self) -> bool:
        """Whether interactive work waits (cheap; polled by training between steps)."""
        return bool(self._interactive)

    def submit(self, fn: Callable[[], T], *, label: str, background: bool = False) -> Future[T]:
        task = _Task(fn, label)
        with self._cond:
            if not background and len(self._interactive) >= self.max_queue:
                raise QueueFull(
                    f"the engine already has {len(self._interactive)} requests waiting; "
                    "try again shortly"
                )
            (self._background if background else self._interactive).append(task)
            self._cond.notify()
        return task.future

    def run_pending(self) -> None:
        """Run the interactive tasks queued now; called by background tasks between steps."""
        outer = self._running
        while True:
            with self._cond:
                if not self._interactive:
                    break
                task = self._interactive.popleft()
            self._execute(task)
        self._running = outer

    def _execute(self, task: _Task) -> None:
        self._running = task.label
        try:
            task.run()
        finally:
            self._running = None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._interactive or self._background or self._stopped):
                    self._cond.wait()
                if self._stopped:
                    return
                queue = self._interactive or self._background
                task = queue.popleft()
            self._execute(task)
