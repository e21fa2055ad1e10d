"""From the bytes a user sent to a transcript and a mood tag: admission, decode, models, fusion.

:meth:`Pipeline.run` is what every front end ends in (through ``AnalysisService``), and it
decides *before any work* whether a note can be taken:

1. Size limits, then the duration the container declares (ffprobe, ~50 ms, no decoding).
   A note longer than the limit is refused here.
2. Admission: the note is admitted only while fewer than ``queue_size`` notes and fewer
   than ``queue_audio_seconds`` seconds of audio (estimated) are admitted and unanswered;
   otherwise :class:`~inference.errors.Busy` with an estimate of the wait. The reservation
   is released however the note ends (answer, refusal, fault or cancellation).
3. An admitted note waits *compressed* (as the bytes it arrived in) for a turn: at most
   :attr:`Pipeline.held_limit` notes are decoded and not yet answered, and at most
   ``decode_slots`` (one per core) ffmpeg processes run at once. So memory follows those
   two numbers, not the number of notes in flight: a decoded 10-minute note is 38 MB of
   float32 samples, its compressed form ~2 MB.
4. The engine batches the decoded audio with other notes' (see inference/engine.py).
5. No words -> :class:`~inference.errors.NoSpeech`; otherwise the readings are fused.

The result is a :class:`PipelineResult`, which ``to_json``/``from_json`` carry through a
Celery queue unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from inference.audio import check_size, decode_audio, probe_seconds, too_long
from inference.config import InferenceConfig
from inference.engine import InferenceEngine
from inference.errors import Busy, NoSpeech
from inference.fusion import fuse
from inference.stages import OnStage, tell
from inference.types import FusedEmotion, TextReading, VoiceReading

log = logging.getLogger(__name__)

#: Bytes per second assumed for a container that declares no duration: 16 kbit/s, below
#: any voice codec's usual rate, so the estimate errs long rather than short.
MIN_BYTES_PER_S = 2_000
#: Extra seconds the decoder reads past the limit, so "too long" is still detectable.
_LIMIT_SLACK_S = 1.0


@dataclass
class PipelineResult:
    """Transcript and emotion of one note, before it is tied to a sender or stored."""

    transcript: str
    language: str
    duration_s: float
    emotion: FusedEmotion
    models: dict[str, str]
    timings: dict[str, float]
    audio_sha256: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict that :meth:`from_json` turns back into an equal result."""
        emo = self.emotion
        return {
            "transcript": self.transcript,
            "language": self.language,
            "duration_s": self.duration_s,
            "emotion": {
                "label": emo.label,
                "confidence": emo.confidence,
                "valence": emo.valence,
                "arousal": emo.arousal,
                "text": None if emo.text is None else {
                    "label": emo.text.label, "scores": dict(emo.text.scores),
                    "model": emo.text.model,
                },
                "voice": None if emo.voice is None else {
                    "label": emo.voice.label, "arousal": emo.voice.arousal,
                    "scores": dict(emo.voice.scores), "model": emo.voice.model,
                    "valence": emo.voice.valence,
                },
            },
            "models": dict(self.models),
            "timings": dict(self.timings),
            "audio_sha256": self.audio_sha256,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PipelineResult:
        """Inverse of :meth:`to_json`."""
        emo = data["emotion"]
        text, voice = emo.get("text"), emo.get("voice")
        return cls(
            transcript=data["transcript"],
            language=data["language"],
            duration_s=float(data["duration_s"]),
            emotion=FusedEmotion(
                label=emo["label"],
                confidence=float(emo["confidence"]),
                valence=float(emo["valence"]),
                arousal=float(emo["arousal"]),
                text=None if text is None else TextReading(
                    label=text["label"], scores=dict(text["scores"]), model=text["model"]),
                voice=None if voice is None else VoiceReading(
                    label=voice["label"], arousal=float(voice["arousal"]),
                    scores=dict(voice["scores"]), model=voice["model"],
                    valence=voice.get("valence")),
            ),
            models=dict(data["models"]),
            timings={k: float(v) for k, v in data["timings"].items()},
            audio_sha256=data["audio_sha256"],
        )


class Pipeline:
    """Admission, bounded decoding, the shared engine and fusion for one process."""

    def __init__(self, config: InferenceConfig, engine: InferenceEngine | None = None) -> None:
        self.config = InferenceConfig.coerce(config)
        self.engine = engine if engine is not None else InferenceEngine(self.config)
        self.decode_slots = self.config.decode_slots
        #: Notes decoded (or decoding) and not yet answered: bounds the float32 audio held.
        #: One batch to run plus one per decoder, so the models never wait for a decode.
        self.held_limit = max(self.config.batch_size, 1) + self.decode_slots
        self._decodes = asyncio.Semaphore(self.decode_slots)
        self._held = asyncio.Semaphore(self.held_limit)
        # ffprobe takes ~50 ms: as many at once as decodes keeps the child processes few.
        self._probes = asyncio.Semaphore(self.decode_slots)
        self._admitted_jobs = 0
        self._admitted_s = 0.0

    async def start(self) -> None:
        """Load the models (once) and start the engine."""
        await self.engine.start()

    async def close(self) -> None:
        """Stop the engine; notes still running are cancelled."""
        await self.engine.close()

    def models(self) -> dict[str, str]:
        """Component -> model id, as recorded with every analysis."""
        return self.engine.models()

    def _note_models(self, asr_model: str) -> dict[str, str]:
        """The process's models, with the recogniser that answered this note as ``asr``
        (language routing may have sent it to the offline Whisper)."""
        models = self.models()
        if asr_model:
            models["asr"] = asr_model
        return models

    # --- admission --------------------------------------------------------------------------

    @property
    def admitted_jobs(self) -> int:
        """Notes admitted and not yet answered."""
        return self._admitted_jobs

    @property
    def admitted_seconds(self) -> float:
        """Estimated seconds of audio admitted and not yet answered."""
        return self._admitted_s

    def estimated_wait_s(self) -> float:
        """Rough wait for a new note: the audio admitted ahead of it at the measured speed."""
        return self._admitted_s * self.engine.rtf + 1.0

    def _busy(self) -> Busy:
        wait = self.estimated_wait_s()
        return Busy(f"voicemood is busy right now; please try again in about {wait:.0f} s.",
                    retry_after_s=wait)

    def _full(self, seconds: float) -> bool:
        c = self.config
        if self._admitted_jobs >= c.queue_size:
            return True
        # One note is always let in when nothing else is, however long it is.
        return self._admitted_jobs > 0 and self._admitted_s + seconds > c.queue_audio_seconds

    async def _estimate_seconds(self, audio: bytes) -> float:
        """The declared duration, or a long-side guess from the size when there is none."""
        async with self._probes:
            declared = await probe_seconds(audio, timeout_s=self.config.decode_timeout_s)
        if declared is None:
            guess = len(audio) / MIN_BYTES_PER_S
            return min(max(guess, 1.0), self.config.max_audio_seconds)
        return declared

    @contextlib.asynccontextmanager
    async def _admission(self, seconds: float) -> AsyncIterator[list[float]]:
        """Reserve a place for a note of ``seconds``; the yielded cell can correct it."""
        if self._full(seconds):
            raise self._busy()
        reserved = [seconds]
        self._admitted_jobs += 1
        self._admitted_s += seconds
        try:
            yield reserved
        finally:
            self._admitted_jobs -= 1
            # Exactly zero when idle, so float residue never accumulates into a "queue".
            self._admitted_s = 0.0 if self._admitted_jobs == 0 else max(
                0.0, self._admitted_s - reserved[0])

    def _correct(self, reserved: list[float], seconds: float) -> None:
        self._admitted_s += seconds - reserved[0]
        reserved[0] = seconds

    # --- one note -----------------------------------------------------------------------------

    async def run(self, audio: bytes, on_stage: OnStage | None = None) -> PipelineResult:
        """Analyse one note. Raises Busy, an InputError subclass, or a model fault.

        ``on_stage`` is told each stage of :data:`inference.stages.STAGES` as the note
        enters it: ``probe``, ``decode``, ``queue`` (waiting for a batch), then, from the
        engine, ``transcribe`` and ``emotion``.
        """
        c = self.config
        t0 = time.perf_counter()
        tell(on_stage, "probe")
        check_size(audio, c.max_audio_bytes)
        digest = hashlib.sha256(audio).hexdigest()
        if self._full(0.0):  # no probe either when the queue is full by count
            raise self._busy()
        estimate = await self._estimate_seconds(audio)
        if estimate > c.max_audio_seconds + _LIMIT_SLACK_S:
            raise too_long(c.max_audio_seconds)
        t_probe = time.perf_counter()
        async with self._admission(estimate) as reserved:
            async with self._held:
                async with self._decodes:
                    t_turn = time.perf_counter()
                    tell(on_stage, "decode")
                    decoded = await decode_audio(audio, max_bytes=c.max_audio_bytes,
                                                 max_seconds=c.max_audio_seconds,
                                                 timeout_s=c.decode_timeout_s)
                self._correct(reserved, decoded.duration_s)
                t_decoded = time.perf_counter()
                tell(on_stage, "queue")
                result = await self.engine.infer(decoded, on_stage=on_stage)
                del decoded  # the samples are no longer needed once the models are done
        duration = result.duration_s
        if not result.transcript.text.strip():
            raise NoSpeech("No speech was recognised in this recording.")
        timings = {
            "probe": t_probe - t0,
            "wait_decode": t_turn - t_probe,
            "decode": t_decoded - t_turn,
            **result.timings,
            "total": time.perf_counter() - t0,
        }
        return PipelineResult(
            transcript=result.transcript.text.strip(),
            language=result.transcript.language,
            duration_s=duration,
            emotion=fuse(result.text, result.voice),
            models=self._note_models(result.transcript.model),
            timings=timings,
            audio_sha256=digest,
        )
