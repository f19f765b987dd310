"""The engine supervisor: venv + install stamp, start, restart after kill -9, clean shutdown,
and a clear error when the engine's port is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from orchestrator.config import OrchestratorSettings
from orchestrator.processes import venv_python
from orchestrator.supervisor import EngineSupervisor
from tests.engine_process import OrchestratorProcess, free_port
from tests.helpers import assert_error, png_bytes


class RecordingPopen:
    """The real Popen, remembering each argv (the seam the supervisor offers tests)."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, argv, **kwargs):
        self.calls.append(list(argv))
        return subprocess.Popen(argv, **kwargs)

    def pip_runs(self) -> int:
        return sum(1 for argv in self.calls if argv[1:3] == ["-m", "pip"])


def test_creates_the_venv_installs_once_and_skips_when_unchanged(tmp_path):
    req = tmp_path / "requirements.txt"
    req.write_text("# nothing to install yet\n")
    settings = OrchestratorSettings(
        Engine={
            "VenvDir": str(tmp_path / "venv"),
            "Requirements": str(req),
            "Python": sys.executable,
        }
    )
    popen = RecordingPopen()
    sup = EngineSupervisor(settings, popen=popen)
    sup.prepare()
    assert venv_python(tmp_path / "venv").exists()
    assert popen.pip_runs() == 1
    assert (tmp_path / "venv/.requirements.sha256").exists()
    sup.prepare()
    assert popen.pip_runs() == 1, "unchanged requirements must not run pip again"
    req.write_text("# changed\n")
    sup.prepare()
    assert popen.pip_runs() == 2


@pytest.fixture(scope="module")
def app(tiny_models, tmp_path_factory):
    proc = OrchestratorProcess(str(tiny_models["sd"].folder), tmp_path_factory.mktemp("orch"))
    proc.start_ready()
    yield proc
    proc.stop()


def test_starts_the_engine_and_waits_for_ready(app):
    engine = app.health()["engine"]
    assert engine["state"] == "ready" and engine["pid"]
    assert engine["health"]["family"] == "sd"


@pytest.mark.slow
def test_killed_engine_is_restarted_and_serves_again(app):
    before = app.health()["engine"]
    os.kill(before["pid"], signal.SIGKILL)
    after = app.wait(
        lambda h: (
            h["engine"]["state"] == "ready" and h["engine"]["pid"] not in (None, before["pid"])
        ),
        timeout=120,
    )
    assert after["engine"]["restarts"] >= before["restarts"] + 1
    with app.client() as c:
        r = c.post("/generate", json={"prompt": "back again", "steps": 2})
        assert r.status_code == 200, r.text


@pytest.mark.slow
def test_sigterm_during_renders_answers_every_client_and_is_gone_in_3_s(tiny_models, tmp_path):
    """Four renders (one running, three queued) and a training: every waiting client gets a
    503 shutting_down JSON answer, and no process is left 3 s after SIGTERM."""
    proc = OrchestratorProcess(str(tiny_models["sd"].folder), tmp_path).start_ready()
    engine_pid = proc.health()["engine"]["pid"]
    family = [engine_pid] + [c.pid for c in psutil.Process(engine_pid).children(recursive=True)]
    render = {"prompt": "busy", "steps": 150, "num_images": 2}
    with ThreadPoolExecutor(4) as pool, proc.client(timeout=60) as c:
        files = [("images", ("a.png", png_bytes((200, 0, 0)), "image/png"))]
        training = c.post("/train-lora", files=files, data={"name": "t", "steps": "5000"})
        assert training.status_code == 202, training.text
        waiting = [pool.submit(c.post, "/generate", json=render) for _ in range(4)]
        deadline = time.monotonic() + 30
        while proc.health()["engine"]["health"]["queue_depth"] < 3:
            assert time.monotonic() < deadline, proc.log_tail()
            time.sleep(0.05)
        started = time.monotonic()
        proc.proc.send_signal(signal.SIGTERM)
        answers = [f.result() for f in waiting]
        proc.proc.wait(10)
        while any(_alive(p) for p in family) and time.monotonic() - started < 10:
            time.sleep(0.05)
        gone_after = time.monotonic() - started
    for r in answers:
        assert_error(r, 503, "shutting_down")
    assert not any(_alive(p) for p in family), "engine processes survived the orchestrator"
    assert gone_after <= 3.0, f"took {gone_after:.1f} s\n{proc.log_tail()}"


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_port_already_in_use_is_a_clear_error(tiny_models, tmp_path):
    port = free_port()
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        proc = OrchestratorProcess(str(tiny_models["sd"].folder), tmp_path, engine_port=port)
        try:
            health = proc.start(lambda h: h["engine"]["state"] == "error", timeout=60).health()
            reason = health["engine"]["reason"]
            assert f"port {port}" in reason and "in use" in reason
        finally:
            proc.stop()
