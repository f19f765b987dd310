#!/usr/bin/env bash
# Start LoraMint: prepare the engine's environment, then serve it.
set -euo pipefail
cd "$(dirname "$0")"
./setup-python.sh engine/.venv requirements.txt
echo "LoraMint engine on http://${LORAMINT_ENGINE_HOST:-127.0.0.1}:${LORAMINT_ENGINE_PORT:-8000}"
exec engine/.venv/bin/python -m engine
