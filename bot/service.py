"""The platform-free analysis service every front end calls.

``analyze(audio bytes, sender) -> Analysis``: decode, run the shared engine, fuse, store.
A message seen before (same platform, chat and message id) is answered from the history
without new work; the same audio bytes seen before are answered from an in-memory cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import replace

from bot.analysis import Analysis, Sender
from bot.store import HistoryStore
from inference.audio import decode_audio
from inference.engine import InferenceEngine
from inference.errors import NoSpeech
from inference.fusion import fuse

log = logging.getLogger(__name__)


class AnalysisService:
    """Analyse voice notes and keep the history. One instance per process."""

    def __init__(self, settings, engine: InferenceEngine, store: HistoryStore) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self._cache: OrderedDict[str, Analysis] = OrderedDict()
        self._inflight: dict[tuple[str, str, str], asyncio.Future[Analysis]] = {}

    @classmethod
    async def create(cls, settings, engine: InferenceEngine | None = None) -> AnalysisService:
        """Open the history and start (loading models into) the engine."""
        store = await HistoryStore.open(settings.db)
        engine = engine or InferenceEngine(settings)
        await engine.start()
        return cls(settings, engine, store)

    async def close(self, *, close_engine: bool = True) -> None:
        """Release the database and, unless shared, the engine."""
        await self.store.close()
        if close_engine:
            await self.engine.close()

    async def analyze(self, audio: bytes, sender: Sender) -> Analysis:
        """Analyse one voice note from ``sender`` and record it in their history.

        Raises an :class:`~inference.errors.InputError` subclass for audio that cannot be
        analysed and :class:`~inference.errors.Busy` when the engine's queue is full.
        A redelivered message returns the stored analysis with ``duplicate=True``.
        """
        key = (sender.platform, str(sender.chat_id), str(sender.message_id))
        stored = await self.store.get_by_message(*key)
        if stored is not None:
            stored.duplicate = True
            return stored
        pending = self._inflight.get(key)
        if pending is not None:
            # The same message is being analysed right now (a retry raced the original).
            result = await asyncio.shield(pending)
            return replace(result, duplicate=True)
        future: asyncio.Future[Analysis] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            analysis = await self._analyze_and_store(audio, sender)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        else:
            future.set_result(analysis)
            return analysis
        finally:
            del self._inflight[key]

    async def _analyze_and_store(self, audio: bytes, sender: Sender) -> Analysis:
        analysis = await self.analyze_bytes(audio)
        analysis.created_at = time.time()
        if not await self.store.add(sender, analysis):
            existing = await self.store.get_by_message(
                sender.platform, str(sender.chat_id), str(sender.message_id)
            )
            if existing is not None:
                existing.duplicate = True
                return existing
        return analysis

    async def analyze_bytes(self, audio: bytes) -> Analysis:
        """Analyse audio without storing it (cached by the hash of the bytes)."""
        digest = hashlib.sha256(audio).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return replace(cached, timings={**cached.timings, "cached": 1.0}, id=None,
                           sender=None, duplicate=False)
        s = self.settings
        t0 = time.perf_counter()
        decoded = await decode_audio(audio, max_bytes=s.max_audio_bytes,
                                     max_seconds=s.max_audio_seconds,
                                     timeout_s=s.decode_timeout_s)
        t1 = time.perf_counter()
        result = await self.engine.infer(decoded)
        t2 = time.perf_counter()
        if not result.transcript.text.strip():
            raise NoSpeech("No speech was recognised in this recording.")
        emotion = fuse(result.text, result.voice)
        timings = {"decode": t1 - t0, **result.timings, "total": t2 - t0}
        analysis = Analysis(
            transcript=result.transcript.text.strip(),
            language=result.transcript.language,
            duration_s=decoded.duration_s,
            emotion=emotion,
            models=self.engine.models(),
            timings=timings,
            audio_sha256=digest,
        )
        if s.cache_size > 0:
            self._cache[digest] = analysis
            while len(self._cache) > s.cache_size:
                self._cache.popitem(last=False)
        return replace(analysis)
