"""The engine's live state: the loaded model, its LoRA cache, the device worker, and health."""

from __future__ import annotations

import enum
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psutil

from engine.blobs import open_store
from engine.config import EngineSettings
from engine.contract.errors import ModelLoadError, NotReady, ShuttingDown
from engine.contract.jobs import Job
from engine.helper_models import HelperModel
from engine.jobs import JobStore
from engine.lifecycle import JobLifecycle, JobRecords
from engine.storage import UserStore
from engine.training.clip_judge import clip_loader
from engine.values import ModelInfo
from engine.worker import DeviceWorker

if TYPE_CHECKING:
    from engine.loras import LoraCache

log = logging.getLogger(__name__)
STOPPING = "the engine is stopping; this work was not finished. Send it again once it is back"


class Health(str, enum.Enum):
    STARTING = "starting"
    WAITING = "waiting"  # celery mode: no worker connected; work waits in the queue
    READY = "ready"
    BUSY = "busy"
    ERROR = "error"


@dataclass
class LoadedModel:
    pipe: Any  # a diffusers pipeline; typed loosely so the web layer needs no torch
    info: ModelInfo
    loras: LoraCache
    preview: Callable[[Any], Any]  # latents -> a small PIL image (previews.py)
    # Its img2img and inpainting pipelines, made on first use from the same components.
    derived: dict[str, Any] = field(default_factory=dict)


class Runtime:
    def __init__(self, settings: EngineSettings, jobs: JobRecords | None = None) -> None:
        self.settings = settings
        blobs = open_store(settings.storage, settings.data_dir)
        self.store = UserStore(blobs, settings.data_dir / ".cache")
        self.worker = DeviceWorker(settings.queue_size, settings.user_queue_size)
        # What follows the device's work, in order: encoding and saving pictures, a job's
        # progress and end. Off the device thread, so the next request starts at once.
        self.after = ThreadPoolExecutor(max_workers=1, thread_name_prefix="after-device")
        self.jobs = JobLifecycle(jobs or JobStore(settings.data_dir / "jobs", settings.job_history))
        self.worker.on_dequeue = self._queue_moved
        self._queued: dict[str, Future[Any]] = {}  # job id -> its work, while it waits
        # Set when the engine is told to stop: running work ends at its next step.
        self.stopping = threading.Event()
        self.model: LoadedModel | None = None
        self.clip = clip_loader(settings.judge_model)  # the report card's judge (#28)
        # The captioner, the subject masker: loaded on first use (helper_models.py).
        self.helpers: dict[str, HelperModel] = {}
        self.reason: str | None = "loading model"
        self.gpu_note: str | None = None  # an NVIDIA GPU torch can't use, and why
        self.compile_s: float | None = None  # LORAMINT_COMPILE's warm-up, when on
        self.compile_error: str | None = None
        self._failed = False
        self.started = time.time()

    def helper(self, key: str, make: Callable[[], HelperModel]) -> HelperModel:
        """The helper model kept under `key`, made by `make` the first time."""
        if key not in self.helpers:
            self.helpers[key] = make()
        return self.helpers[key]

    def start(self) -> None:
        if self.settings.parent_pid:
            threading.Thread(target=self._watch_parent, daemon=True).start()
        self.worker.start()
        self.worker.submit(self._load, label="load model", background=True)

    def stop(self) -> None:
        self.stopping.set()
        self.worker.stop()
        self.after.shutdown(wait=True)  # pictures being saved are saved

    def begin_shutdown(self) -> None:
        """SIGTERM or the parent gone: the running generation or training step ends at its
        next step, and work still waiting is answered 503 shutting_down at once, so the
        engine exits within seconds rather than after the work."""
        if self.stopping.is_set():
            return
        log.info("stopping: waiting work is refused, running work ends at its next step")
        self.stopping.set()
        waiting = list(self._queued)
        self.worker.drain(lambda: ShuttingDown(STOPPING))
        for job_id in waiting:  # their work will never run: they say so now
            self.jobs.stop(job_id)

    def track(self, job_id: str, future: Future[Any]) -> None:
        """Follow a job's queued work: its queue position, and withdrawing it on cancel."""
        self._queued[job_id] = future
        self.jobs.progress(job_id, queue_position=self.worker.position(future))

    def _queue_moved(self) -> None:
        for job_id, future in list(self._queued.items()):
            position = self.worker.position(future)
            if position is None:  # it left the queue: it runs now, or was withdrawn
                self._queued.pop(job_id, None)
            if self.jobs.current(job_id).queue_position != position:
                self.jobs.progress(job_id, queue_position=position)

    def cancel_job(self, job_id: str, owner: str) -> Job:
        """Queued: taken out of the queue. Running: it stops at its next step."""
        job = self.jobs.cancel(job_id, owner)
        future = self._queued.pop(job_id, None)
        if future is not None:
            self.worker.withdraw(future)
        return job

    def _watch_parent(self) -> None:
        while psutil.pid_exists(self.settings.parent_pid or 0):
            time.sleep(1.0)
        log.warning("parent process %s is gone; shutting down", self.settings.parent_pid)
        self.begin_shutdown()
        os.kill(os.getpid(), signal.SIGTERM)

    def _load(self) -> None:
        # Imported here so that importing the web layer never pulls in torch.
        from engine.loras import LoraCache
        from engine.pipelines import limit_memory, load_model, own_settings
        from engine.previews import previewer_for

        s = self.settings
        try:
            pipe, info = load_model(s.model, s.device, s.model_config_dir, s.model_fallback)
        except ModelLoadError as exc:
            log.error("%s", exc.message)
            self._failed, self.reason = True, exc.message
            return
        if s.gpu_memory_fraction and info.device.startswith("cuda"):
            limit_memory(s.gpu_memory_fraction)
        preview = previewer_for(
            info.family, own_settings(info.model).get("preview"), s.preview_vae, pipe
        )
        self._make_the_most_of_the_card(pipe, info)
        self.model = LoadedModel(pipe, info, LoraCache(pipe, s.lora_cache_size), preview)
        self.reason = None
        log.info("model ready: %s (%s) on %s/%s", info.model, info.family, info.device, info.dtype)

    def _make_the_most_of_the_card(self, pipe: Any, info: ModelInfo) -> None:
        """LORAMINT_COMPILE's compile and warm-up; on the CPU, whether a GPU goes unused."""
        from engine.gpu import CompileFailed, compile_model, gpu_note

        s = self.settings
        if s.compile:
            d = info.defaults
            self.reason = "compiling the model (LORAMINT_COMPILE)"
            try:
                self.compile_s = compile_model(pipe, d.width, d.height, d.guidance_scale)
                log.info("compiled the UNet and VAE decoder in %.1f s", self.compile_s)
            except CompileFailed as exc:
                self.compile_error = f"LORAMINT_COMPILE failed, running uncompiled: {exc}"
                log.warning("%s", self.compile_error)
        if s.device == "auto" and info.device == "cpu":
            self.gpu_note = gpu_note()
            if self.gpu_note:
                log.warning("%s", self.gpu_note)

    @property
    def state(self) -> Health:
        if self._failed:
            return Health.ERROR
        if self.model is None:
            return Health.STARTING
        return Health.BUSY if self.worker.running else Health.READY

    def require_model(self) -> LoadedModel:
        if self._failed:
            raise ModelLoadError(self.reason or "model failed to load")
        if self.model is None:
            raise NotReady("the engine is still loading its model; retry shortly")
        return self.model

    def health(self) -> dict[str, Any]:
        info = self.model.info.as_dict() if self.model else {"model": self.settings.model}
        return {
            "status": self.state.value,
            "reason": self.reason if self.model is None else self.worker.running,
            **info,
            "queue_depth": self.worker.depth,
            "lora_cache": self.model.loras.stats() if self.model else None,
            **({"gpu_note": self.gpu_note} if self.gpu_note else {}),
            **({"compile_s": round(self.compile_s, 1)} if self.compile_s else {}),
            **({"compile_error": self.compile_error} if self.compile_error else {}),
            "uptime_s": round(time.time() - self.started, 1),
        }
