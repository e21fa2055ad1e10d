#!/bin/sh
# Build the Debian bookworm base image `local/debian:bookworm` from the Debian archive with
# debootstrap, and import it into Docker.
#
# Why: on machines that cannot reach Docker Hub, `FROM python:3.11-slim-bookworm` and
# `redis:7` cannot be pulled. The Dockerfiles take their base as a build argument
# (BASE_IMAGE); this script makes a base that works for both from Debian's own mirror
# (bookworm's python3 is 3.11, like the default base). It does nothing if the image exists.
#
# Usage: sh scripts/docker_base.sh [IMAGE]      (root, or sudo; needs debootstrap)
set -eu
IMAGE="${1:-local/debian:bookworm}"
if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "base image $IMAGE already present"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap missing: apt-get install debootstrap" >&2; exit 1; }
ROOTFS="$(mktemp -d /tmp/voicemood-rootfs.XXXXXX)"
# The root file system is large and owned by root: remove it whatever happens.
trap 'rm -rf "$ROOTFS"' EXIT INT TERM
echo "building $IMAGE with debootstrap (about a minute)"
# minbase + python3/venv/pip: the same pieces python:3.11-slim-bookworm gives the Dockerfile.
debootstrap --variant=minbase \
  --include=python3,python3-venv,python3-pip,ca-certificates \
  bookworm "$ROOTFS" >/tmp/voicemood-debootstrap.log 2>&1 \
  || { tail -20 /tmp/voicemood-debootstrap.log >&2; exit 1; }
# Keep apt's lists out of the image (the Dockerfiles run apt-get update themselves).
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/archives/*.deb
tar -C "$ROOTFS" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["bash"]' - "$IMAGE" >/dev/null
echo "base image $IMAGE built: $(docker image inspect -f '{{.Size}}' "$IMAGE") bytes"
