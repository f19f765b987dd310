#!/usr/bin/env bash
# Create a virtual environment and install a requirements file into it, skipping the install
# when the file is unchanged since the last one (a stamp holds its sha256).
# Usage: ./setup-python.sh [VENV_DIR] [REQUIREMENTS_FILE]
# Defaults prepare the engine: engine/.venv from requirements.txt.
set -euo pipefail
cd "$(dirname "$0")"
VENV="${1:-engine/.venv}"
REQS="${2:-requirements.txt}"

find_python() {
  for py in "${LORAMINT_PYTHON:-}" python3.13 python3.12 python3.11 python3.10 python3 python; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
      echo "$py"; return 0
    fi
  done
  echo "LoraMint needs Python 3.10 or newer; install it or set LORAMINT_PYTHON" >&2
  return 1
}

if [ ! -x "$VENV/bin/python" ]; then
  PY="$(find_python)"
  echo "creating virtual environment $VENV with $PY"
  "$PY" -m venv "$VENV"
fi

# The stamp covers the file and every file it pulls in with -r (same hash as the supervisor's).
HASH="$("$VENV/bin/python" - "$REQS" <<'PY'
import hashlib, pathlib, sys
p = pathlib.Path(sys.argv[1]); t = p.read_bytes()
x = [p.parent / l[3:].strip() for l in t.decode().splitlines() if l.startswith("-r ")]
print(hashlib.sha256(t + b"".join(q.read_bytes() for q in x)).hexdigest())
PY
)"
STAMP="$VENV/.requirements.sha256"
if [ "$(cat "$STAMP" 2>/dev/null)" != "$HASH" ]; then
  echo "installing $REQS into $VENV"
  # torch's build for this machine's NVIDIA driver first, when PyPI's is not it (says which).
  "$VENV/bin/python" orchestrator/torch_wheels.py "$REQS" --index "${LORAMINT_ENGINE__TORCHINDEX:-auto}"
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -r "$REQS"
  echo "$HASH" > "$STAMP"
else
  echo "$REQS unchanged since the last install into $VENV; skipping"
fi
