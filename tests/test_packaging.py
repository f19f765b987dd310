"""docker-compose wiring, the settings file contract, and what the requirements must keep."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from orchestrator.config import OrchestratorSettings

ROOT = Path(__file__).resolve().parents[1]


def test_compose_file_parses_and_wires_orchestrator_to_engine():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    engine, orch = compose["services"]["engine"], compose["services"]["orchestrator"]
    assert orch["environment"]["LORAMINT_ENGINE__AUTOSTART"] == "false"
    port = engine["environment"]["LORAMINT_ENGINE_PORT"]
    assert orch["environment"]["LORAMINT_ENGINE__BASEURL"] == f"http://engine:{port}"
    assert "engine" in orch["depends_on"]
    assert "deploy" not in engine  # the default runs anywhere; GPUs come from the GPU file
    gpu_file = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())["services"]
    gpu = gpu_file["engine"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert "gpu" in gpu["capabilities"] and set(gpu_file) <= set(compose["services"])
    assert engine["build"]["args"]["TORCH"] == "${LORAMINT_TORCH:-cuda}"  # CUDA unless asked
    mounts = {v.split(":")[1] for v in engine["volumes"]}
    assert {engine["environment"]["LORAMINT_DATA_DIR"], engine["environment"]["HF_HOME"]} <= mounts
    for service in (engine, orch):
        assert (ROOT / service["build"]["dockerfile"]).is_file()


def _compose_env(service: dict, values: dict[str, str]) -> dict[str, str]:
    """A service's environment as compose would pass it: ${X}, ${X:-default}, ${X:?error}."""

    def expand(match: re.Match[str]) -> str:
        name, op, rest = match.group(1), match.group(2), match.group(3)
        if name in values:
            return values[name]
        assert op != ":?", f"compose would refuse to start without {name}: {rest}"
        return rest if op == ":-" else ""

    pattern = re.compile(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}")
    return {k: pattern.sub(expand, str(v)) for k, v in service["environment"].items()}


def test_compose_services_pass_their_own_settings_checks(monkeypatch):
    """No Docker engine here, so the compose environment meets the settings classes instead:
    the engine listens beyond loopback only with a token, answers to its service name, and
    the orchestrator holds the same token."""
    from engine.config import EngineSettings

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    with pytest.raises(AssertionError, match="LORAMINT_ENGINE_TOKEN"):
        _compose_env(compose["services"]["engine"], {})
    values = {"LORAMINT_ENGINE_TOKEN": "shared-secret"}
    engine_env = _compose_env(compose["services"]["engine"], values)
    orch_env = _compose_env(compose["services"]["orchestrator"], values)
    for name, value in engine_env.items():
        monkeypatch.setenv(name, value)
    engine = EngineSettings()
    assert engine.engine_host == "0.0.0.0" and "engine" in (engine.allowed_hosts or [])
    for name in engine_env:
        monkeypatch.delenv(name)
    for name, value in orch_env.items():
        monkeypatch.setenv(name, value)
    orch = OrchestratorSettings(Settings=str(ROOT / "orchestrator/appsettings.json"))
    assert orch.Engine.Token and orch.Engine.Token.get_secret_value() == "shared-secret"
    # Bound to 0.0.0.0 in its container, published on loopback only: allowed without logins.
    published = compose["services"]["orchestrator"]["ports"][0].split(":")[0]
    assert orch.Server.Host == "0.0.0.0" and orch.Server.PublishedHost == published == "127.0.0.1"
    assert orch.serving_problem() is None
    assert "/data" in {v.split(":")[1] for v in compose["services"]["orchestrator"]["volumes"]}
    assert orch.database.parent.as_posix() == "/data"
    assert engine.engine_token and engine.engine_token.get_secret_value() == "shared-secret"
    assert "/livez" in " ".join(compose["services"]["engine"]["healthcheck"]["test"])


def test_settings_file_then_env_overrides(tmp_path, monkeypatch):
    shipped = json.loads((ROOT / "orchestrator/appsettings.json").read_text())
    assert shipped["Server"] == {"Host": "127.0.0.1", "Port": 5001}
    custom = tmp_path / "mine.json"
    custom.write_text(
        json.dumps(
            {"Engine": {"BaseUrl": "http://127.0.0.1:9100", "Path": "eng"}, "DefaultUser": "dora"}
        )
    )
    monkeypatch.setenv("LORAMINT_SETTINGS", str(custom))
    monkeypatch.setenv("LORAMINT_SERVER__PORT", "6001")
    s = OrchestratorSettings(Settings=str(custom))
    assert s.Engine.BaseUrl == "http://127.0.0.1:9100" and s.DefaultUser == "dora"
    assert s.Server.Port == 6001
    assert s.engine_dir == tmp_path / "eng" and s.venv_dir == tmp_path / "eng/.venv"
    monkeypatch.setenv("LORAMINT_ENGINE__BASEURL", "http://127.0.0.1:9200")
    assert OrchestratorSettings(Settings=str(custom)).engine_host_port == ("127.0.0.1", 9200)


def test_proxy_path_imports_nothing_per_request():
    """httpcore imports sniffio on every request when it can; without it installed each try
    searches sys.path again. The orchestrator's requirements must keep it."""
    import asyncio
    import sys

    import httpcore._synchronization as sync

    async def library() -> str:
        return sync.current_async_library()

    assert asyncio.run(library()) == "asyncio"
    assert "sniffio" in sys.modules
    assert "sniffio==" in (ROOT / "orchestrator" / "requirements.txt").read_text()


def _dockerfile_env(text: str) -> dict[str, str]:
    """The ENV instructions' values (KEY=VALUE pairs, lines joined at backslashes)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    env: dict[str, str] = {}
    for line in joined.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in shlex.split(line[4:]))  # quotes as sh
    return env


def test_the_space_runs_a_preview_on_7860_as_uid_1000(monkeypatch):
    from engine.config import EngineSettings

    docker = (ROOT / "space" / "Dockerfile").read_text()
    front = yaml.safe_load((ROOT / "space" / "README.md").read_text().split("---")[1])
    assert front["sdk"] == "docker"
    env = _dockerfile_env(docker)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    orch = OrchestratorSettings(Settings=str(ROOT / "orchestrator/appsettings.json"))
    assert orch.Mode == "preview" and orch.Server.TrustForwardedFor
    assert orch.Server.Port == front["app_port"] == 7860 and orch.Server.Host == "0.0.0.0"
    # Public and without logins, which a preview may be: it keeps nothing of anyone's.
    assert orch.serving_problem() is None
    assert "*.hf.space" in (orch.Server.AllowedHosts or [])
    assert EngineSettings().mode == "preview"  # the engine child inherits the environment
    monkeypatch.setenv("LORAMINT_AUTH__MODE", "accounts")  # a preview has no sign-in pages
    problem = OrchestratorSettings(Settings=str(ROOT / "orchestrator/appsettings.json"))
    assert "LORAMINT_AUTH__MODE=none" in (problem.serving_problem() or "")
    assert re.search(r"useradd .*-u 1000 user", docker) and "\nUSER user\n" in docker
    assert "EXPOSE 7860" in docker
    for source in re.findall(r"^COPY (?:--chown=\S+ )?(\S+)", docker, re.M):
        assert (ROOT / source).exists(), source


def test_compose_scale_profile_runs_one_worker_per_gpu_beside_the_dispatcher(monkeypatch):
    """`LORAMINT_QUEUE__MODE=celery docker compose --profile scale up`: the engine service
    dispatches, each worker holds one GPU of its own, and they all share the settings, the data
    volume and an append-only Redis."""
    from engine.config import EngineSettings

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    workers = {n: s for n, s in services.items() if n.startswith("worker-")}
    assert len(workers) >= 2 and all(s["profiles"] == ["scale"] for s in workers.values())
    gpu_file = yaml.safe_load((ROOT / "docker-compose.gpu.yml").read_text())["services"]
    gpus = [gpu_file[n]["deploy"]["resources"]["reservations"]["devices"][0] for n in workers]
    assert len({tuple(g["device_ids"]) for g in gpus}) == len(gpus)  # no GPU shared
    assert {"redis", "azurite"} <= {n for n, s in services.items() if s.get("profiles")}
    redis = services["redis"]
    assert "--appendonly" in redis["command"][-1] and "--requirepass" in redis["command"][-1]
    assert "ports" not in redis  # only this stack's network reaches it
    values = {
        "LORAMINT_ENGINE_TOKEN": "t",
        "LORAMINT_QUEUE__MODE": "celery",
        "LORAMINT_REDIS_PASSWORD": "pw",
    }
    engine_env = _compose_env(services["engine"], values)
    for name, worker in workers.items():
        assert worker["command"] == ["python", "-m", "engine", "worker"]
        assert "loramint-data:/data" in worker["volumes"]
        env = _compose_env(worker, values)
        shared = ("LORAMINT_QUEUE__MODE", "LORAMINT_QUEUE__BROKERURL", "LORAMINT_STORAGE__BACKEND")
        assert all(env[k] == engine_env[k] for k in shared), name
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        s = EngineSettings()
        assert s.queue.Mode == "celery" and s.queue.BrokerUrl == "redis://:pw@redis:6379/0"
        assert s.queue_secret == "t"  # tasks signed with the engine token they share
    assert (
        _compose_env(services["engine"], {"LORAMINT_ENGINE_TOKEN": "t"})["LORAMINT_QUEUE__MODE"]
        == "local"
    )  # the default stays one engine


def test_queue_settings_are_checked_before_anything_starts(monkeypatch):
    from pydantic import ValidationError

    from engine.config import EngineSettings

    monkeypatch.setenv("LORAMINT_DEVICE", "cuda:1")  # a worker per card
    assert EngineSettings().device == "cuda:1"
    monkeypatch.setenv("LORAMINT_DEVICE", "gpu1")
    with pytest.raises(ValidationError, match="device"):
        EngineSettings()
    monkeypatch.delenv("LORAMINT_DEVICE")
    monkeypatch.setenv("LORAMINT_MODE", "preview")
    monkeypatch.setenv("LORAMINT_QUEUE__MODE", "celery")
    with pytest.raises(ValidationError, match="LORAMINT_QUEUE__MODE=local"):
        EngineSettings()
    monkeypatch.delenv("LORAMINT_MODE")
    with pytest.raises(ValidationError, match="LORAMINT_QUEUE__SECRET"):  # tasks are signed
        EngineSettings()
    monkeypatch.setenv("LORAMINT_QUEUE__SECRET", "s")
    assert EngineSettings().queue_secret == "s"
    monkeypatch.setenv("LORAMINT_QUEUE__BROKERURL", "http://not-redis")
    with pytest.raises(ValidationError, match="BrokerUrl"):
        EngineSettings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LORAMINT_")}
    run = subprocess.run(
        [sys.executable, "-m", "engine", "worker"], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0 and "LORAMINT_QUEUE__MODE=celery" in run.stderr
