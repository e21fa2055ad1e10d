"""The analysis task, and the one engine per worker process that every task feeds.

Celery's threads pool runs up to ``--concurrency`` tasks at once. They do not each run the
models: each hands its note to the process's :class:`EngineHost`, whose event loop (on a
thread of its own) owns the :class:`~inference.pipeline.Pipeline` and its
:class:`~inference.engine.InferenceEngine`, so notes that arrive together meet in the
engine's queue and are batched exactly as in ``voicemood serve``'s own process.

Delivery guarantees (settings in :mod:`workers.celery`): the message is acknowledged only
after the answer is stored (``acks_late``); a worker that dies mid-note leaves it
unacknowledged and Redis hands it to another worker after the visibility timeout. A
refusal (:class:`~inference.errors.InputError` and friends) is an answer and is returned,
never retried; the worker's own queue being full (``Busy``) and unexpected faults are
retried with back-off; a note over ``VOICEMOOD_TASK_TIME_LIMIT_S`` is given up on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from celery import Task
from celery.exceptions import Reject, TimeLimitExceeded
from celery.worker.control import inspect_command

from bot.ops import metrics
from bot.ops.settings import Settings, get_settings
from inference.config import InferenceConfig
from inference.engine import InferenceEngine
from inference.errors import Busy, VoicemoodError
from inference.pipeline import Pipeline, PipelineResult
from workers.celery import ANALYZE_TASK, app
from workers.protocol import (
    LIMIT_FIELDS,
    MalformedRequest,
    Request,
    error_answer,
    ok_answer,
    seal,
)

log = logging.getLogger(__name__)

#: Retries of a transient fault (worker queue full, a model or ffmpeg fault).
MAX_RETRIES = 3
#: Pipelines kept for distinct sender limits; they share the one engine.
MAX_PIPELINES = 4


class EngineHost:
    """One event loop thread owning the process's engine and pipelines."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.config = InferenceConfig.from_settings(settings)
        self.loop = asyncio.new_event_loop()
        self.engine = InferenceEngine(self.config)
        self.ready = threading.Event()
        self._pipelines: OrderedDict[tuple[tuple[str, float], ...], Pipeline] = OrderedDict()
        self._thread = threading.Thread(target=self.loop.run_forever,
                                        name="voicemood-engine-loop", daemon=True)

    def start(self) -> None:
        """Start the loop thread and load the models (blocks until they are loaded)."""
        self._thread.start()
        self.call(self.engine.start())
        self.ready.set()
        infos = self.engine.backends.infos() if self.engine.backends else []
        metrics.set_model_tiers(infos)
        log.info("worker engine ready on %s: %s", self.engine.device,
                 ", ".join(f"{i.component}={i.tier} ({i.model})" for i in infos))

    def call(self, coro: Any, timeout: float | None = None) -> Any:
        """Run a coroutine on the engine loop from another thread and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def analyze(self, request: Request, timeout: float) -> PipelineResult:
        """Analyse one note on the engine loop; raise TimeLimitExceeded after ``timeout``."""
        future = asyncio.run_coroutine_threadsafe(self._run(request), self.loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            # Cancelling the coroutine cancels its engine job: the dispatcher drops the
            # units it has not run yet.
            future.cancel()
            raise TimeLimitExceeded(timeout) from None

    async def _run(self, request: Request) -> PipelineResult:
        return await self._pipeline(request.limits).run(request.audio)

    def _pipeline(self, limits: dict[str, float]) -> Pipeline:
        # The sender's limits apply, never above this worker's own.
        own = {name: getattr(self.config, name) for name in LIMIT_FIELDS}
        chosen = {name: min(limits.get(name, own[name]), own[name]) for name in LIMIT_FIELDS}
        chosen["max_audio_bytes"] = int(chosen["max_audio_bytes"])
        key = tuple(sorted(chosen.items()))
        pipeline = self._pipelines.get(key)
        if pipeline is None:
            pipeline = Pipeline(replace(self.config, **chosen), engine=self.engine)
            self._pipelines[key] = pipeline
            while len(self._pipelines) > MAX_PIPELINES:
                self._pipelines.popitem(last=False)
        self._pipelines.move_to_end(key)
        return pipeline

    def queued(self) -> int:
        """Notes admitted by this worker and not yet answered."""
        return sum(p.admitted_jobs for p in list(self._pipelines.values()))

    def describe(self) -> dict[str, Any]:
        """Device and tier of each component, for ``voicemood models status``."""
        infos = self.engine.backends.infos() if self.engine.backends else []
        return {
            "device": self.engine.device,
            "ready": self.ready.is_set(),
            "components": {i.component: {"tier": i.tier, "model": i.model, "device": i.device}
                           for i in infos},
        }

    def close(self) -> None:
        """Stop the engine and the loop thread."""
        if self._thread.is_alive():
            try:
                self.call(self.engine.close(), timeout=10)
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout=10)


_host: EngineHost | None = None
_host_lock = threading.Lock()


def start_host(settings: Settings | None = None) -> EngineHost:
    """The process's engine host, loading the models on the first call."""
    global _host
    with _host_lock:
        if _host is None:
            host = EngineHost(settings or get_settings())
            host.start()
            _host = host
        return _host


def current_host() -> EngineHost | None:
    """The host if it has been started, without starting it."""
    return _host


class AnalysisTask(Task):
    """Base of the analysis task: the engine host is made on first use, once per process."""

    @property
    def host(self) -> EngineHost:
        """The process's engine host (``voicemood worker`` starts it before consuming)."""
        return start_host()


@app.task(name=ANALYZE_TASK, base=AnalysisTask, bind=True, acks_late=True,
          reject_on_worker_lost=True, max_retries=MAX_RETRIES)
def analyze(self: AnalysisTask, audio_b64: str, limits: dict[str, float],
            lang: str | None = None, reply_key: str | None = None) -> dict[str, Any]:
    """Analyse one note: the answer is a result or a refusal, sealed to the front end's
    reply key (see workers.protocol)."""
    try:
        request = Request.from_json({"audio_b64": audio_b64, "limits": limits, "lang": lang,
                                     "reply_key": reply_key})
    except MalformedRequest as exc:
        # Running it again cannot help, and nobody of ours waits for it: acknowledge and
        # drop it (the bytes are not logged: they may be someone's audio).
        log.warning("rejected a malformed request %s: %s", self.request.id, exc)
        raise Reject(str(exc), requeue=False) from None
    settings = self.host.settings
    try:
        result = self.host.analyze(request, timeout=settings.task_time_limit_s)
    except Busy as exc:
        metrics.count_note("busy")
        if self.request.retries >= self.max_retries:
            return seal(error_answer(exc), request.reply_key)
        raise self.retry(countdown=min(max(exc.retry_after_s, 1.0), 30.0)) from None
    except VoicemoodError as exc:  # a refusal is the answer; running it again changes nothing
        metrics.count_note(metrics.outcome_of(exc))
        return seal(error_answer(exc), request.reply_key)
    except TimeLimitExceeded:
        metrics.count_note("error")
        log.error("a note took longer than the %.0f s time limit", settings.task_time_limit_s)
        raise
    except Exception as exc:
        metrics.count_note("error")
        if self.request.retries >= self.max_retries:
            raise
        delay = 2.0 ** self.request.retries  # 1, 2, 4 s
        log.warning("transient fault (%s), retry %d in %.0f s", type(exc).__name__,
                    self.request.retries + 1, delay, exc_info=exc)
        raise self.retry(exc=exc, countdown=delay) from None
    metrics.count_note("ok")
    metrics.observe_result(result.timings)
    return seal(ok_answer(result), request.reply_key)


@inspect_command()
def voicemood_models(state: Any) -> dict[str, Any]:
    """Remote-control command: this worker's device and model tiers (``voicemood models
    status``, or ``celery -A workers.celery inspect voicemood_models``)."""
    host = current_host()
    if host is None:
        return {"ready": False, "components": {}}
    return host.describe()
