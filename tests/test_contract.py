"""The contract both processes share: torch-free, one error handler, JSON errors for the
unexpected too, and a 503 when the engine drops a connection mid-request."""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import threading

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from engine.contract import handlers
from tests.engine_process import ROOT, OrchestratorProcess
from tests.helpers import assert_error, png_bytes

HEAVY = ("torch", "diffusers", "transformers", "peft", "numpy", "PIL", "safetensors")


def _imported_after(statement: str) -> list[str]:
    code = f"import sys; {statement}; print('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_the_engine_web_layer_imports_no_torch():
    modules = _imported_after("import engine.api, engine.__main__")
    assert not [m for m in ("torch", "diffusers", "transformers", "peft") if m in modules]


def test_the_orchestrator_needs_only_the_contract_from_the_engine():
    modules = _imported_after("import orchestrator.app, orchestrator.__main__")
    from_engine = [m for m in modules if m.split(".")[0] == "engine"]
    assert from_engine and all(
        m in ("engine", "engine.contract") or m.startswith("engine.contract.") for m in from_engine
    ), from_engine
    assert not [m for m in HEAVY if m in modules]
    # ...which is what its image copies beside it.
    dockerfile = (ROOT / "orchestrator" / "Dockerfile").read_text()
    assert "COPY engine/__init__.py engine/__init__.py" in dockerfile
    assert "COPY engine/contract/ engine/contract/" in dockerfile


def test_both_apps_use_the_one_error_handler():
    from engine.api import create_app as engine_app
    from orchestrator.app import create_app as orchestrator_app

    for app in (engine_app(), orchestrator_app()):
        assert app.exception_handlers[Exception] is handlers._unexpected


def test_an_unexpected_error_is_a_json_500_that_hides_the_details():
    app = FastAPI()
    handlers.install_error_handlers(app)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret detail /srv/private")

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.headers["content-type"] == "application/json"
    err = assert_error(r, 500, "internal_error")
    assert "RuntimeError" in err["message"] and "/srv/private" not in err["message"]


class DroppingEngine:
    """An engine that dies mid-request, at the edge we can't make a real one hit on cue: it
    reads each request's head, then resets the connection or closes it without an answer."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                head = b""
                while b"\r\n\r\n" not in head and (chunk := conn.recv(65536)):
                    head += chunk
                if self.mode == "reset":  # linger 0: close sends RST, not FIN
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def close(self) -> None:
        self.sock.close()


@pytest.mark.parametrize("mode", ["reset", "drop"])
def test_an_engine_that_drops_the_connection_is_a_json_503(tmp_path, mode):
    fake = DroppingEngine(mode)
    proc = OrchestratorProcess(
        "unused", tmp_path, engine_port=fake.port, LORAMINT_ENGINE__AUTOSTART="false"
    )
    try:
        proc.start(lambda h: h["engine"]["state"] == "error", timeout=60)
        files = [("images", ("a.png", png_bytes((1, 2, 3)), "image/png"))]
        with proc.client(timeout=15) as c:
            for r in (
                c.get("/loras"),
                c.post("/generate", json={"prompt": "x"}),
                c.post("/train-lora", files=files, data={"name": "x"}),
            ):
                assert r.headers["content-type"] == "application/json", r.text
                err = assert_error(r, 503, "engine_unavailable")
                # A connection that opened, then broke: not a refused one.
                kinds = ("(ReadError)", "(RemoteProtocolError)", "(WriteError)")
                assert any(k in err["message"] for k in kinds), err
    finally:
        proc.stop()
        fake.close()
