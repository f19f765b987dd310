#!/usr/bin/env bash
# Build the images and run docker-compose.yml's default stack, as a user would, on the CPU:
# a generation through the orchestrator with the built-in demo model, its file on the data
# volume, and both still there after `docker-compose restart`. Then everything is torn down.
#
# Needs a Docker daemon, docker-compose (v1.29 or `docker compose`), and network access to a
# package index for the host's wheels (or a pip configured with local ones). With
# LORAMINT_CHECK_BASE=debootstrap (the default where no registry can be reached) the base image
# is a stand-in for python:3.11-slim made from a Debian bookworm debootstrap: Debian's Python
# 3.11 in a venv at /usr/local, so `python` and `pip` sit where the official image puts them.
# With LORAMINT_CHECK_BASE=python:3.11-slim the official image is pulled instead.
# The wheels are built on the host (`pip wheel`, the CPU torch included) and the images
# install from them with no index (the Dockerfiles' WHEELS folder). Usage:
#   scripts/compose-check.sh            # prints where each minute went; exit 0: all passed
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PROJECT=loramint-check-$$
WORK=$(mktemp -d /tmp/loramint-compose-check.XXXXXX)
MIRROR=${LORAMINT_CHECK_MIRROR:-http://deb.debian.org/debian}
BASE=${LORAMINT_CHECK_BASE:-debootstrap}
PY=${LORAMINT_CHECK_PYTHON:-python3}
if docker compose version >/dev/null 2>&1; then COMPOSE=(docker compose); else COMPOSE=(docker-compose); fi
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export LORAMINT_PORT=$PORT LORAMINT_MODEL=builtin:demo LORAMINT_TORCH=cpu
export LORAMINT_ENGINE_TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(32))')
export COMPOSE_PROJECT_NAME=$PROJECT
URL=http://127.0.0.1:$PORT

started=$(date +%s); last=$started
phase() {  # where the time went: the phase just ended, and its seconds
  local now; now=$(date +%s)
  printf '%-58s %4d s\n' "$1" $((now - last)); last=$now
}
cleanup() {
  local rc=$?
  [ $rc -ne 0 ] && { echo "FAILED; the stack's logs:"; "${COMPOSE[@]}" logs --tail 40 2>/dev/null || true; }
  "${COMPOSE[@]}" down --volumes --remove-orphans >/dev/null 2>&1 || true
  docker rmi -f loramint-engine loramint-orchestrator "loramint-check/python:3.11-slim" \
    loramint-check/bookworm >/dev/null 2>&1 || true
  rm -f docker/wheels/*.whl
  rm -rf "$WORK"
  phase "teardown (containers, volumes, images, wheels)"
  echo "total: $(( $(date +%s) - started )) s; exit $rc"
}
trap cleanup EXIT

docker info >/dev/null 2>&1 || { echo "no Docker daemon answers (start dockerd)" >&2; exit 2; }
# A throwaway venv for `pip wheel` (a fresh clone has none; the host's pip settings apply).
"$PY" -m venv "$WORK/venv" && PY=$WORK/venv/bin/python

# 1. The base image.
if [ "$BASE" = debootstrap ]; then
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log"
  tar -C "$WORK/rootfs" -c . | docker import - loramint-check/bookworm >/dev/null
  docker build -q --network host -t "loramint-check/python:3.11-slim" - >/dev/null <<'DOCKERFILE'
FROM loramint-check/bookworm
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates passwd \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m venv /usr/local
ENV LANG=C.UTF-8
CMD ["python"]
DOCKERFILE
  export LORAMINT_BASE_IMAGE="loramint-check/python:3.11-slim"
  phase "base: debootstrap bookworm + Python 3.11 at /usr/local"
else
  docker pull -q "$BASE" >/dev/null
  export LORAMINT_BASE_IMAGE=$BASE
  phase "base: pulled $BASE"
fi

# 2. Wheels, built on the host (its Python 3.11), then completed for the image's own Python:
# a dry run of the image's install names what its markers add (Debian's 3.11.2 needs
# async-timeout for redis, a newer 3.11 does not), and the host builds that too.
REQS=(-r requirements-scale.txt -r orchestrator/requirements.txt)
"$PY" -m pip wheel -q "${REQS[@]}" -w docker/wheels 2>"$WORK/pip.log" \
  || { cat "$WORK/pip.log" >&2; exit 1; }
for _ in 1 2 3 4 5; do
  missing=$(docker run --rm -v "$ROOT:/src:ro" -w /src "$LORAMINT_BASE_IMAGE" \
    pip install --dry-run --no-index --find-links docker/wheels "${REQS[@]}" 2>&1 \
    | sed -n 's/.*No matching distribution found for \(.*\)$/\1/p' | head -n 1 || true)
  [ -z "$missing" ] && break
  "$PY" -m pip wheel -q "${missing%%;*}" -w docker/wheels 2>>"$WORK/pip.log"
done
phase "wheels: $(ls docker/wheels/*.whl | wc -l) built on the host ($(du -sh docker/wheels | cut -f1))"

# 3. The images, through the compose file's own build sections.
"${COMPOSE[@]}" build -q engine orchestrator
phase "images: loramint-engine, loramint-orchestrator"
"${COMPOSE[@]}" --profile scale config -q  # the scale profile: its images can't be pulled here
phase "scale profile: config checked (its workers use the engine image)"

# 4. Up, healthy, signed in per the compose file's mode (Auth none, published on loopback).
"${COMPOSE[@]}" up -d >/dev/null 2>&1
wait_ready() {
  for _ in $(seq 1 300); do
    if curl -fsS "$URL/health" 2>/dev/null | "$PY" -c '
import json, sys
h = json.load(sys.stdin)
sys.exit(0 if h["engine"]["state"] == "ready" and h["engine"]["health"]["status"] == "ready" else 1)
' 2>/dev/null; then return 0; fi
    sleep 1
  done
  echo "the stack did not become ready in 300 s" >&2; return 1
}
wait_ready
for _ in $(seq 1 60); do  # the compose file's own health check on the engine
  health=$(docker inspect -f '{{.State.Health.Status}}' "$("${COMPOSE[@]}" ps -q engine)")
  [ "$health" = healthy ] && break
  sleep 1
done
[ "$health" = healthy ] || { echo "the engine's health check says $health" >&2; exit 1; }
[ "$("${COMPOSE[@]}" exec -T engine id -u)" = 1000 ] || { echo "the engine runs as root" >&2; exit 1; }
phase "up: engine (healthy, not root) and orchestrator ready"

# 5. A generation through the orchestrator, and its file on the data volume.
ANSWER=$(curl -fsS -X POST "$URL/generate" -H 'content-type: application/json' \
  -d '{"prompt": "a red circle on a white background", "seed": 7, "steps": 4}')
FILE=$(echo "$ANSWER" | "$PY" -c 'import json, sys; print(json.load(sys.stdin)["images"][0]["file"])')
curl -fsS -o "$WORK/before.png" "$URL/images/$FILE"
"${COMPOSE[@]}" exec -T engine test -s "/data/outputs/local/$FILE"
phase "generate: $FILE, on the data volume"

# 6. Restarted, it is still there, the same bytes, and the stack generates again.
"${COMPOSE[@]}" restart >/dev/null 2>&1
wait_ready
curl -fsS -o "$WORK/after.png" "$URL/images/$FILE"
cmp -s "$WORK/before.png" "$WORK/after.png"
curl -fsS -X POST "$URL/generate" -H 'content-type: application/json' \
  -d '{"prompt": "a blue square", "steps": 2}' >/dev/null
phase "restart: the image kept, byte for byte; generates again"
echo "PASSED"
