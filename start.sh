#!/usr/bin/env bash
# Start LoraMint: prepare the orchestrator's small venv, then run it. The orchestrator creates
# the engine's venv, installs requirements.txt when it changed, and supervises the engine.
# Settings: orchestrator/appsettings.json, or LORAMINT_* variables (see README).
set -euo pipefail
cd "$(dirname "$0")"
./setup-python.sh orchestrator/.venv orchestrator/requirements.txt
exec orchestrator/.venv/bin/python -m orchestrator
