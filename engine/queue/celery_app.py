"""The Celery application, built the same way by the dispatcher and every worker."""

from __future__ import annotations

from celery import Celery

from engine.contract.settings import QueueSettings

GENERATE = "loramint.generate"  # answered with the images (a synchronous /generate)
GENERATE_JOB = "loramint.generate_job"  # /generate?async=true: the job record carries it
TRAIN = "loramint.train"
CAPTION = "loramint.caption"
SUBJECT_MASKS = "loramint.subject_masks"
DRAW_CHECKPOINT = "loramint.draw_checkpoint"  # a report card grid's picture, on demand
# Generations wait behind no training: each kind has its own queue, and every worker reads both.
QUEUES = {
    GENERATE: "generate",
    GENERATE_JOB: "generate",
    CAPTION: "generate",
    SUBJECT_MASKS: "generate",
    DRAW_CHECKPOINT: "generate",
    TRAIN: "train",
}


def make_celery(q: QueueSettings) -> Celery:
    app = Celery("loramint", broker=q.BrokerUrl, backend=q.BrokerUrl)
    app.conf.update(
        # Acknowledged when done, not when taken: a worker killed mid-task leaves it in the
        # queue, and Redis hands it to another worker after the visibility timeout.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={
            "visibility_timeout": q.VisibilitySeconds,
            # kombu looks for such tasks every 10 s x 10 by default; a few times per timeout
            # instead, so one comes back soon after its timeout has passed.
            "unacked_restore_interval": max(1, round(q.VisibilitySeconds / 3)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=3600,
        task_routes={name: {"queue": queue} for name, queue in QUEUES.items()},
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    return app
