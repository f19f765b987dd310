"""`python -m engine worker`: one engine worker for celery mode, one per GPU.

It loads its model once (the same runtime as a local engine: device thread, LoRA cache, the
shared store), and only then takes tasks from both queues, `worker_slots` at a time, in
threads: a training holds one slot and the generations that arrive meanwhile run between its
steps, as they do in a local engine."""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from celery.signals import worker_shutting_down

from engine.config import EngineSettings
from engine.queue.celery_app import make_celery
from engine.queue.presence import Presence
from engine.queue.records import RedisJobStore
from engine.queue.tasks import register
from engine.runtime import Health, Runtime

log = logging.getLogger(__name__)
RETAKE_S = 2.0
QUICK_S = 5.0


def card(rt: Runtime) -> dict[str, Any]:
    """What /health shows of this worker."""
    model = rt.model
    return {
        **(model.info.as_dict() if model else {"model": rt.settings.model}),
        "status": rt.state.value,
        "running": rt.worker.running,
        "queue_depth": rt.worker.depth,
        "lora_cache": model.loras.stats() if model else None,
    }


def consume(app, argv: list[str]) -> None:
    """Celery's worker loop until it ends: by a shutdown, or by an error it can't handle."""
    try:
        app.worker_main(argv)
    except SystemExit as exc:  # Celery ends its command line this way, whatever the cause
        log.info("celery's worker loop ended (exit code %s)", exc.code)


def wait_for_model(rt: Runtime) -> None:
    while rt.state == Health.STARTING:
        time.sleep(0.2)
    if rt.state == Health.ERROR:
        raise SystemExit(f"LoraMint worker can't start: {rt.reason}")


def run_worker(settings: EngineSettings) -> None:
    jobs = RedisJobStore(settings.queue.BrokerUrl, settings.job_history)
    rt = Runtime(settings, jobs)
    rt.start()
    wait_for_model(rt)  # take no task before the model can run it
    name = settings.worker_name or f"{socket.gethostname()}:{os.getpid()}"
    presence = Presence(jobs.redis, name, lambda: card(rt))
    app = make_celery(settings.queue)
    register(app, rt, presence, settings.queue_secret or "")
    # Celery's warm shutdown waits for running tasks: stop them at their next step instead.
    worker_shutting_down.connect(lambda **_: rt.begin_shutdown(), weak=False)
    presence.start()
    log.info("worker %s ready: %s on %s", name, rt.model.info.model, rt.model.info.device)
    argv = [
        "worker",
        "--pool=threads",
        f"--concurrency={settings.worker_slots}",
        "--queues=generate,train",
        f"--hostname={name.replace(':', '-')}@{socket.gethostname()}",
        f"--loglevel={settings.log_level.upper()}",
        "--without-gossip",
        "--without-mingle",
    ]
    try:
        quick = 0  # loops in a row that ended soon after they began
        while True:
            began = time.monotonic()
            consume(app, argv)
            if rt.stopping.is_set():
                break
            quick = quick + 1 if time.monotonic() - began < QUICK_S else 0
            if quick >= 10:
                raise SystemExit("LoraMint worker: Celery's worker loop keeps ending; see above")
            # Celery gives up on an error it can't handle, as kombu's Redis transport may
            # when Redis restarts under a running task: take tasks again, the model loaded.
            log.warning("the worker stopped taking tasks; taking them again in %g s", RETAKE_S)
            time.sleep(RETAKE_S)
    finally:
        presence.stop()
        rt.stop()
