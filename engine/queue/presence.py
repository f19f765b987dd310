"""Which workers are alive and what each is running, kept in Redis under short expiries.

A worker refreshes its card (model, device, load) and the lease on every task it runs every
few seconds. A worker that dies stops refreshing: within `TTL_S` its card is gone from
/health and its leases are free, so when Redis hands its unacknowledged task to another worker
(after the queue's visibility timeout) that worker may run it. A task whose lease is still held
is a copy handed out while its first run goes on (a long training outlives the visibility
timeout); the copy is put back for later instead of running twice, and a copy that finds its
task done is dropped."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import redis

from engine.queue.records import PREFIX

log = logging.getLogger(__name__)
TTL_S = 10
EVERY_S = 3.0
DONE_TTL_S = 24 * 3600  # longer than any copy of a task can linger in the queue


def _card_key(name: str) -> str:
    return f"{PREFIX}worker:{name}"


def _lease_key(task_id: str) -> str:
    return f"{PREFIX}lease:{task_id}"


def _done_key(task_id: str) -> str:
    return f"{PREFIX}done:{task_id}"


class Presence:
    def __init__(self, r: redis.Redis, name: str, card: Callable[[], dict[str, Any]]) -> None:
        self.redis = r
        self.name = name
        self.card = card
        self._leases: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="presence", daemon=True)

    def start(self) -> None:
        self._beat()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.redis.delete(_card_key(self.name))

    def claim(self, task_id: str) -> bool:
        """Take the lease on a task; False while another live worker holds it."""
        key = _lease_key(task_id)
        if not self.redis.set(key, self.name, nx=True, ex=TTL_S):
            return False
        with self._lock:
            self._leases.add(key)
        return True

    def done(self, task_id: str) -> bool:
        """Whether a task with this id has run to its end (on any worker)."""
        return bool(self.redis.exists(_done_key(task_id)))

    def mark_done(self, task_id: str) -> None:
        self.redis.set(_done_key(task_id), self.name, ex=DONE_TTL_S)

    def release(self, task_id: str) -> None:
        key = _lease_key(task_id)
        with self._lock:
            self._leases.discard(key)
        self.redis.delete(key)

    def _beat(self) -> None:
        card = {"name": self.name, **self.card()}
        with self._lock:
            leases = list(self._leases)
        with self.redis.pipeline() as pipe:
            pipe.set(_card_key(self.name), json.dumps(card), ex=TTL_S)
            for key in leases:
                pipe.expire(key, TTL_S)
            pipe.execute()

    def _loop(self) -> None:
        while not self._stop.wait(EVERY_S):
            try:
                self._beat()
            except redis.RedisError as exc:  # Redis restarting: the next beat catches up
                log.warning("could not refresh this worker's presence: %s", exc)


def live_workers(r: redis.Redis) -> list[dict[str, Any]]:
    """The cards of the workers alive now, by name."""
    keys = sorted(r.scan_iter(match=_card_key("*"), count=100))
    cards = r.mget(keys) if keys else []
    return [json.loads(c) for c in cards if c is not None]
