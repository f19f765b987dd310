#!/usr/bin/env bash
# Run LoraMint's test suite (CPU only): prepares .venv from requirements-dev.txt, then pytest.
# Extra arguments go to pytest, e.g. ./test.sh -k lora
set -euo pipefail
cd "$(dirname "$0")"
./setup-python.sh .venv requirements-dev.txt
.venv/bin/python -m ruff check . && .venv/bin/python -m ruff format --check .
exec .venv/bin/python -m pytest "$@"
