#!/bin/sh
# Build voicemood's images (voicemood:latest and a Redis image) on a machine like ours:
# no Docker Hub, PyPI only through a TLS-inspecting proxy, the CPU torch wheel on local disk.
#
# Why a script: the Dockerfile's defaults (python:3.11-slim-bookworm, PyTorch's CPU index)
# are right for a normal machine; here each has to be swapped through a build argument,
# and the local wheel and CA bundle have to reach a build that runs on the host network.
# This script does that and prints the image size and build time (docs/deploy.md).
#
#   sh scripts/docker_build.sh                 # as on these machines
#   VOICEMOOD_BASE_IMAGE=python:3.11-slim-bookworm sh scripts/docker_build.sh   # normal machine
#
# Environment:
#   VOICEMOOD_BASE_IMAGE   base of both images; default local/debian:bookworm, built with
#                          scripts/docker_base.sh (debootstrap) when missing
#   VOICEMOOD_IMAGE        tag of the app image (default voicemood:latest)
#   VOICEMOOD_REDIS_IMAGE  tag of the Redis image built from docker/redis (default
#                          voicemood-redis:local); set VOICEMOOD_REDIS_IMAGE=redis:7 to skip it
#   PIP_FIND_LINKS         a folder with the torch 2.13.0 wheel: served to the build on
#                          127.0.0.1 (TORCH_FIND_LINKS) instead of PyTorch's index
#   PIP_CERT               the CA bundle the host's pip trusts: served to the build
#                          (PIP_CERT_URL), used in its build stage only
#   VOICEMOOD_BUILD_PORT   port of 127.0.0.1 the wheel and CA bundle are served on (47107)
#   VOICEMOOD_BUILD_REF    build a commit (git archive REF, e.g. HEAD) instead of the working
#                          tree: what is committed, without anyone's edits in progress
set -eu
cd "$(dirname "$0")/.."
BASE="${VOICEMOOD_BASE_IMAGE:-local/debian:bookworm}"
IMAGE="${VOICEMOOD_IMAGE:-voicemood:latest}"
REDIS_IMAGE="${VOICEMOOD_REDIS_IMAGE:-voicemood-redis:local}"

if [ "$BASE" = "local/debian:bookworm" ]; then
  sh scripts/docker_base.sh "$BASE"
fi

# A throw-away folder served on 127.0.0.1 (the build runs with --network host): links to the
# torch wheels and a copy of the CA bundle. Removed, with its server, however we exit.
SERVE_DIR="$(mktemp -d /tmp/voicemood-build.XXXXXX)"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  rm -rf "$SERVE_DIR"
}
trap cleanup EXIT INT TERM

ARGS="--build-arg BASE_IMAGE=$BASE"
if [ -n "${PIP_FIND_LINKS:-}" ] && ls "$PIP_FIND_LINKS"/torch-2.13.0*.whl >/dev/null 2>&1; then
  mkdir -p "$SERVE_DIR/wheels"
  ln -s "$PIP_FIND_LINKS"/torch-2.13.0*.whl "$SERVE_DIR/wheels/"
fi
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  cp "$PIP_CERT" "$SERVE_DIR/pip-ca.pem"
fi
if [ -d "$SERVE_DIR/wheels" ] || [ -f "$SERVE_DIR/pip-ca.pem" ]; then
  # A fixed port: the URLs are build arguments, and a build argument that changes from one
  # build to the next would make Docker rebuild every layer after it (minutes).
  PORT="${VOICEMOOD_BUILD_PORT:-47107}"
  if python3 -c "import socket, sys; s = socket.socket(); sys.exit(s.connect_ex(('127.0.0.1', $PORT)) != 0)"; then
    echo "port $PORT of 127.0.0.1 is taken: set VOICEMOOD_BUILD_PORT to a free one" >&2
    exit 1
  fi
  python3 -m http.server --bind 127.0.0.1 --directory "$SERVE_DIR" "$PORT" >/dev/null 2>&1 &
  SERVER_PID=$!
  # Wait (bounded) until the server answers.
  for _ in $(seq 50); do
    python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/', timeout=1)" \
      2>/dev/null && break
    sleep 0.1
  done
  [ -d "$SERVE_DIR/wheels" ] && ARGS="$ARGS --build-arg TORCH_FIND_LINKS=http://127.0.0.1:$PORT/wheels/"
  [ -f "$SERVE_DIR/pip-ca.pem" ] && ARGS="$ARGS --build-arg PIP_CERT_URL=http://127.0.0.1:$PORT/pip-ca.pem"
fi

START=$(date +%s)
echo "docker build -t $IMAGE $ARGS ."
# shellcheck disable=SC2086  # ARGS is a list of words on purpose
if [ -n "${VOICEMOOD_BUILD_REF:-}" ]; then
  echo "context: git archive $(git rev-parse --short "$VOICEMOOD_BUILD_REF")"
  git archive --format=tar "$VOICEMOOD_BUILD_REF" | docker build --network host -t "$IMAGE" $ARGS -
else
  docker build --network host -t "$IMAGE" $ARGS .
fi
END=$(date +%s)
SIZE=$(docker image inspect -f '{{.Size}}' "$IMAGE")
echo "built $IMAGE in $((END - START)) s, $((SIZE / 1000000)) MB"

if [ "$REDIS_IMAGE" != "redis:7" ]; then
  docker build --network host -q -t "$REDIS_IMAGE" --build-arg "BASE_IMAGE=$BASE" docker/redis >/dev/null
  echo "built $REDIS_IMAGE ($(( $(docker image inspect -f '{{.Size}}' "$REDIS_IMAGE") / 1000000 )) MB)"
fi
