"""The one thread that touches the device.

Diffusers pipelines are not thread-safe and LoRA adapter state is global to the pipeline, so
every model call runs here, in submission order. Interactive work (generation) may also run
inside a long background task (training) at the points where that task calls `run_pending`.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from engine.contract.errors import QueueFull

log = logging.getLogger(__name__)
T = TypeVar("T")


class _Task:
    def __init__(self, fn: Callable[[], Any], label: str, owner: str | None) -> None:
        self.fn = fn
        self.label = label
        self.owner = owner
        self.future: Future[Any] = Future()

    def run(self) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            self.future.set_result(self.fn())
        except BaseException as exc:  # the caller gets it; the worker must survive
            self.future.set_exception(exc)


class DeviceWorker:
    def __init__(self, max_queue: int, max_per_owner: int | None = None) -> None:
        self.max_queue = max_queue
        self.max_per_owner = max_per_owner or max_queue
        self.task_s = 1.0  # running mean of interactive task times, for Retry-After
        self._interactive: collections.deque[_Task] = collections.deque()
        self._background: collections.deque[_Task] = collections.deque()
        self._cond = threading.Condition()
        self._running: str | None = None
        self._stopped = False
        self._closed: Callable[[], BaseException] | None = None  # set by drain()
        # Called (on the worker thread) whenever a task leaves the queue: positions moved.
        self.on_dequeue: Callable[[], None] | None = None
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

    def position(self, future: Future[Any]) -> int | None:
        """1 for the task that runs next, None once it has left the queue. Interactive work
        goes before background work."""
        with self._cond:
            for i, task in enumerate((*self._interactive, *self._background)):
                if task.future is future:
                    return i + 1
        return None

    def has_pending(self) -> bool:
        """Whether interactive work waits (cheap; polled by training between steps)."""
        return bool(self._interactive)

    def submit(
        self,
        fn: Callable[[], T],
        *,
        label: str,
        background: bool = False,
        owner: str | None = None,
    ) -> Future[T]:
        """Queue `fn`. Interactive work is refused (429) when the queue is full, or when
        `owner` already has their share of it waiting: one user can't fill it for everyone."""
        task = _Task(fn, label, owner)
        with self._cond:
            if self._closed is not None:
                raise self._closed()
            if not background:
                self._check_room(owner)
            (self._background if background else self._interactive).append(task)
            self._cond.notify()
        return task.future

    def _check_room(self, owner: str | None) -> None:
        waiting = len(self._interactive)
        retry = {"Retry-After": str(math.ceil(self.task_s * (waiting + 1)))}
        if waiting >= self.max_queue:
            raise QueueFull(
                f"the engine already has {waiting} requests waiting (LORAMINT_QUEUE_SIZE); "
                "try again shortly",
                headers=retry,
            )
        mine = sum(1 for t in self._interactive if owner is not None and t.owner == owner)
        if mine >= self.max_per_owner:
            raise QueueFull(
                f"you already have {mine} requests waiting, the most one user may have "
                "(LORAMINT_USER_QUEUE_SIZE); try again when one is done",
                headers=retry,
            )

    def withdraw(self, future: Future[Any]) -> bool:
        """Take work that has not started out of the queue (cancelled, or its client left)."""
        with self._cond:
            queues = (self._interactive, self._background)
            found = next(((q, t) for q in queues for t in q if t.future is future), None)
            if found is None:
                return False
            found[0].remove(found[1])
        self._dequeued()
        return future.cancel()

    def drain(self, error: Callable[[], BaseException]) -> int:
        """Fail every task still waiting with `error()`, and refuse new ones: the engine is
        stopping, and those waiting should hear so now, not when it is gone."""
        with self._cond:
            self._closed = error
            waiting = [*self._interactive, *self._background]
            self._interactive.clear()
            self._background.clear()
        for task in waiting:
            if task.future.set_running_or_notify_cancel():
                task.future.set_exception(error())
        if waiting:
            self._dequeued()
        return len(waiting)

    def _dequeued(self) -> None:
        if self.on_dequeue is not None:
            try:
                self.on_dequeue()
            except Exception:  # a listener's bug must not stop the device
                log.exception("queue listener failed")

    def run_pending(self) -> None:
        """Run the interactive tasks queued now; called by background tasks between steps."""
        outer = self._running
        while True:
            with self._cond:
                if not self._interactive:
                    break
                task = self._interactive.popleft()
            self._dequeued()
            self._execute(task)
        self._running = outer

    def _execute(self, task: _Task) -> None:
        self._running = task.label
        started = time.monotonic()
        try:
            task.run()
        finally:
            self._running = None
        if task.owner is not None:
            self.task_s = 0.8 * self.task_s + 0.2 * (time.monotonic() - started)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._interactive or self._background or self._stopped):
                    self._cond.wait()
                if self._stopped:
                    return
                queue = self._interactive or self._background
                task = queue.popleft()
            self._dequeued()
            self._execute(task)
