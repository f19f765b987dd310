"""Celery mode (`LORAMINT_QUEUE__MODE=celery`): engine workers on any number of machines take
generations and trainings from a Redis queue, and job records live in Redis.

- `celery_app`: the Celery application both sides build from the shared settings.
- `records`: job records in Redis (`engine.jobs.JobStore`'s interface).
- `presence`: live workers' cards and the leases that keep a task from running twice.
- `tasks`: what a worker runs for each task, with the engine's own services.
- `worker`: `python -m engine worker`.
- `dispatch`: the engine's web layer without a model: it enqueues and waits.
"""
