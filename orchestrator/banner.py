"""The one line at the top of every page that says, in plain words, what state LoraMint is in
(and, folded, the technical details). Rendered with the page and refreshed from /health."""

from __future__ import annotations

import re
from typing import Any

from orchestrator.supervisor import EngineState

DEMO = "builtin:demo"
DEMO_TEXT = "the built-in 64 px demo model: it draws coloured shapes on plain backgrounds"
HUB_UNREACHABLE = "the Hub can't be reached"  # engine.pipelines.HubUnreachable's words


def banner(status: dict[str, Any]) -> dict[str, str] | None:
    """{"text", "details", "level"} for the engine's `status`, or None when all is well."""
    state, reason = status["state"], status.get("reason") or ""
    health = status.get("health") or {}
    if state == EngineState.ERROR.value:
        return {
            "text": "The engine could not start, so nothing can be generated or trained. "
            "The details say what to fix.",
            "details": reason,
            "level": "error",
        }
    if health.get("status") == "waiting":  # celery mode, no worker connected yet
        return {
            "text": "No engine worker is connected yet: generations and trainings wait until "
            "one starts. The details say how.",
            "details": reason,
            "level": "warning",
        }
    if state != EngineState.READY.value or health.get("status") == "starting":
        doing = {
            EngineState.PREPARING.value: "Preparing the engine (first start installs it)",
            EngineState.RESTARTING.value: "The engine stopped and is restarting",
            EngineState.STOPPED.value: "The engine is stopped",
        }.get(state, "Starting: loading the model")
        return {
            "text": f"{doing}… pages fill in when it is ready.",
            "details": reason,
            "level": "info",
        }
    if note := health.get("gpu_note"):  # a GPU is there and torch can't use it
        return {
            "text": "An NVIDIA GPU was found, but the engine runs on the CPU (slow). The "
            "details say why and how to fix it.",
            "details": note,
            "level": "warning",
        }
    if health.get("model") != DEMO:
        return None
    fallback = health.get("fallback_reason")
    if not fallback:
        return {"text": f"Running {DEMO_TEXT}.", "details": "", "level": "info"}
    wanted = re.search(r"model '([^']+)'", fallback)
    name = wanted.group(1) if wanted else "the configured model"
    if HUB_UNREACHABLE in fallback:  # the engine knows the cause: say it plainly
        text = f"Offline: {name} is not on this machine and can't be downloaded"
    else:
        text = f"{name} could not be loaded"
    return {
        "text": f"{text}, so LoraMint is running {DEMO_TEXT}. The details say what to do.",
        "details": fallback,
        "level": "warning",
    }
