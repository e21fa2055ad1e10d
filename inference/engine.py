"""The shared inference engine: one set of models per process, fed by one queue.

Every adapter's request becomes a :class:`Job` on a bounded asyncio queue. A dispatcher
task gathers the jobs that arrive together (up to ``batch_size``, waiting at most
``batch_wait_ms`` for company) and hands the batch to a single worker thread, where each
stage runs once over the whole batch. The event loop never runs model code, so the bots
keep answering commands while audio is analysed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from inference.audio import DecodedAudio
from inference.backends import Backends, load_backends
from inference.device import cpu_threads, resolve_device
from inference.errors import Busy
from inference.types import SAMPLE_RATE, TextReading, Transcript, VoiceReading

log = logging.getLogger(__name__)


@dataclass
class EngineResult:
    """Raw model outputs for one clip, before fusion."""

    transcript: Transcript
    text: TextReading | None
    voice: VoiceReading | None
    timings: dict[str, float] = field(default_factory=dict)


@dataclass
class Job:
    """One clip waiting for the models."""

    audio: DecodedAudio
    future: asyncio.Future[EngineResult]
    enqueued: float = field(default_factory=time.perf_counter)


class InferenceEngine:
    """Owns the models; :meth:`infer` is safe to call from any number of coroutines."""

    def __init__(self, settings, backends: Backends | None = None) -> None:
        self.settings = settings
        self.backends = backends
        self.batch_size = int(settings.batch_size)
        self.batch_wait_s = settings.batch_wait_ms / 1000.0
        self._queue: asyncio.Queue[Job] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicemood-model")
        self._dispatcher: asyncio.Task[None] | None = None
        # Running average of model seconds per audio second, for the "busy" estimate.
        self._rtf = 0.3
        self.load_seconds = 0.0

    @property
    def device(self) -> str:
        """The device the models run on."""
        return self.backends.device if self.backends else "unloaded"

    def models(self) -> dict[str, str]:
        """Component -> model id."""
        return self.backends.models() if self.backends else {}

    async def start(self) -> None:
        """Load the models (once), warm them up and start the dispatcher."""
        loop = asyncio.get_running_loop()
        if self.backends is None:
            t0 = time.perf_counter()
            self.backends = await loop.run_in_executor(self._executor, self._load)
            self.load_seconds = time.perf_counter() - t0
            await loop.run_in_executor(self._executor, self._warm_up)
            for info in self.backends.infos():
                log.info("model %s: tier=%s model=%s device=%s %s", info.component, info.tier,
                         info.model, info.device if info.tier != "off" else "-", info.detail)
            log.info("models loaded in %.1f s on %s (peak RSS %.0f MB)", self.load_seconds,
                     self.device, _peak_rss_mb())
        if self._queue is None:
            self._queue = asyncio.Queue(maxsize=int(self.settings.queue_size))
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="voicemood-dispatch")

    def _load(self) -> Backends:
        device = resolve_device(self.settings.device)
        if device == "cpu":
            try:
                import torch

                torch.set_num_threads(cpu_threads())
            except ImportError:  # pragma: no cover
                pass
        return load_backends(self.settings, device)

    def _warm_up(self) -> None:
        # One short pass so the first user does not pay for lazy initialisation.
        t = np.linspace(0, 1.0, SAMPLE_RATE, dtype=np.float32)
        clip = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        audio = DecodedAudio(samples=clip, duration_s=1.0, source_dbfs=-20.0, gain_db=0.0)
        self._run_batch([audio])
        if self.backends is not None and self.backends.text is not None:
            # Lexicons load their dictionaries on first use (jieba: ~0.6 s).
            self.backends.text.classify_batch(["今天很好。", "I am fine."], ["zh", "en"])

    async def close(self) -> None:
        """Stop the dispatcher and the worker thread; pending jobs are cancelled."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            try:
                await self._dispatcher
            except asyncio.CancelledError:
                pass
            self._dispatcher = None
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def queued_audio_seconds(self) -> float:
        """Seconds of audio waiting in the queue."""
        if self._queue is None:
            return 0.0
        return sum(j.audio.duration_s for j in list(self._queue._queue))  # type: ignore[attr-defined]

    def estimated_wait_s(self) -> float:
        """Rough wait for a new job, from the queued audio and the measured speed."""
        return self.queued_audio_seconds() * self._rtf + 1.0

    async def infer(self, audio: DecodedAudio) -> EngineResult:
        """Run every model on one decoded clip. Raises :class:`Busy` when the queue is full."""
        if self._queue is None:
            await self.start()
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        job = Job(audio=audio, future=loop.create_future())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            wait = self.estimated_wait_s()
            raise Busy(
                f"voicemood is busy right now; please try again in about {wait:.0f} s.",
                retry_after_s=wait,
            ) from None
        return await job.future

    async def _dispatch(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            first = await self._queue.get()
            batch = [first]
            deadline = loop.time() + self.batch_wait_s
            while len(batch) < self.batch_size:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            batch = [j for j in batch if not j.future.done()]
            if not batch:
                continue
            started = time.perf_counter()
            try:
                results = await loop.run_in_executor(
                    self._executor, self._run_batch, [j.audio for j in batch]
                )
            except Exception as exc:  # a model fault fails this batch, not the engine
                log.exception("inference failed for a batch of %d", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(batch, results, strict=True):
                result.timings["queue"] = started - job.enqueued
                result.timings["batch_size"] = float(len(batch))
                if not job.future.done():
                    job.future.set_result(result)

    def _run_batch(self, audios: list[DecodedAudio]) -> list[EngineResult]:
        """Run each stage once over the batch (worker thread)."""
        assert self.backends is not None
        b = self.backends
        clips = [a.samples for a in audios]
        t0 = time.perf_counter()
        transcripts = b.asr.transcribe_batch(clips)
        t1 = time.perf_counter()
        texts: list[TextReading | None] = [None] * len(audios)
        if b.text is not None:
            texts = list(b.text.classify_batch([t.text for t in transcripts],
                                               [t.language for t in transcripts]))
        t2 = time.perf_counter()
        voices: list[VoiceReading | None] = [None] * len(audios)
        if b.voice is not None:
            voices = list(_voice_batch(b.voice, audios))
        t3 = time.perf_counter()
        audio_s = sum(a.duration_s for a in audios) or 1.0
        self._rtf = 0.8 * self._rtf + 0.2 * ((t3 - t0) / audio_s)
        timings = {"asr": t1 - t0, "text_emotion": t2 - t1, "voice_emotion": t3 - t2}
        return [
            EngineResult(transcript=tr, text=tx, voice=vo, timings=dict(timings))
            for tr, tx, vo in zip(transcripts, texts, voices, strict=True)
        ]


def _voice_batch(backend, audios: list[DecodedAudio]) -> list[VoiceReading]:
    clips = [a.samples for a in audios]
    if getattr(backend, "uses_level", False):
        # The prosody backend reads loudness, which normalisation removed from the samples.
        return backend.analyze_batch(clips, levels_dbfs=[a.source_dbfs for a in audios])
    return backend.analyze_batch(clips)


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
