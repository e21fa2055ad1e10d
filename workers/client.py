"""The front end's side of the queue: :class:`RemotePipeline`, a pipeline whose models run
in ``voicemood worker`` processes.

It has the surface of :class:`inference.pipeline.Pipeline` (``start``, ``close``,
``models``, ``run``), so ``AnalysisService`` stores and replies exactly as in-process; it
loads no models. For each note it

1. refuses an empty or over-large file locally (the same errors as in-process), and checks
   the length of the broker queue: beyond ``VOICEMOOD_BROKER_MAX_QUEUE`` the sender gets
   :class:`~inference.errors.Busy` with an estimate, as from a full engine;
2. sends one Celery task with the audio, the input limits, the language hint and the
   public half of this process's reply key;
3. waits (without blocking the event loop) for the answer, opens it with the private half
   (see :mod:`workers.protocol`) and returns its
   :class:`~inference.pipeline.PipelineResult`, or raises the refusal the worker returned.

With no worker running, notes wait in Redis and are answered once one starts. While Redis
cannot be reached the sender gets :class:`~inference.errors.Unavailable` ("try again
later"); nothing here crashes, and the next note after Redis is back goes through.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import redis
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult
from kombu.exceptions import OperationalError

from inference.audio import check_size
from inference.errors import Busy, Unavailable, VoicemoodError
from inference.pipeline import PipelineResult
from inference.stages import OnStage, tell
from workers.celery import ANALYZE_TASK, QUEUE, make_app
from workers.protocol import MalformedAnswer, ReplyKey, Request, limits_of, read_answer

if TYPE_CHECKING:
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)

#: Errors that mean "the broker or result store cannot be reached right now".
BROKER_DOWN = (OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
               ConnectionError, TimeoutError)
#: How long one blocking wait for a result lasts; the loop around it checks the deadline
#: and lets close() finish within this time.
WAIT_SLICE_S = 1.0
#: Seconds the result store may stay unreachable while a note waits before the sender is
#: told to try later.
OUTAGE_GRACE_S = 30.0
#: Starting guess of a worker's seconds per note, for the busy estimate.
INITIAL_NOTE_S = 3.0


class RemoteTaskFailed(VoicemoodError):
    """The worker failed on a note after its retries (a fault, not the audio's)."""

    code = "internal"


class RemotePipeline:
    """Sends notes to Celery workers; same surface as :class:`~inference.pipeline.Pipeline`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = make_app(settings)
        # One result backend shared by the waiting threads (Celery's Redis result consumer
        # serialises their reads), instead of one pub/sub connection per thread.
        self.app.conf.result_backend_thread_safe = True
        self.limits = limits_of(settings)
        # Workers seal each answer to this key: what they send back is readable here only.
        self.reply_key = ReplyKey()
        self._redis = redis.Redis.from_url(settings.broker_url, socket_timeout=2.0,
                                           socket_connect_timeout=2.0)
        # Celery's client calls block: they run here, never on the event loop.
        self._calls = ThreadPoolExecutor(max_workers=32, thread_name_prefix="voicemood-broker")
        self._models: dict[str, str] = {}
        self._note_s = INITIAL_NOTE_S

    async def start(self) -> None:
        """Check the broker once; a front end starts (and says so) even while it is down."""
        try:
            depth = await self.queue_length()
        except Unavailable:
            log.warning("the broker at %s cannot be reached yet; notes are refused with "
                        "'try again later' until it can", _redact(self.settings.broker_url))
        else:
            log.info("sending notes to workers through %s (queue %r: %d waiting)",
                     _redact(self.settings.broker_url), QUEUE, depth)

    async def close(self) -> None:
        """Stop waiting; notes already queued stay in Redis for the workers."""
        self._calls.shutdown(wait=False, cancel_futures=True)
        self._redis.close()
        self.app.close()

    def models(self) -> dict[str, str]:
        """Component -> model id, as the workers last reported them ({} before the first)."""
        return dict(self._models)

    async def ready(self) -> tuple[bool, str]:
        """For ``/healthz``: whether the broker answers."""
        try:
            await self._call(self._redis.ping)
        except BROKER_DOWN:
            return False, "broker unreachable"
        return True, "ok"

    async def queue_length(self) -> int:
        """Notes waiting in the broker for a worker. Raises Unavailable when Redis is down."""
        try:
            return int(await self._call(self._redis.llen, QUEUE))
        except BROKER_DOWN as exc:
            raise _unavailable() from exc

    def estimated_wait_s(self, depth: int) -> float:
        """Rough wait for a note behind ``depth`` others, from the measured note time."""
        return (depth + 1) * self._note_s + 1.0

    async def run(self, audio: bytes, on_stage: OnStage | None = None, *,
                  lang: str | None = None) -> PipelineResult:
        """Analyse one note on a worker. Raises what the in-process pipeline would raise,
        and Unavailable while the broker cannot be reached.

        ``on_stage`` hears ``queue`` once the note is with the broker; the worker's own
        stages stay on the worker.
        """
        check_size(audio, self.settings.max_audio_bytes)
        depth = await self.queue_length()
        if depth >= self.settings.broker_max_queue:
            wait = self.estimated_wait_s(depth)
            raise Busy(f"voicemood is busy right now; please try again in about {wait:.0f} s.",
                       retry_after_s=wait)
        request = Request(audio=audio, limits=self.limits, lang=lang,
                          reply_key=self.reply_key.public)
        t0 = time.perf_counter()
        try:
            result = await self._call(self._send, request)
        except BROKER_DOWN as exc:
            raise _unavailable() from exc
        t_sent = time.perf_counter()
        tell(on_stage, "queue")
        try:
            answer = await self._wait(result)
        finally:
            # The answer has been read (or never will be): drop it from Redis now rather
            # than when result_expires runs out.
            with contextlib.suppress(Exception):  # best-effort clean-up
                await self._call(result.forget)
        elapsed = time.perf_counter() - t0
        try:
            analysed = read_answer(answer, self.reply_key)  # raises the worker's refusal
        except MalformedAnswer as exc:
            log.error("a note's answer could not be read: %s", exc)
            raise RemoteTaskFailed("the worker's answer could not be read") from exc
        self._models = dict(analysed.models)
        worker_s = analysed.timings.get("total", elapsed)
        self._note_s = 0.8 * self._note_s + 0.2 * worker_s
        # What the queue added: sending, waiting for a worker, shipping the answer back.
        analysed.timings["broker"] = max(0.0, elapsed - worker_s)
        analysed.timings["send"] = t_sent - t0
        return analysed

    def _send(self, request: Request) -> AsyncResult:
        return self.app.send_task(
            ANALYZE_TASK, kwargs=request.to_json(), queue=QUEUE,
            # What Flower and the logs show instead of the audio itself.
            kwargsrepr=repr({"audio": f"<{len(request.audio)} bytes>", "lang": request.lang}),
            # A note nobody waits for any more is not worth a worker's time.
            expires=self.settings.broker_result_timeout_s,
        )

    async def _wait(self, result: AsyncResult) -> dict[str, Any]:
        deadline = time.monotonic() + self.settings.broker_result_timeout_s
        down_since: float | None = None
        while True:
            try:
                return await self._call(result.get, timeout=WAIT_SLICE_S, interval=0.1,
                                        propagate=True)
            except CeleryTimeout:
                down_since = None
            except BROKER_DOWN as exc:
                now = time.monotonic()
                down_since = down_since or now
                if now - down_since > OUTAGE_GRACE_S:
                    raise _unavailable() from exc
                await asyncio.sleep(0.5)
            except Exception as exc:  # the task itself failed after its retries
                log.error("a worker failed on a note: %s", type(exc).__name__, exc_info=exc)
                raise RemoteTaskFailed("the worker failed on this note") from exc
            if time.monotonic() > deadline:
                # No worker took it in time (none running, or all stuck): give up on it.
                with contextlib.suppress(Exception):  # best-effort clean-up
                    await self._call(result.revoke)
                raise Unavailable("no worker answered within "
                                  f"{self.settings.broker_result_timeout_s:.0f} s")

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._calls, functools.partial(fn, *args, **kwargs))


def _unavailable() -> Unavailable:
    return Unavailable("the model workers cannot be reached right now; try again later",
                       retry_after_s=60.0)


def _redact(url: str) -> str:
    """The broker URL without a password (``redis://:secret@host`` -> ``redis://***@host``)."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"

