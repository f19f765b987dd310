"""The orchestrator's settings: `appsettings.json` (or the file `LORAMINT_SETTINGS` names),
overridden by `LORAMINT_*` environment variables with `__` for nesting
(`LORAMINT_ENGINE__BASEURL`, `LORAMINT_SERVER__PORT`). Field names follow the JSON file."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    JsonConfigSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from engine.contract.guards import is_loopback
from engine.contract.schemas import AppMode
from engine.contract.settings import QueueSettings, StorageSettings

HERE = Path(__file__).resolve().parent
DEFAULT_FILE = HERE / "appsettings.json"


class EngineSection(BaseModel):
    BaseUrl: str = Field("http://127.0.0.1:8000", description="Where the engine listens.")
    Path: str = Field(
        "../engine", description="The engine package folder (relative: to the settings file)."
    )
    AutoStart: bool = Field(
        True,
        description="Start and supervise the engine; false: connect "
        "to one already running at BaseUrl.",
    )
    AutoInstallDependencies: bool = Field(
        True, description="pip install requirements.txt into the engine venv when the file changed."
    )
    TorchIndex: str = Field(
        "auto",
        description="Which torch build the install puts in the engine venv: auto (PyTorch's "
        "CUDA build the NVIDIA driver runs when nvidia-smi answers, else PyPI's), pypi, cpu, "
        "a build tag such as cu128, or an index URL (orchestrator/torch_wheels.py).",
    )
    StartupTimeoutSeconds: float = Field(600, gt=0, description="How long to wait for ready.")
    VenvDir: str | None = Field(None, description="Engine venv; default: {Path}/.venv.")
    Requirements: str | None = Field(
        None,
        description="Default: requirements.txt beside the engine folder (requirements-scale.txt "
        "when Storage.Backend is azure or Queue.Mode celery: it adds their libraries).",
    )
    Python: str | None = Field(
        None, description="Python that creates the venv; default: the one running the orchestrator."
    )
    StopTimeoutSeconds: float = Field(10, gt=0, description="Grace before the kill.")
    MaxRestartDelaySeconds: float = Field(30, gt=0, description="Restart backoff cap.")
    RequestTimeoutSeconds: float = Field(600, gt=0, description="Longest forwarded request.")
    Token: SecretStr | None = Field(
        None,
        description="The engine's token (its LORAMINT_ENGINE_TOKEN). Default: a new random one "
        "at each start of a supervised engine; set it for an engine started elsewhere.",
    )


class ServerSection(BaseModel):
    Host: str = Field("127.0.0.1", description="Interface the web app binds to.")
    Port: int = Field(5001, ge=0, le=65535, description="Port the web app binds to.")
    AllowedHosts: list[str] | None = Field(
        None,
        description="Host names the web app answers to ('*' for any, '*.example.org' for "
        "subdomains); default: the loopback names and Host.",
    )
    CertFile: str | None = Field(
        None, description="TLS certificate (PEM) to serve HTTPS; with KeyFile."
    )
    KeyFile: str | None = Field(None, description="The certificate's private key (PEM).")
    TrustForwardedFor: bool = Field(
        False,
        description="Tell clients apart (sign-in limits, a preview's generations per client) by "
        "the address the proxy in front appends to X-Forwarded-For (a Hugging Face Space's "
        "does), not by the proxy's own address. Only behind such a proxy: anyone else can "
        "write that header. Off, both servers ignore forwarding headers altogether.",
    )
    PublishedHost: str | None = Field(
        None,
        description="Where the port is really reachable, when that differs from Host: in a "
        "container bound to 0.0.0.0 whose port is published on 127.0.0.1 only, 127.0.0.1. "
        "Auth.Mode none's loopback rule applies to it.",
    )


class AuthSection(BaseModel):
    Mode: Literal["none", "accounts"] = Field(
        "none",
        description="none: one user (DefaultUser), no login, served on loopback only. "
        "accounts: people log in, scripts send an API token; each acts as itself only.",
    )
    SessionDays: float = Field(7, gt=0, description="How long a browser login lasts.")
    MaxFailedLogins: int = Field(
        5,
        ge=1,
        description="Failed sign-ins allowed per user name from one client address within "
        "FailureWindowMinutes; more get 429 until the oldest failure is that old. Other "
        "addresses may still sign in as that user.",
    )
    MaxFailedLoginsPerUser: int = Field(
        50,
        ge=1,
        description="Failed sign-ins allowed per user name from all addresses together "
        "within FailureWindowMinutes: caps guessing spread over many addresses.",
    )
    MaxFailedLoginsPerClient: int = Field(
        20,
        ge=1,
        description="Failed sign-ins allowed per client address, whatever the names, within "
        "FailureWindowMinutes: caps one address trying many accounts.",
    )
    FailureWindowMinutes: float = Field(15, gt=0, description="See MaxFailedLogins.")


class PreviewSection(BaseModel):
    GenerationsPerMinute: int = Field(
        6, ge=1, description="Mode preview: generations one client may ask for per minute."
    )


class StorageSection(StorageSettings):
    DataDir: str = Field(
        "../data",
        description="The engine's data dir (relative: to the settings file): the users' files "
        "with Backend local; jobs, accounts and local copies of shared LoRAs with either.",
    )


class OrchestratorSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LORAMINT_", env_nested_delimiter="__", case_sensitive=False, extra="ignore"
    )

    Engine: EngineSection = Field(default_factory=EngineSection)  # type: ignore[arg-type]
    Server: ServerSection = Field(default_factory=ServerSection)  # type: ignore[arg-type]
    Storage: StorageSection = Field(default_factory=StorageSection)  # type: ignore[arg-type]
    Queue: QueueSettings = Field(
        default_factory=QueueSettings,  # type: ignore[arg-type]
        description="Mode celery: the engine child only dispatches (no model) and engine "
        "workers, started on their own (`python -m engine worker`), do the work.",
    )
    Auth: AuthSection = Field(default_factory=AuthSection)  # type: ignore[arg-type]
    Mode: AppMode = Field(
        "full",
        description="preview: a public demo (a Hugging Face Space) that only generates: images "
        "come back inline and nothing is stored; the other pages and routes are off (403 "
        "preview_mode); each client gets Preview.GenerationsPerMinute. The engine gets the "
        "same mode.",
    )
    Preview: PreviewSection = Field(default_factory=PreviewSection)  # type: ignore[arg-type]
    DefaultUser: str = Field(
        "local",
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="The user every request acts as in Auth.Mode none.",
    )
    Settings: str = Field(str(DEFAULT_FILE), description="The JSON settings file read.")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            JsonConfigSettingsSource(settings_cls, json_file=settings_file()),
        )

    def _path(self, value: str) -> Path:
        p = Path(value).expanduser()
        return p if p.is_absolute() else (Path(self.Settings).resolve().parent / p).resolve()

    @property
    def engine_dir(self) -> Path:
        return self._path(self.Engine.Path)

    @property
    def venv_dir(self) -> Path:
        return self._path(self.Engine.VenvDir) if self.Engine.VenvDir else self.engine_dir / ".venv"

    @property
    def requirements(self) -> Path:
        if self.Engine.Requirements:
            return self._path(self.Engine.Requirements)
        scale = self.Storage.Backend != "local" or self.Queue.Mode != "local"
        return self.engine_dir.parent / ("requirements-scale.txt" if scale else "requirements.txt")

    @property
    def data_dir(self) -> Path:
        return self._path(self.Storage.DataDir)

    @property
    def database(self) -> Path:
        """Accounts, sessions and API tokens (Auth.Mode accounts)."""
        return self.data_dir / "accounts.db"

    @property
    def tls(self) -> dict[str, str]:
        """uvicorn's HTTPS arguments: both files, or none for plain HTTP."""
        cert, key = self.Server.CertFile, self.Server.KeyFile
        if not cert or not key:
            return {}
        return {"ssl_certfile": str(self._path(cert)), "ssl_keyfile": str(self._path(key))}

    def serving_problem(self) -> str | None:
        """Why serving as configured would be unsafe or can't work, or None. Without logins
        the app may only be reachable from this machine."""
        if bool(self.Server.CertFile) != bool(self.Server.KeyFile):
            return "HTTPS needs both Server.CertFile and Server.KeyFile; one is missing."
        if self.Mode == "preview" and self.Auth.Mode == "accounts":
            return (
                "Mode preview serves everyone without accounts and keeps nothing, so it has no "
                "sign-in pages: set LORAMINT_AUTH__MODE=none, or LORAMINT_MODE=full for accounts."
            )
        if self.Queue.Mode == "celery" and not (self.Queue.Secret or self.Engine.Token):
            return (
                "Queue.Mode is celery, whose workers run only tasks signed with a secret they "
                "share with the engine: set LORAMINT_QUEUE__SECRET, here and for every worker."
            )
        reachable = self.Server.PublishedHost or self.Server.Host
        # A preview keeps nothing of anyone's, so it may face the world without logins.
        if self.Auth.Mode == "none" and self.Mode == "full" and not is_loopback(reachable):
            return (
                f"Auth.Mode is none (no login: everyone acts as {self.DefaultUser!r}), but the "
                f"server would be reachable at {reachable}, beyond this machine. Fix: set "
                "LORAMINT_AUTH__MODE=accounts and add users (python -m orchestrator users add "
                "NAME --admin), or bind LORAMINT_SERVER__HOST=127.0.0.1."
            )
        return None

    def urls(self) -> list[str]:
        """Where a person can open the app: each allowed host name with the port, and
        127.0.0.1 when that is served too (a wildcard or loopback bind)."""
        scheme = "https" if self.tls else "http"
        bound = self.Server.PublishedHost or self.Server.Host
        names = [h for h in self.Server.AllowedHosts or () if h and not h.startswith("*")]
        if bound in ("0.0.0.0", "::", "") or is_loopback(bound):
            names.append("127.0.0.1")
        else:
            names.append(bound)
        port = self.Server.Port
        shown = [f"[{n}]" if ":" in n else n for n in dict.fromkeys(names)]
        return [f"{scheme}://{n}:{port}" for n in shown]

    @property
    def engine_host_port(self) -> tuple[str, int]:
        url = urlsplit(self.Engine.BaseUrl)
        return url.hostname or "127.0.0.1", url.port or 80


def settings_file() -> Path:
    """The JSON file to read; the sources must know it before the fields are parsed."""
    return Path(os.environ.get("LORAMINT_SETTINGS", str(DEFAULT_FILE)))


@lru_cache
def get_settings() -> OrchestratorSettings:
    return OrchestratorSettings(Settings=str(settings_file()))
