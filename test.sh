#!/usr/bin/env bash
# Run LoraMint's test suite (CPU only): prepares .venv from requirements-dev.txt, then ruff and
# pytest. Extra arguments go to pytest, e.g. ./test.sh -k lora
set -euo pipefail
cd "$(dirname "$0")"
./setup-python.sh .venv requirements-dev.txt
# The browser test drives Debian's Chromium; CI machines start without it.
if [ "${CI:-}" = "true" ] && ! command -v chromium >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) \
    >/dev/null 2>&1 || echo "could not install chromium: the browser test will be skipped"
fi
# The queue tests run real redis-server processes (Debian's package).
if [ "${CI:-}" = "true" ] && ! command -v redis-server >/dev/null 2>&1 \
    && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's redis-server for the queue tests"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) \
    >/dev/null 2>&1 || echo "could not install redis-server: the queue tests will be skipped"
fi
# The shared-storage tests run against Azurite, Azure Blob Storage's emulator (npm).
if [ "${CI:-}" = "true" ] && [ ! -x .cache/npm/node_modules/.bin/azurite-blob ] \
    && command -v npm >/dev/null 2>&1; then
  echo "installing azurite for the shared-storage tests"
  npm install --prefix .cache/npm --silent --no-audit --no-fund azurite@3 >/dev/null 2>&1 \
    || echo "could not install azurite: the Azure storage tests will be skipped"
fi
# One per line: under `set -e` a failure on the left of `&&` would not stop the run.
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
exec .venv/bin/python -m pytest "$@"
