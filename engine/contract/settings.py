"""Settings sections the orchestrator and the engine both read, under the same environment
names (`LORAMINT_STORAGE__BACKEND`, `LORAMINT_STORAGE__AZURE__CONNECTIONSTRING`...), so one
environment serves every process. Field names follow the orchestrator's JSON file; the
environment names match them whatever their case."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator


class AzureStorage(BaseModel):
    ConnectionString: SecretStr | None = Field(
        None,
        description="The storage account's connection string (Azurite's for trying it "
        "locally). Needed when Backend is azure.",
    )
    Container: str = Field(
        "loramint",
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
        description="The blob container; made on first use if it doesn't exist.",
    )


class StorageSettings(BaseModel):
    Backend: Literal["local", "azure"] = Field(
        "local",
        description="Where LoRAs and images live. local: the data dir on this machine's (or a "
        "mounted) disk. azure: an Azure Blob Storage container every engine worker shares; "
        "each worker keeps local copies of the LoRAs it uses, fetched again only when changed.",
    )
    Azure: AzureStorage = Field(default_factory=AzureStorage)  # type: ignore[arg-type]

    @model_validator(mode="after")
    def _azure_needs_an_account(self) -> StorageSettings:
        if self.Backend == "azure" and self.Azure.ConnectionString is None:
            raise ValueError(
                "Storage.Backend is azure but no connection string is set: set "
                "LORAMINT_STORAGE__AZURE__CONNECTIONSTRING, or LORAMINT_STORAGE__BACKEND=local"
            )
        return self

    def environment(self) -> dict[str, str]:
        """This section as the environment variables another process reads it from."""
        secret = self.Azure.ConnectionString
        return {
            "LORAMINT_STORAGE__BACKEND": self.Backend,
            "LORAMINT_STORAGE__AZURE__CONTAINER": self.Azure.Container,
            **(
                {"LORAMINT_STORAGE__AZURE__CONNECTIONSTRING": secret.get_secret_value()}
                if secret
                else {}
            ),
        }


class QueueSettings(BaseModel):
    Mode: Literal["local", "celery"] = Field(
        "local",
        description="local: the orchestrator's one engine child does all the work. celery: "
        "engine workers (`python -m engine worker`, one per GPU, on any machine) take "
        "generations and trainings from a Redis queue; job records live in Redis too.",
    )
    BrokerUrl: str = Field(
        "redis://127.0.0.1:6379/0",
        pattern=r"^rediss?://",
        description="Redis URL: Celery's broker and result backend, and the job records.",
    )
    VisibilitySeconds: float = Field(
        30.0,
        gt=0,
        description="How long a task taken by a worker that then vanished (killed, machine "
        "gone) waits before Redis hands it to another worker.",
    )

    Secret: SecretStr | None = Field(
        None,
        description="Celery mode: the secret that signs every task, the same for the "
        "dispatcher and every worker; workers refuse tasks it did not sign. Default: the "
        "engine token (LORAMINT_ENGINE_TOKEN), when that is fixed and shared.",
    )

    def environment(self) -> dict[str, str]:
        """This section as the environment variables another process reads it from."""
        secret = self.Secret
        return {
            "LORAMINT_QUEUE__MODE": self.Mode,
            "LORAMINT_QUEUE__BROKERURL": self.BrokerUrl,
            "LORAMINT_QUEUE__VISIBILITYSECONDS": str(self.VisibilitySeconds),
            **({"LORAMINT_QUEUE__SECRET": secret.get_secret_value()} if secret else {}),
        }
