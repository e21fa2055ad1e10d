"""The shared inference engine: one set of models per process, fed by one queue.

Every adapter's request becomes a :class:`Job`. A clip longer than
:data:`~inference.chunking.SPLIT_ABOVE_S` is first cut at its pauses (Silero VAD, on a helper
thread) into chunks of at most :data:`~inference.chunking.CHUNK_S` seconds; each chunk, or
the whole short clip, is a work unit. A dispatcher task forms batches of up to
``batch_size`` units, waiting at most ``batch_wait_ms`` for company when the worker is idle,
and takes the units round-robin by job with a cap per job (see :meth:`units_per_job`), so a
long recording cannot hold the model thread for more than about :data:`FAIR_SLICE_S` at a
time while short notes wait behind it. The batch goes to the single model thread, where ASR
and voice emotion each run once over all its units, and the text classifier once over the
transcripts of the jobs the batch completes. The event loop never runs model code, so the
bots keep answering commands while audio is analysed.

Admission happens before decoding, in :class:`inference.pipeline.Pipeline`, which also
bounds how many decoded clips exist at once. The engine keeps its own bound of
``queue_size`` jobs waiting for the models as a safety net for direct callers: beyond it,
:meth:`InferenceEngine.infer` raises :class:`~inference.errors.Busy` with an estimate of the
wait.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from inference.audio import DecodedAudio
from inference.backends import Backends, load_backends
from inference.chunking import (
    CHUNK_S,
    SPLIT_ABOVE_S,
    join_transcripts,
    merge_voice,
    split_spans,
)
from inference.config import InferenceConfig
from inference.device import cpu_threads, resolve_device
from inference.errors import Busy
from inference.stages import OnStage, tell
from inference.types import SAMPLE_RATE, TextReading, Transcript, VoiceReading

log = logging.getLogger(__name__)

#: Longest the model thread should spend on one job's units in a batch while other jobs
#: may be waiting; sets how many chunks of a long clip go into one batch.
FAIR_SLICE_S = 2.0
#: Starting guess of model seconds per audio second, until batches have been measured.
INITIAL_RTF = 0.3


@dataclass
class EngineResult:
    """Raw model outputs for one clip, before fusion."""

    transcript: Transcript
    text: TextReading | None
    voice: VoiceReading | None
    duration_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(eq=False)
class _Unit:
    """One piece of a job that goes through the models in one batch."""

    job: Job
    index: int
    samples: np.ndarray
    duration_s: float


@dataclass(eq=False)  # identity semantics: jobs live in sets and deques
class Job:
    """One clip waiting for (or going through) the models."""

    audio: DecodedAudio
    future: asyncio.Future[EngineResult]
    enqueued: float = field(default_factory=time.perf_counter)
    pending: deque[_Unit] = field(default_factory=deque)
    n_units: int = 1
    weights: list[float] = field(default_factory=list)
    transcripts: dict[int, Transcript] = field(default_factory=dict)
    voices: dict[int, VoiceReading | None] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    #: Told as the job reaches "transcribe" and "emotion" (see inference.types.STAGES).
    on_stage: OnStage | None = None
    #: The loop the caller waits on: stages seen on the model thread are told there.
    loop: asyncio.AbstractEventLoop | None = None
    #: The caller's context: a callback may rely on its context variables (Gradio's
    #: progress finds its event through them), and the dispatcher runs in another.
    context: contextvars.Context | None = None
    told_emotion: bool = False

    def tell(self, stage: str, done: float = 0.0) -> None:
        """Tell ``on_stage`` (in the caller's context) that the job entered ``stage``."""
        if self.on_stage is not None and self.context is not None:
            self.context.run(tell, self.on_stage, stage, done)

    def tell_from_thread(self, stage: str) -> None:
        """:meth:`tell` from the model thread, on the caller's loop."""
        if self.on_stage is not None and self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.tell, stage, 0.0)

    def add_units(self, spans: list[tuple[int, int]]) -> None:
        """Queue one unit per sample range of the clip."""
        self.n_units = len(spans)
        for i, (lo, hi) in enumerate(spans):
            duration = (hi - lo) / SAMPLE_RATE
            self.pending.append(_Unit(self, i, self.audio.samples[lo:hi], duration))
            self.weights.append(duration)
        self.timings["chunks"] = float(len(spans))


class InferenceEngine:
    """Owns the models; :meth:`infer` is safe to call from any number of coroutines."""

    def __init__(self, config: InferenceConfig, backends: Backends | None = None) -> None:
        # An application Settings is accepted and reduced to its inference part at once,
        # so no token is kept here.
        self.config = InferenceConfig.coerce(config)
        self.backends = backends
        self.batch_size = int(self.config.batch_size)
        self.batch_wait_s = self.config.batch_wait_ms / 1000.0
        self.queue_size = int(self.config.queue_size)
        # One model thread: the backends are not thread-safe, and on CPU their own thread
        # pools already use every core. A second thread splits long clips meanwhile.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicemood-model")
        self._prep = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voicemood-split")
        self._jobs: deque[Job] = deque()  # jobs with units not yet dispatched, round-robin
        self._live: set[Job] = set()  # every job not yet answered
        self._splitting = 0  # admitted jobs still being cut into chunks
        self._wake: asyncio.Event | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._inflight_audio_s = 0.0
        # Running average of model seconds per audio second, for the "busy" estimate and
        # the fairness cap.
        self._rtf = INITIAL_RTF
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
            t1 = time.perf_counter()
            await loop.run_in_executor(self._executor, self._warm_up)
            for info in self.backends.infos():
                log.info("model %s: tier=%s model=%s device=%s %s", info.component, info.tier,
                         info.model, info.device if info.tier != "off" else "-", info.detail)
            log.info("models loaded in %.1f s (warm-up %.1f s) on %s: peak RSS %.0f MB%s; "
                     "batch %d, wait %d ms, queue %d", self.load_seconds,
                     time.perf_counter() - t1, self.device, peak_rss_mb(),
                     _gpu_memory_note(self.device), self.batch_size,
                     round(self.batch_wait_s * 1000), self.queue_size)
        if self._wake is None:
            self._wake = asyncio.Event()
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="voicemood-dispatch")
            self._dispatcher.add_done_callback(_report_crash)

    def _load(self) -> Backends:
        device = resolve_device(self.config.device)
        backends = load_backends(self.config, device)
        if device == "cpu":
            use_every_core()
        return backends

    def _warm_up(self) -> None:
        # One short pass so the first user does not pay for lazy initialisation.
        assert self.backends is not None
        t = np.linspace(0, 1.0, SAMPLE_RATE, dtype=np.float32)
        clip = (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
        audio = DecodedAudio(samples=clip, duration_s=1.0, source_dbfs=-20.0, gain_db=0.0)
        job = Job(audio=audio, future=None)  # type: ignore[arg-type]
        job.add_units([(0, len(clip))])
        self._run_units(list(job.pending), warm_up=True)
        from inference.asr_whisper import WhisperAsr

        # A routed full tier holds the offline Whisper too (inference/asr_routing.py).
        whisper = getattr(self.backends.asr, "whisper", self.backends.asr)
        if isinstance(whisper, WhisperAsr):
            # VAD finds no speech in a tone, so the encoder and decoder need their own run.
            from inference.whisper_batch import warm_up

            warm_up(whisper)
        if self.backends.text is not None:
            # Lexicons load their dictionaries on first use (jieba: ~0.6 s).
            self.backends.text.classify_batch(["今天很好。", "I am fine."], ["zh", "en"])

    async def close(self) -> None:
        """Stop the dispatcher and the worker threads; unanswered jobs are cancelled."""
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            try:
                await self._dispatcher
            except asyncio.CancelledError:
                pass
            self._dispatcher = None
        for job in list(self._live):
            if not job.future.done():
                job.future.cancel()
        self._live.clear()
        self._jobs.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._prep.shutdown(wait=False, cancel_futures=True)

    # --- queue state ------------------------------------------------------------------------

    def waiting_jobs(self) -> int:
        """Jobs admitted whose audio has not all reached the models yet."""
        return len(self._jobs) + self._splitting

    def queued_audio_seconds(self) -> float:
        """Seconds of audio waiting for the models."""
        return sum(u.duration_s for job in self._jobs for u in job.pending)

    @property
    def rtf(self) -> float:
        """Measured model seconds per audio second (running average)."""
        return self._rtf

    def estimated_wait_s(self) -> float:
        """Rough wait for a new job, from the audio ahead of it and the measured speed."""
        ahead = self.queued_audio_seconds() + self._inflight_audio_s
        return ahead * self._rtf + 1.0

    def units_per_job(self) -> int:
        """Most units of one job in a batch: as many chunks as fit in FAIR_SLICE_S."""
        fit = math.floor(FAIR_SLICE_S / max(self._rtf * CHUNK_S, 1e-6))
        return max(1, min(self.batch_size, fit))

    # --- requests ---------------------------------------------------------------------------

    async def infer(self, audio: DecodedAudio, on_stage: OnStage | None = None
                    ) -> EngineResult:
        """Run every model on one decoded clip. Raises :class:`Busy` when the queue is full.

        ``on_stage`` is told ``("transcribe", done)`` each time a batch takes units of this
        clip (``done``: the part of its chunks transcribed so far), then ``("emotion", 0)``
        once its last chunk is transcribed.
        """
        if self._dispatcher is None or self._dispatcher.done():
            await self.start()
        if self.waiting_jobs() >= self.queue_size:
            wait = self.estimated_wait_s()
            raise Busy(
                f"voicemood is busy right now; please try again in about {wait:.0f} s.",
                retry_after_s=wait,
            )
        loop = asyncio.get_running_loop()
        job = Job(audio=audio, future=loop.create_future(), on_stage=on_stage, loop=loop,
                  context=contextvars.copy_context())
        self._live.add(job)
        try:
            if audio.duration_s > SPLIT_ABOVE_S:
                self._splitting += 1
                try:
                    t0 = time.perf_counter()
                    spans = await loop.run_in_executor(self._prep, split_spans, audio.samples)
                    job.timings["split"] = time.perf_counter() - t0
                finally:
                    self._splitting -= 1
            else:
                spans = [(0, len(audio.samples))]
            job.add_units(spans)
            self._jobs.append(job)
            assert self._wake is not None
            self._wake.set()
            # Awaiting the future directly: a caller that gives up cancels it, and the
            # dispatcher then skips the job's remaining units.
            return await job.future
        finally:
            self._live.discard(job)
            if job.pending and job in self._jobs:
                self._jobs.remove(job)

    # --- dispatching ------------------------------------------------------------------------

    def _available_units(self) -> int:
        cap = self.units_per_job()
        return sum(min(len(j.pending), cap) for j in self._jobs if not j.future.done())

    def _take_batch(self) -> list[_Unit]:
        """Up to batch_size units, round-robin by job, at most units_per_job() per job.

        Jobs that gave units move to the back of the line, so the next batch starts with
        the jobs this one had no room for.
        """
        for job in [j for j in self._jobs if j.future.done()]:
            job.pending.clear()  # cancelled by its caller: drop what is left
            self._jobs.remove(job)
        cap = self.units_per_job()
        taken: dict[int, int] = {}
        units: list[_Unit] = []
        progress = True
        while progress and len(units) < self.batch_size:
            progress = False
            for job in self._jobs:
                if len(units) >= self.batch_size:
                    break
                if job.pending and taken.get(id(job), 0) < cap:
                    units.append(job.pending.popleft())
                    taken[id(job)] = taken.get(id(job), 0) + 1
                    progress = True
        rest = [j for j in self._jobs if id(j) not in taken]
        gave = [j for j in self._jobs if id(j) in taken and j.pending]
        self._jobs = deque(rest + gave)
        return units

    async def _dispatch(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while self._available_units() == 0:
                self._wake.clear()
                await self._wake.wait()
            if self._available_units() < self.batch_size and self.batch_wait_s > 0:
                deadline = loop.time() + self.batch_wait_s
                while self._available_units() < self.batch_size:
                    timeout = deadline - loop.time()
                    if timeout <= 0:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), timeout)
                    except TimeoutError:
                        break
            units = self._take_batch()
            if not units:
                continue
            started = time.perf_counter()
            for unit in units:
                unit.job.timings.setdefault("queue", started - unit.job.enqueued)
            for job in {id(u.job): u.job for u in units}.values():
                job.tell("transcribe", len(job.transcripts) / max(job.n_units, 1))
            self._inflight_audio_s = sum(u.duration_s for u in units)
            try:
                finished = await loop.run_in_executor(self._executor, self._run_units, units)
            except Exception as exc:  # a model fault fails this batch's jobs, not the engine
                log.exception("inference failed for a batch of %d units", len(units))
                for job in {id(u.job): u.job for u in units}.values():
                    self._fail(job, exc)
                continue
            finally:
                self._inflight_audio_s = 0.0
            for job, result in finished:
                if isinstance(result, Exception):
                    self._fail(job, result)
                elif not job.future.done():
                    job.future.set_result(result)

    def _fail(self, job: Job, exc: Exception) -> None:
        """End a job with ``exc``, dropping the units it has not sent yet."""
        job.pending.clear()
        if job in self._jobs:
            self._jobs.remove(job)
        if not job.future.done():
            job.future.set_exception(exc)

    def _run_units(self, units: list[_Unit], *, warm_up: bool = False
                   ) -> list[tuple[Job, EngineResult | Exception]]:
        """Run each stage once over the batch (model thread); return the finished jobs.

        When a batch of several units fails, its units are retried one by one, so one
        clip that trips a model fails only its own job.
        """
        assert self.backends is not None
        b = self.backends
        t0 = time.perf_counter()
        failed: dict[int, Exception] = {}
        try:
            transcripts, voices, t1 = self._models(units)
        except Exception:
            if len(units) == 1:
                raise
            log.exception("a batch of %d units failed; retrying them one by one", len(units))
            transcripts, voices = [], []
            for unit in units:
                try:
                    tr, vo, _ = self._models([unit])
                except Exception as exc:
                    failed[id(unit.job)] = exc
                    tr, vo = [Transcript("", "")], [None]
                transcripts += tr
                voices += vo
            t1 = time.perf_counter()
        t2 = time.perf_counter()
        jobs: dict[int, Job] = {}
        for unit, transcript, voice in zip(units, transcripts, voices, strict=True):
            unit.job.transcripts[unit.index] = transcript
            unit.job.voices[unit.index] = voice
            jobs[id(unit.job)] = unit.job
        for job in jobs.values():
            job.timings["asr"] = job.timings.get("asr", 0.0) + (t1 - t0)
            job.timings["voice_emotion"] = job.timings.get("voice_emotion", 0.0) + (t2 - t1)
            job.timings["batch_size"] = float(len(units))
        results: list[tuple[Job, EngineResult | Exception]] = [
            (job, failed[id(job)]) for job in jobs.values() if id(job) in failed
        ]
        done = [j for j in jobs.values()
                if id(j) not in failed and len(j.transcripts) == j.n_units]
        joined = [
            join_transcripts([j.transcripts[i] for i in range(j.n_units)], j.weights)
            for j in done
        ]
        texts: list[TextReading | None] = [None] * len(done)
        if b.text is not None and done:
            texts = list(b.text.classify_batch([t.text for t in joined],
                                               [t.language for t in joined]))
        t3 = time.perf_counter()
        if not warm_up:
            audio_s = sum(u.duration_s for u in units) or 1.0
            self._rtf = 0.8 * self._rtf + 0.2 * ((t3 - t0) / audio_s)
        for job, transcript, text in zip(done, joined, texts, strict=True):
            timings = dict(job.timings)
            timings["text_emotion"] = t3 - t2
            voice = merge_voice([job.voices[i] for i in range(job.n_units)], job.weights)
            results.append((job, EngineResult(transcript=transcript, text=text, voice=voice,
                                              duration_s=job.audio.duration_s,
                                              timings=timings)))
        return results

    def _models(self, units: list[_Unit]
                ) -> tuple[list[Transcript], list[VoiceReading | None], float]:
        """ASR and voice emotion over the units; also returns when the ASR finished."""
        assert self.backends is not None
        b = self.backends
        transcripts = list(b.asr.transcribe_batch([u.samples for u in units]))
        t1 = time.perf_counter()
        for unit in units:
            # The job's last chunks are in this batch: what remains is its emotion.
            if not unit.job.pending and not unit.job.told_emotion:
                unit.job.told_emotion = True
                unit.job.tell_from_thread("emotion")
        voices: list[VoiceReading | None] = [None] * len(units)
        if getattr(b.voice, "from_transcripts", False):
            # SenseVoice read the emotion in its recognition pass (inference/asr_sensevoice.py).
            voices = [t.voice for t in transcripts]
        elif b.voice is not None:
            voices = list(voice_batch(b.voice, [u.samples for u in units],
                                      [u.job.audio.source_dbfs for u in units]))
        return transcripts, voices, t1


def _report_crash(task: asyncio.Task[None]) -> None:
    # The dispatcher only ends by cancellation; anything else is a bug worth a loud log
    # (infer() starts a new one, so the bots keep working).
    if not task.cancelled() and task.exception() is not None:
        log.error("the inference dispatcher stopped", exc_info=task.exception())


def use_every_core() -> None:
    """Let torch use every core this process may use, if a model loaded it.

    Only the full tier's models run on torch: the offline tier never imports it, which
    saves about 2 s of every start (``voicemood analyze`` included). CTranslate2 gets its
    threads from :func:`inference.backends.load_whisper`.
    """
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(cpu_threads())


def voice_batch(backend, clips: list[np.ndarray],
                levels_dbfs: list[float]) -> list[VoiceReading]:
    """The voice backend over a batch of clips (``levels_dbfs``: each clip's level before
    loudness normalisation, which the prosody backend reads)."""
    if getattr(backend, "uses_level", False):
        return backend.analyze_batch(clips, levels_dbfs=levels_dbfs)
    return backend.analyze_batch(clips)


def peak_rss_mb() -> float:
    """Peak resident memory of this process, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _gpu_memory_note(device: str) -> str:
    if not device.startswith("cuda"):
        return ""
    try:
        import torch

        index = int(device.split(":")[1]) if ":" in device else 0
        free, total = torch.cuda.mem_get_info(index)
        return f", GPU memory in use {(total - free) / 2**20:.0f} of {total / 2**20:.0f} MB"
    except Exception:  # pragma: no cover - informative only
        return ""
