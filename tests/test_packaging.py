"""docker-compose wiring, the settings file contract, and what the requirements must keep."""

from __future__ import annotations

import json
from pathlib import Path

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
    gpu = engine["deploy"]["resources"]["reservations"]["devices"][0]
    assert "gpu" in gpu["capabilities"]
    mounts = {v.split(":")[1] for v in engine["volumes"]}
    assert {engine["environment"]["LORAMINT_DATA_DIR"], engine["environment"]["HF_HOME"]} <= mounts
    for service in (engine, orch):
        assert (ROOT / service["build"]["dockerfile"]).is_file()


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
