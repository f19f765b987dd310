"""The engine's settings: one class, read from `LORAMINT_*` environment variables; sections
shared with the orchestrator nest with `__` (`LORAMINT_STORAGE__BACKEND`)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from engine.contract.guards import is_loopback
from engine.contract.schemas import MAX_IMAGES, MAX_SIDE, MAX_STEPS, AppMode
from engine.contract.settings import QueueSettings, StorageSettings

# "cuda:1": one card of several (a celery worker per GPU); CUDA_VISIBLE_DEVICES works as well.
DeviceChoice = Annotated[str, Field(pattern=r"^(auto|cpu|mps|cuda(:\d+)?)$")]


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORAMINT_", env_nested_delimiter="__", extra="ignore", protected_namespaces=()
    )

    mode: AppMode = Field(
        "full",
        description="preview: generation only, for a public demo (a Hugging Face Space): "
        "images come back inline and nothing is stored; training, LoRAs, galleries and jobs "
        "answer 403 preview_mode.",
    )
    model: str = Field(
        "auto",
        description="auto (SDXL-Turbo on CUDA, else SD-Turbo), builtin:demo, a Hub id, a local "
        "diffusers folder, or a single-file .safetensors checkpoint.",
    )
    model_fallback: bool = Field(
        True, description="Use the built-in demo model when the model can't be had."
    )
    model_config_dir: str | None = Field(
        None,
        description="Diffusers folder or Hub id holding the configs a single-file checkpoint "
        "needs when offline (passed to from_single_file(config=...)).",
    )
    data_dir: Path = Field(
        Path("data"),
        description="Root holding loras/{userId}/ and outputs/{userId}/ (local storage), jobs, "
        "and local copies of shared LoRAs (.cache/).",
    )
    storage: StorageSettings = Field(
        default_factory=StorageSettings,  # type: ignore[arg-type]
        description="Where LoRAs and images live (LORAMINT_STORAGE__BACKEND local or azure); "
        "the same section as the orchestrator's Storage.",
    )
    queue: QueueSettings = Field(
        default_factory=QueueSettings,  # type: ignore[arg-type]
        description="local: this engine does the work. celery: `python -m engine` serves the "
        "API and enqueues (no model), `python -m engine worker` processes do the work; the "
        "same section as the orchestrator's Queue.",
    )
    worker_slots: int = Field(
        4,
        ge=2,
        description="Celery mode: tasks one worker takes at once. One may be a training (at "
        "most one); generations run between its steps.",
    )
    worker_name: str | None = Field(
        None, description="Celery mode: this worker's name in /health (default: host:pid)."
    )
    engine_host: str = Field("127.0.0.1", description="Interface the engine binds to.")
    engine_port: int = Field(8000, ge=0, le=65535, description="Port the engine binds to.")
    engine_token: SecretStr | None = Field(
        None,
        description="When set, every request but GET /livez must carry it in the "
        "X-LoraMint-Engine-Token header. The orchestrator sets a new one at each start; a "
        "standalone engine bound beyond loopback must have one.",
    )
    allowed_hosts: Annotated[list[str] | None, NoDecode] = Field(
        None,
        description="Host names the engine answers to, comma-separated ('*' for any); "
        "default: the loopback names and engine_host.",
    )
    device: DeviceChoice = Field(
        "auto", description="auto picks cuda > mps > cpu; cuda:N picks one card of several."
    )
    default_user: str = Field("local", description="User id used when a request names none.")
    queue_size: int = Field(
        8, ge=1, description="Requests that may wait for the device; more get HTTP 429."
    )
    user_queue_size: int = Field(
        4,
        ge=1,
        description="Requests one user may have waiting for the device (429 beyond), so one "
        "user can't fill the queue for everyone.",
    )
    user_training_jobs: int = Field(
        1, ge=1, description="Training jobs one user may have queued or running at once."
    )
    user_quota_mb: float | None = Field(
        None,
        gt=0,
        description="Storage one user may keep (images and LoRAs), in MB; beyond it new images, "
        "uploads and training get 413 quota_exceeded. None: no quota.",
    )
    gpu_memory_fraction: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Share of the GPU's memory this engine may use, so several engines can "
        "share one card; work that needs more fails with 503 out_of_memory and the next "
        "request runs. None: all of it.",
    )
    lora_cache_size: int = Field(
        8, ge=1, description="LoRA adapters kept loaded; least recently used are unloaded."
    )
    # The contract's limits are the most any server allows; these can only lower them.
    max_steps: int = Field(
        MAX_STEPS, ge=1, le=MAX_STEPS, description="Largest steps value a request may ask for."
    )
    max_side: int = Field(
        MAX_SIDE, ge=64, le=MAX_SIDE, description="Largest width or height in pixels."
    )
    max_images: int = Field(
        MAX_IMAGES, ge=1, le=MAX_IMAGES, description="Largest num_images per request."
    )
    max_size_ratio: float = Field(
        2.0,
        ge=1.0,
        description="Widths and heights above this many times the model's native size are "
        "refused (a 64 px model asked for 512 px draws noise, slowly); raise it to allow them.",
    )
    compile: bool = Field(
        False,
        description="torch.compile the UNet and the VAE decoder at start (a warm-up draw "
        "pays for compiling before the first request). Fused LoRA stacks keep the compiled "
        "code; the first LoRA loaded recompiles once; DoRA stacks and training run uncompiled. "
        "Off by default: its gain on a card is measured by bench/gpu.py (docs/performance.md).",
    )
    preview_vae: str | None = Field(
        None,
        description="A tiny autoencoder (TAESD for SD 1.x/2.x, TAESDXL for SDXL) for live "
        "previews: a local folder, or a Hub id already in the cache. Default: a linear "
        "latent-to-RGB approximation.",
    )
    caption_model: str = Field(
        "florence-community/Florence-2-base",
        description="Captioner for POST /caption (a transformers image-to-text model: Hub id "
        "or folder; Florence-2 in transformers' own format, or BLIP and its kind), loaded on "
        "first use. The demo model always uses its built-in reader.",
    )
    caption_fallback_model: str | None = Field(
        "Salesforce/blip-image-captioning-base",
        description="Tried when caption_model can't be loaded (not cached on an offline "
        "machine, too new a format); empty: none.",
    )
    caption_detail: Literal["detailed", "short"] = Field(
        "detailed",
        description="Florence-2's caption mode: detailed (a sentence or two: colours, "
        "background, pose) or short (one phrase). Other captioners write one phrase.",
    )
    mask_model: str = Field(
        "nvidia/segformer-b0-finetuned-ade-512-512",
        description="Subject masker for POST /subject-masks (a transformers image-segmentation "
        "model: Hub id or folder), loaded on first use; everything it finds that is not a kind "
        "of background is the subject. The demo model always uses its built-in reader.",
    )
    judge_model: str = Field(
        "openai/clip-vit-base-patch32",
        description="CLIP model that reads a training's pictures for its report card (Hub id "
        "or folder), loaded on first use. Offline and not cached: the card says scores are "
        "unavailable. The demo model always uses its built-in reader.",
    )
    job_history: int = Field(
        100, ge=1, description="Finished jobs kept per user; older ones are forgotten."
    )
    log_level: str = Field("info", description="Log level for the engine's logger and uvicorn.")
    access_log: bool = Field(
        True, description="Log every request (the orchestrator turns it off: it logs them)."
    )
    parent_pid: int | None = Field(
        None,
        description="Exit when this process is gone (set by the orchestrator), so a "
        "killed orchestrator never leaves an orphaned engine.",
    )

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _comma_separated(cls, v: object) -> object:
        return [h.strip() for h in v.split(",") if h.strip()] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _preview_is_one_container(self) -> EngineSettings:
        if self.mode == "preview" and self.queue.Mode == "celery":
            raise ValueError(
                "preview mode runs in one container and keeps no jobs: set "
                "LORAMINT_QUEUE__MODE=local (or leave it unset) with LORAMINT_MODE=preview"
            )
        return self

    @model_validator(mode="after")
    def _tasks_are_signed(self) -> EngineSettings:
        if self.queue.Mode == "celery" and self.queue_secret is None:
            raise ValueError(
                "celery mode signs every task with a secret the dispatcher and its workers "
                "share: set LORAMINT_QUEUE__SECRET (the same on every one of them)"
            )
        return self

    @property
    def queue_secret(self) -> str | None:
        """What signs the tasks (celery mode): the queue's secret, else the engine token."""
        for secret in (self.queue.Secret, self.engine_token):
            if secret is not None and secret.get_secret_value():  # compose passes "" unset
                return secret.get_secret_value()
        return None

    @model_validator(mode="after")
    def _not_a_side_door(self) -> EngineSettings:
        if not is_loopback(self.engine_host) and self.engine_token is None:
            raise ValueError(
                f"the engine would listen on {self.engine_host}, beyond this machine, with no "
                "token: any program that reaches it could act as any user. Set "
                "LORAMINT_ENGINE_TOKEN (the orchestrator's Engine.Token), or bind 127.0.0.1."
            )
        return self


@lru_cache
def get_settings() -> EngineSettings:
    return EngineSettings()
