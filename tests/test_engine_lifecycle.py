"""Engine start-up states, model errors, and the bounded device queue."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.engine_process import EngineProcess
from tests.helpers import assert_error


def _engine(tmp_path, model: str, **env: str) -> EngineProcess:
    # These tests are about failing clearly, so no falling back to the demo model.
    env = {"LORAMINT_MODEL_FALLBACK": "false", **env}
    return EngineProcess(model, tmp_path / "data", tmp_path / "engine.log", **env)


def test_missing_local_model_reports_error_naming_model_and_fix(tmp_path):
    eng = _engine(tmp_path, str(tmp_path / "no-such-model")).start(wait_for="error")
    try:
        with eng.client() as c:
            h = c.get("/health").json()
            assert "no-such-model" in h["reason"] and "LORAMINT_MODEL" in h["reason"]
            err = assert_error(c.post("/generate", json={"prompt": "x"}), 503, "model_unavailable")
            assert "no-such-model" in err["message"]
    finally:
        eng.stop()


def test_hub_model_that_cannot_be_downloaded_is_a_clear_error(tmp_path):
    eng = _engine(
        tmp_path, "stabilityai/sd-turbo", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf")
    ).start(wait_for="error")
    try:
        reason = httpx.get(eng.url + "/health").json()["reason"]
        assert "stabilityai/sd-turbo" in reason and "Fix:" in reason
    finally:
        eng.stop()


def test_offline_start_names_the_real_cause_at_once(tmp_path):
    """Offline, the reason once blamed a missing model_index.json, after a minute of Hub
    retries, and each retry's warning printed twice. `.invalid` never resolves (RFC 2606)."""
    started = time.monotonic()
    eng = _engine(
        tmp_path,
        "stabilityai/sd-turbo",
        HF_ENDPOINT="https://hub.invalid",
        HF_HUB_OFFLINE="0",
        HF_HOME=str(tmp_path / "hf"),
    ).start(wait_for="error")
    try:
        took = time.monotonic() - started
        reason = httpx.get(eng.url + "/health").json()["reason"]
        assert "hub.invalid can't be looked up" in reason and "offline" in reason
        assert "go online and restart" in reason and "LORAMINT_MODEL" in reason
        assert "model_index.json" not in reason
        assert took < 20, f"{took:.0f} s to say it"
        lines = [ln.split(": ", 1)[-1] for ln in eng.log_path.read_text().splitlines()]
        assert not [
            ln for ln in set(lines) if "Retrying" in ln or lines.count(ln) > 1 and "WARNING" in ln
        ]
    finally:
        eng.stop()


@pytest.mark.slow
def test_full_queue_answers_429(tmp_path, tiny_models):
    eng = _engine(tmp_path, str(tiny_models["sd"].folder), LORAMINT_QUEUE_SIZE="1").start()
    body = {"prompt": "busy", "steps": 40, "num_images": 2}
    try:
        with eng.client() as c, ThreadPoolExecutor(6) as pool:
            responses = list(pool.map(lambda _: c.post("/generate", json=body), range(6)))
        codes = sorted(r.status_code for r in responses)
        assert 200 in codes and 429 in codes, codes
        assert_error(next(r for r in responses if r.status_code == 429), 429, "queue_full")
    finally:
        eng.stop()
