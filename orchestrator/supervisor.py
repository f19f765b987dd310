"""Runs the engine as a supervised child process.

Prepares its venv (created if missing; `requirements.txt` installed when its hash changed),
starts `python -m engine` in its own session / process group, waits for `/health`, restarts it
with backoff when it dies, and on shutdown stops it gracefully before killing its whole process
tree (POSIX: killpg; Windows: CTRL_BREAK_EVENT, then taskkill /T /F). Commands are argv lists,
never a shell; the Popen factory and the clock are injectable for tests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import hashlib
import logging
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from orchestrator import torch_wheels
from orchestrator.client import engine_http
from orchestrator.config import OrchestratorSettings
from orchestrator.processes import ask_to_stop, own_group, port_in_use, stop_tree, venv_python

log = logging.getLogger("loramint.supervisor")
engine_log = logging.getLogger("loramint.engine")
Popen = Callable[..., subprocess.Popen]


class EngineState(str, enum.Enum):
    PREPARING = "preparing"
    STARTING = "starting"
    READY = "ready"
    RESTARTING = "restarting"
    ERROR = "error"
    STOPPED = "stopped"


class SupervisorError(Exception):
    """Something the person must fix; the message says what."""


def requirements_hash(path: Path) -> str:
    """sha256 over the file and the files it pulls in with `-r` (as setup-python.sh does)."""
    text = path.read_bytes()
    extra = [
        path.parent / line[3:].strip()
        for line in text.decode().splitlines()
        if line.startswith("-r ")
    ]
    return hashlib.sha256(text + b"".join(p.read_bytes() for p in extra)).hexdigest()


class EngineSupervisor:
    def __init__(
        self,
        settings: OrchestratorSettings,
        *,
        popen: Popen = subprocess.Popen,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.s = settings
        self.popen = popen
        self.clock = clock
        self.state = EngineState.STOPPED
        self.reason: str | None = None
        self.proc: subprocess.Popen | None = None
        self.restarts = 0
        self.engine_health: dict[str, Any] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=60)
        self._stopping = False
        configured = settings.Engine.Token
        # The engine's token: the configured one, else a new one at each start (_spawn).
        self.token: str | None = configured.get_secret_value() if configured else None
        self._http = engine_http(settings.Engine.BaseUrl, lambda: self.token, timeout=5)

    # -- reporting -----------------------------------------------------------------------
    def _set(self, state: EngineState, reason: str | None = None) -> None:
        if (state, reason) != (self.state, self.reason):
            (log.error if state == EngineState.ERROR else log.info)(
                "engine %s%s", state.value, f": {reason}" if reason else ""
            )
        self.state, self.reason = state, reason

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state.value,
            "reason": self.reason,
            "pid": self.proc.pid if self.proc and self.proc.poll() is None else None,
            "restarts": self.restarts,
            "auto_start": self.s.Engine.AutoStart,
            "base_url": self.s.Engine.BaseUrl,
            "health": self.engine_health,
        }

    # -- preparing the environment -------------------------------------------------------
    def _run(self, argv: list[str], what: str) -> None:
        log.info("%s: %s", what, " ".join(argv))
        proc = self.popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.info("[%s] %s", what, line.rstrip())
        if proc.wait() != 0:
            raise SupervisorError(f"{what} failed (exit {proc.returncode}); see the log above")

    def prepare(self) -> None:
        """Steps 1-3: a usable Python, the venv, and the requirements when they changed."""
        self._set(EngineState.PREPARING, "checking the engine's Python environment")
        venv, py = self.s.venv_dir, venv_python(self.s.venv_dir)
        if not py.exists():
            base = self.s.Engine.Python or sys.executable
            self._run(
                [base, "-c", "import sys; sys.exit(sys.version_info < (3, 10))"], "python check"
            )
            self._set(EngineState.PREPARING, f"creating the engine venv {venv}")
            self._run([base, "-m", "venv", str(venv)], "venv")
        if not self.s.Engine.AutoInstallDependencies:
            return
        req = self.s.requirements
        if not req.is_file():
            raise SupervisorError(f"requirements file {req} not found (Engine.Requirements)")
        stamp, digest = venv / ".requirements.sha256", requirements_hash(req)
        if stamp.exists() and stamp.read_text().strip() == digest:
            log.info("%s unchanged since the last install; skipping pip", req)
            return
        self._set(EngineState.PREPARING, f"installing {req.name} (first start takes a while)")
        self._install_torch(py, req)
        self._run(
            [str(py), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(req)], "pip"
        )
        stamp.write_text(digest + "\n")

    def _install_torch(self, py: Path, req: Path) -> None:
        """The torch build for this machine's GPU first, when PyPI's is not it."""
        planned = torch_wheels.plan_install(str(py), req, self.s.Engine.TorchIndex)
        if planned is None:
            return
        choice, argv = planned
        log.info("torch: %s", choice.why)
        if argv is not None:
            self._set(EngineState.PREPARING, f"installing torch ({choice.build} build)")
            self._run(argv, "pip torch")

    # -- the child process ---------------------------------------------------------------
    def _spawn(self) -> None:
        if self.s.Engine.Token is None:
            self.token = secrets.token_urlsafe(32)
        host, port = self.s.engine_host_port
        if port_in_use(host, port):
            raise SupervisorError(
                f"port {port} on {host} is already in use by another program, so the engine "
                f"can't listen there; stop that program or set LORAMINT_ENGINE__BASEURL to a "
                f"free port"
            )
        env = {
            **os.environ,
            "LORAMINT_ENGINE_HOST": host,
            "LORAMINT_ENGINE_PORT": str(port),
            "LORAMINT_DATA_DIR": str(self.s.data_dir),
            **self.s.Storage.environment(),
            **self.s.Queue.environment(),
            "LORAMINT_DEFAULT_USER": self.s.DefaultUser,
            "LORAMINT_MODE": self.s.Mode,
            "LORAMINT_ENGINE_TOKEN": self.token,
            "LORAMINT_PARENT_PID": str(os.getpid()),
            "LORAMINT_ACCESS_LOG": "false",
            "PYTHONUNBUFFERED": "1",
        }
        self.proc = self.popen(
            [str(venv_python(self.s.venv_dir)), "-m", "engine"],
            cwd=str(self.s.engine_dir.parent),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **own_group(),
        )
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        log.info("engine started, pid %s", self.proc.pid)

    def _pump(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.tail.append(line.rstrip())
            engine_log.info("%s", line.rstrip())

    def _last_lines(self, n: int = 15) -> str:
        return "\n".join(list(self.tail)[-n:]) or "(no output)"

    async def _poll_health(self) -> dict[str, Any] | None:
        try:
            r = await self._http.get("/health")
            self.engine_health = r.json() if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            self.engine_health = None
        return self.engine_health

    def _apply_health(self, health: dict[str, Any]) -> None:
        if health.get("status") == "error":
            self._set(EngineState.ERROR, health.get("reason") or "the engine reported an error")
        elif health.get("status") in ("ready", "busy"):
            self._set(EngineState.READY)
        else:
            self._set(EngineState.STARTING, health.get("reason") or "loading the model")

    async def _wait_ready(self) -> None:
        deadline = self.clock() + self.s.Engine.StartupTimeoutSeconds
        while self.clock() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                code = self.proc.returncode if self.proc else None
                raise SupervisorError(
                    f"the engine exited during start-up (code {code}); its "
                    f"last lines:\n{self._last_lines()}"
                )
            health = await self._poll_health()
            if health:
                self._apply_health(health)
                if health.get("status") != "starting":
                    return
            await asyncio.sleep(0.25)
        self.terminate()
        raise SupervisorError(
            f"the engine was not ready after {self.s.Engine.StartupTimeoutSeconds:.0f} s "
            f"(Engine.StartupTimeoutSeconds); its last lines:\n{self._last_lines()}"
        )

    async def _watch(self) -> None:
        """Until the child exits: keep its health current."""
        while self.proc is not None and self.proc.poll() is None and not self._stopping:
            health = await self._poll_health()
            if health:
                self._apply_health(health)
            await asyncio.sleep(1.0)

    async def run(self) -> None:
        """The lifespan task: prepare, start, and keep the engine alive until stop()."""
        if not self.s.Engine.AutoStart:
            await self._watch_external()
            return
        try:
            await asyncio.to_thread(self.prepare)
        except SupervisorError as exc:
            self._set(EngineState.ERROR, str(exc))
            return
        delay = 1.0
        while not self._stopping:
            started = self.clock()
            try:
                self._set(EngineState.STARTING, "starting the engine")
                self._spawn()
                await self._wait_ready()
                await self._watch()
            except SupervisorError as exc:
                self._set(EngineState.ERROR, str(exc))
            if self._stopping:
                break
            if self.proc is not None and self.proc.poll() is not None:
                log.warning(
                    "engine exited with code %s; last lines:\n%s",
                    self.proc.returncode,
                    self._last_lines(),
                )
            if self.clock() - started > 60:
                delay = 1.0  # it ran a good while: this is a new failure, not a crash loop
            self.restarts += 1
            if self.state != EngineState.ERROR:
                self._set(EngineState.RESTARTING, f"the engine stopped; restarting in {delay:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.s.Engine.MaxRestartDelaySeconds)

    async def _watch_external(self) -> None:
        while not self._stopping:
            health = await self._poll_health()
            if health:
                self._apply_health(health)
            else:
                self._set(
                    EngineState.ERROR,
                    f"no engine answers at {self.s.Engine.BaseUrl} (AutoStart is off)",
                )
            await asyncio.sleep(1.0)

    # -- stopping ------------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        """The orchestrator was told to stop: the engine is told at once, so it answers the
        requests waiting on it (503 shutting_down) while our server waits for them, and is
        not restarted."""
        self._stopping = True
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                ask_to_stop(self.proc)

    def terminate(self) -> None:
        if self.proc is not None:
            stop_tree(self.proc, self.s.Engine.StopTimeoutSeconds)

    async def stop(self) -> None:
        self._stopping = True
        await asyncio.to_thread(self.terminate)
        await self._http.aclose()
        self._set(EngineState.STOPPED)
