"""Prometheus metrics and the ``/healthz`` + ``/metrics`` server of serve and worker.

Every process that analyses or forwards notes counts them here; with
``VOICEMOOD_METRICS_PORT`` set it also serves:

* ``GET /healthz``: 200 ``ok`` once the process can do its work (models loaded, or the
  broker reachable for a front end that uses workers), 503 with the reason before that;
* ``GET /metrics``: the Prometheus text format (prometheus-client's own registry).

The metric names are a contract with dashboards: ``voicemood_notes_total{outcome}``,
``voicemood_queue_depth``, ``voicemood_batch_size``, ``voicemood_stage_seconds{stage}``,
``voicemood_model_info{component,tier,model,device}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from inference.errors import Busy, InputError, Unavailable

log = logging.getLogger(__name__)

NOTES = Counter("voicemood_notes", "Voice notes handled, by outcome "
                "(ok, refused, busy, unavailable, error)", ["outcome"])
QUEUE_DEPTH = Gauge("voicemood_queue_depth", "Notes waiting: the broker queue's length in a "
                    "front end that uses workers, admitted and unanswered notes otherwise")
BATCH_SIZE = Histogram("voicemood_batch_size", "Units per model batch, seen by each note",
                       buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32))
STAGE_SECONDS = Histogram("voicemood_stage_seconds", "Seconds per pipeline stage per note",
                          ["stage"], buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30,
                                              60, 180, 600))
MODEL_INFO = Gauge("voicemood_model_info", "1 for the model each component runs",
                   ["component", "tier", "model", "device"])

#: Timing keys that are stages of a note (others, like chunk counts, are not seconds).
STAGES = ("probe", "wait_decode", "decode", "split", "queue", "asr", "voice_emotion",
          "text_emotion", "total", "broker")


def outcome_of(exc: BaseException) -> str:
    """The ``outcome`` label for a note that ended with ``exc``."""
    if isinstance(exc, Busy):
        return "busy"
    if isinstance(exc, Unavailable):
        return "unavailable"
    if isinstance(exc, InputError):
        return "refused"
    return "error"


def count_note(outcome: str) -> None:
    """Count one note that ended with ``outcome``."""
    NOTES.labels(outcome=outcome).inc()


def observe_result(timings: dict[str, float]) -> None:
    """Record an answered note's stage timings and the batch it ran in."""
    for stage in STAGES:
        if stage in timings:
            STAGE_SECONDS.labels(stage=stage).observe(float(timings[stage]))
    if "batch_size" in timings:
        BATCH_SIZE.observe(float(timings["batch_size"]))


def set_model_tiers(infos: Iterable[Any]) -> None:
    """Publish the component -> tier/model table (``inference.backends`` infos)."""
    MODEL_INFO.clear()
    for info in infos:
        MODEL_INFO.labels(component=info.component, tier=info.tier, model=info.model,
                          device=info.device if info.tier != "off" else "-").set(1)


class InstrumentedPipeline:
    """Wraps a pipeline (local or remote) to count notes and time their stages.

    Same surface as :class:`inference.pipeline.Pipeline`: ``start``, ``close``, ``models``,
    ``run``; other attributes are the wrapped pipeline's.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def start(self) -> None:
        """Start the wrapped pipeline and publish its model tiers where it has models."""
        await self.inner.start()
        backends = getattr(getattr(self.inner, "engine", None), "backends", None)
        if backends is not None:
            set_model_tiers(backends.infos())

    async def close(self) -> None:
        """Close the wrapped pipeline."""
        await self.inner.close()

    def models(self) -> dict[str, str]:
        """Component -> model id."""
        return self.inner.models()

    async def run(self, audio: bytes, **kwargs: Any) -> Any:
        """Run the note through the wrapped pipeline, counting its outcome."""
        try:
            result = await self.inner.run(audio, **kwargs)
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                count_note(outcome_of(exc))
            raise
        count_note("ok")
        observe_result(result.timings)
        return result


Check = Callable[[], Awaitable[tuple[bool, str]]]


async def start_health_server(port: int, ready: Check,
                              queue_depth: Callable[[], Awaitable[int | None]] | None = None,
                              host: str = "127.0.0.1") -> web.AppRunner:
    """Serve ``/healthz`` and ``/metrics`` on ``host:port`` (``VOICEMOOD_METRICS_HOST``,
    loopback unless set); returns the runner to ``cleanup()``."""

    async def healthz(request: web.Request) -> web.Response:
        try:
            ok, why = await ready()
        except Exception as exc:  # a failing check means not ready, never a 500
            ok, why = False, type(exc).__name__
        return web.Response(status=200 if ok else 503, text="ok\n" if ok else f"{why}\n")

    async def scrape(request: web.Request) -> web.Response:
        if queue_depth is not None:
            try:
                depth = await queue_depth()
            except Exception:  # the gauge keeps its last value while the queue is unreadable
                depth = None
            if depth is not None:
                QUEUE_DEPTH.set(depth)
        body = generate_latest()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", scrape)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("health and metrics on %s:%d (/healthz, /metrics)", host, port)
    return runner


async def start_serve_health(service: Any, settings: Any) -> web.AppRunner | None:
    """``voicemood serve``'s health and metrics server, when ``VOICEMOOD_METRICS_PORT`` is set.

    Ready means: the broker answers (scale-out mode) or the models are loaded (in-process).
    Notes are counted from here on by instrumenting the service's pipeline.
    """
    if not settings.metrics_port:
        return None
    if not isinstance(service.pipeline, InstrumentedPipeline):
        service.pipeline = InstrumentedPipeline(service.pipeline)
    pipeline = service.pipeline
    backends = getattr(getattr(pipeline.inner, "engine", None), "backends", None)
    if backends is not None:
        set_model_tiers(backends.infos())

    async def ready() -> tuple[bool, str]:
        remote_check = getattr(pipeline.inner, "ready", None)
        if remote_check is not None:
            return await remote_check()
        loaded = getattr(getattr(pipeline.inner, "engine", None), "backends", None)
        return (True, "ok") if loaded is not None else (False, "models not loaded")

    async def depth() -> int | None:
        queue_length = getattr(pipeline.inner, "queue_length", None)
        if queue_length is not None:
            return int(await queue_length())
        admitted = getattr(pipeline.inner, "admitted_jobs", None)
        return int(admitted) if admitted is not None else None

    return await start_health_server(settings.metrics_port, ready, depth,
                                     host=settings.metrics_host)
