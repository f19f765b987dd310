"""Where the engine's work runs: the one interface, two backends (`local.py`: this process's
device; `engine.queue.dispatch`: Celery workers), picked once by `engine.work.open_queue`.

Routes and the front talk to a `WorkQueue` only; no other code asks which mode it is in."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from PIL import Image

from engine.config import EngineSettings
from engine.contract.generation import GenerateRequest, GenerateResponse
from engine.contract.jobs import Job
from engine.contract.records import TrainingRecord
from engine.contract.schemas import Captions, SubjectMasks
from engine.lifecycle import JobLifecycle
from engine.storage import UserStore

Gone = Callable[[], Awaitable[bool]]  # whether the client that waits has hung up


class WorkQueue(ABC):
    settings: EngineSettings
    store: UserStore
    jobs: JobLifecycle

    def install(self, app: FastAPI) -> None:  # noqa: B027 - most backends add nothing
        """Anything the backend adds to the app (error handlers for its own failures)."""

    def bind_loop(self, loop: Any) -> None:
        """The event loop that job events are delivered on."""
        self.jobs.records.bind_loop(loop)

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None: ...

    @abstractmethod
    def begin_shutdown(self) -> None:
        """Told to stop: waiting work is answered 503 shutting_down (or handed back), running
        work ends at its next step."""

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """`GET /health`: status (starting/waiting/ready/busy/error) with its reason, the
        model, and the queue."""

    @abstractmethod
    async def generate(self, user: str, req: GenerateRequest, gone: Gone) -> GenerateResponse:
        """The images, once made; stopped (and nothing saved) if `gone()` turns true."""

    @abstractmethod
    def start_generation(self, user: str, req: GenerateRequest) -> Job:
        """A generation job, queued."""

    @abstractmethod
    def start_training(self, user: str, record: TrainingRecord, **fields: Any) -> Job:
        """A training job, queued, for the front's checked request: its images are kept in
        the store already (`training.files`); `fields` go in the job (`resumed_from`, the
        checkpoints it inherits)."""

    @abstractmethod
    async def draw_checkpoint(
        self, user: str, file: str, strength: float, prompt: str, seed: int, gone: Gone
    ) -> str:
        """A kept checkpoint (`file`, in the store's jobs area) at `strength`: `prompt` at
        `seed` as the report card draws it, as a PNG data URL."""

    @abstractmethod
    async def caption(self, user: str, images: list[Image.Image], trigger: str | None) -> Captions:
        """One caption per image, with the trigger word."""

    @abstractmethod
    async def subject_masks(self, user: str, images: list[Image.Image]) -> SubjectMasks:
        """One mask per image, white over its subject (subject.py)."""

    @abstractmethod
    def cancel(self, job_id: str, owner: str) -> Job:
        """Queued: it leaves the queue. Running: it stops at its next step."""
