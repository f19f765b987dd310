"""Real LoraMint processes (`python -m engine`, `python -m orchestrator`) for tests and
benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from engine.contract.schemas import ENGINE_TOKEN_HEADER

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace: float) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; waits until it is gone."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ServiceProcess:
    module = ""

    headers: dict[str, str] = {}  # sent by health() and client()

    def __init__(self, log_path: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        # Tests never download: a model that isn't here fails at once instead of after the
        # network's timeouts.
        self.env = {"HF_HUB_OFFLINE": "1", **os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def health(self) -> dict[str, Any]:
        return httpx.get(self.url + "/health", headers=self.headers, timeout=2).json()

    def start(self, until: Callable[[dict[str, Any]], bool], timeout: float = 180) -> Any:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", self.module], cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        try:
            self.wait(until, timeout)
        except BaseException:  # a test whose start failed never reaches its own stop()
            self.stop()
            raise
        return self

    def wait(self, until: Callable[[dict[str, Any]], bool], timeout: float = 180) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited early:\n{self.log_tail()}")
            try:
                health = self.health()
                if until(health):
                    return health
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.2)
        raise TimeoutError(f"{self.module} not as expected after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc, grace=20)

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=timeout)


class EngineProcess(ServiceProcess):
    module = "engine"

    def __init__(self, model: str, data_dir: Path, log_path: Path, **env: str) -> None:
        super().__init__(log_path, {})
        self.data_dir = data_dir
        self.env.update(
            {
                "LORAMINT_MODEL": model,
                "LORAMINT_DATA_DIR": str(data_dir),
                "LORAMINT_ENGINE_PORT": str(self.port),
                "LORAMINT_DEVICE": "cpu",
                **env,
            }
        )
        if token := self.env.get("LORAMINT_ENGINE_TOKEN"):
            self.headers = {ENGINE_TOKEN_HEADER: token}

    def start(self, wait_for: str = "ready", timeout: float = 180) -> EngineProcess:  # type: ignore[override]
        return super().start(lambda h: h["status"] == wait_for, timeout)


class OrchestratorProcess(ServiceProcess):
    """The app as `./start.sh` runs it, its engine using this checkout's .venv. The engine's
    token is fixed (not random) so that tests can also talk to the engine directly."""

    module = "orchestrator"
    engine_token = "test-engine-token"

    def __init__(
        self, model: str, workdir: Path, engine_port: int | None = None, **env: str
    ) -> None:
        super().__init__(workdir / "orchestrator.log", {})
        self.engine_port = engine_port or free_port()
        self.data_dir = workdir / "data"
        self.env.update(
            {
                "LORAMINT_MODEL": model,
                "LORAMINT_DEVICE": "cpu",
                "LORAMINT_SERVER__PORT": str(self.port),
                "LORAMINT_ENGINE__BASEURL": f"http://127.0.0.1:{self.engine_port}",
                "LORAMINT_ENGINE__VENVDIR": str(Path(sys.executable).parents[1]),
                "LORAMINT_ENGINE__AUTOINSTALLDEPENDENCIES": "false",
                "LORAMINT_STORAGE__DATADIR": str(self.data_dir),
                "LORAMINT_ENGINE__TOKEN": self.engine_token,
                **env,
            }
        )

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """`python -m orchestrator ARGS` with this app's settings (the accounts commands)."""
        return subprocess.run(
            [sys.executable, "-m", "orchestrator", *args],
            cwd=ROOT,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def engine_client(self, timeout: float = 60) -> httpx.Client:
        """Straight to its engine, as the orchestrator talks to it."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.engine_port}",
            headers={ENGINE_TOKEN_HEADER: self.engine_token},
            timeout=timeout,
        )

    def start_ready(self, timeout: float = 180) -> OrchestratorProcess:
        return super().start(lambda h: h["engine"]["state"] == "ready", timeout)


TEAM = {"alice": "alice-password", "bob": "bob-password"}  # alice is an admin


def team_app(model: str, workdir: Path, **env: str) -> OrchestratorProcess:
    """An app in Auth.Mode accounts whose users are alice (admin) and bob; not started yet."""
    proc = OrchestratorProcess(model, workdir, LORAMINT_AUTH__MODE="accounts", **env)
    for name, admin in (("alice", ["--admin"]), ("bob", [])):
        added = proc.cli("users", "add", name, *admin, stdin=TEAM[name] + "\n")
        assert added.returncode == 0, added.stderr
    return proc


QUEUE_SECRET = "test-queue-secret"  # what signs a test cluster's tasks


class QueueWorker:
    """`python -m engine worker` (celery mode) on the model and store given; it is ready once
    its dispatcher's /health lists it by `name`."""

    def __init__(self, name: str, model: str, data_dir: Path, log_path: Path, **env: str) -> None:
        self.name = name
        self.log_path = log_path
        self.env = {
            "HF_HUB_OFFLINE": "1",
            **os.environ,
            "LORAMINT_MODEL": model,
            "LORAMINT_DATA_DIR": str(data_dir),
            "LORAMINT_DEVICE": "cpu",
            "LORAMINT_WORKER_NAME": name,
            "LORAMINT_QUEUE__MODE": "celery",
            **env,
        }
        log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "engine", "worker"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def succeeded(self, task: str) -> int:
        """How many `task` tasks this worker finished (Celery logs each)."""
        return sum(
            1 for line in self.log().splitlines() if f"{task}[" in line and "succeeded" in line
        )

    def stop(self) -> None:
        stop_process(self.proc, grace=20)


class QueueCluster:
    """A dispatcher (`python -m engine` in celery mode) and `workers` workers on one model and
    one data dir, as they would share a mounted disk."""

    def __init__(
        self, model: str, redis_url: str, work: Path, workers: int = 2, **env: str
    ) -> None:
        self.model, self.work = model, work
        self.env = {
            "LORAMINT_QUEUE__BROKERURL": redis_url,
            "LORAMINT_QUEUE__SECRET": QUEUE_SECRET,
            **env,
        }
        self.dispatcher = EngineProcess(
            model, work / "data", work / "dispatcher.log", LORAMINT_QUEUE__MODE="celery", **self.env
        ).start(wait_for="waiting")
        self.workers: dict[str, QueueWorker] = {}
        self.count = 0
        try:
            for _ in range(workers):
                self.add_worker()
        except BaseException:  # a start that failed leaves nothing running
            self.stop()
            raise

    def add_worker(self) -> QueueWorker:
        self.count += 1
        name = f"w{self.count}"
        w = QueueWorker(name, self.model, self.work / "data", self.work / f"{name}.log", **self.env)
        self.workers[name] = w
        try:
            self.dispatcher.wait(lambda h: name in [c["name"] for c in h["workers"]], 120)
        except BaseException:
            w.stop()
            raise
        return w

    def running(self, label: str) -> dict:
        """The card of the worker running `label` now (waits for one)."""
        found = self.dispatcher.wait(lambda h: any(c["running"] == label for c in h["workers"]), 60)
        return next(c for c in found["workers"] if c["running"] == label)

    def stop(self) -> None:
        for w in self.workers.values():
            w.stop()
        self.dispatcher.stop()
