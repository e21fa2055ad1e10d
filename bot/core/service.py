"""The platform-free analysis service every front end calls.

``analyze(audio bytes, sender) -> Analysis``: decode, run the shared engine, fuse, store.
A message seen before (same platform, chat and message id) is answered from the history
without new work; the same audio bytes seen before are answered from an in-memory cache.

Front ends never touch the history store: they read it through :meth:`history`,
:meth:`count`, :meth:`forget` and :meth:`trend`, and they ask :meth:`claim` whether a
delivery is new, already answered, or being handled right now (the one place that decides
about redeliveries).

Rows are written as the person chose (``/privacy transcripts off``: no transcript, see
:mod:`bot.journal.privacy`), and ``VOICEMOOD_RETENTION_DAYS`` purges old ones from :meth:`create`
on, daily, until :meth:`close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from bot.analysis import Analysis, Sender
from bot.journal.privacy import Retention, add_as_chosen
from bot.storage.history import HistoryStore
from bot.trend.summary import TrendReport, build_trend
from inference.arousal_baseline import fuse_with_baseline
from inference.config import InferenceConfig
from inference.engine import InferenceEngine
from inference.pipeline import Pipeline
from inference.stages import OnStage

if TYPE_CHECKING:
    from bot.ops.settings import Settings

log = logging.getLogger(__name__)

#: Deliveries remembered after they were handled without storing anything (refusals), so
#: a redelivery of a refused note is not refused twice.
REMEMBERED_DELIVERIES = 4096
#: How many of a person's latest notes make their voice baseline (inference.arousal_baseline).
BASELINE_NOTES = 30

_Key = tuple[str, str, str]


def _key(sender: Sender) -> _Key:
    return (sender.platform, str(sender.chat_id), str(sender.message_id))


@dataclass
class Claim:
    """What :meth:`AnalysisService.claim` found out about one delivery.

    ``in_flight``: another handler holds this message right now; leave it to that one.
    ``stored``: the message was analysed before (``duplicate=True``).
    ``handled_before``: it was answered before, stored or refused.
    Otherwise the holder is the one handler of this message until the ``async with`` ends.
    """

    sender: Sender
    in_flight: bool = False
    stored: Analysis | None = None
    handled_before: bool = False
    _service: AnalysisService | None = None
    _result: Analysis | None = None
    _pending: asyncio.Future[Analysis | None] | None = None

    @property
    def new(self) -> bool:
        """Whether this is the first delivery of the message and this handler owns it."""
        return not self.in_flight and not self.handled_before

    async def settled(self) -> Analysis | None:
        """The stored analysis, once the handler holding the message (``in_flight``) is done:
        None when it refused the note or failed."""
        if self._pending is None:
            return self.stored
        with contextlib.suppress(Exception):
            return await asyncio.shield(self._pending)
        return None

    async def analyze(self, audio: bytes, on_stage: OnStage | None = None) -> Analysis:
        """Analyse and store the note of the claimed message (see ``AnalysisService.analyze``)."""
        assert self._service is not None and not self.in_flight, "not the holder of this claim"
        self._result = await self._service._analyze_and_store(audio, self.sender, on_stage)
        return self._result


class AnalysisService:
    """Analyse voice notes and keep the history. One instance per process."""

    def __init__(self, settings: Settings, engine: InferenceEngine, store: HistoryStore) -> None:
        self.settings = settings
        self.engine = engine
        self.store = store
        self._cache: OrderedDict[str, Analysis] = OrderedDict()
        #: Deliveries being handled: their future ends with the analysis (None: refused).
        self._inflight: dict[_Key, asyncio.Future[Analysis | None]] = {}
        self._handled: OrderedDict[_Key, None] = OrderedDict()
        #: VOICEMOOD_RETENTION_DAYS: purged in create(), then daily until close().
        self.retention = Retention(store, settings.retention_days)

    @classmethod
    async def create(cls, settings: Settings, engine: InferenceEngine | None = None,
                     pipeline: Pipeline | None = None) -> AnalysisService:
        """Open the history and start the pipeline (loading models into its engine).

        ``engine``: share an already loaded engine; ``pipeline``: any object with
        ``start/close/models/run`` instead of the in-process one (the composition root hands
        in the Celery front end in scale-out mode, see :mod:`app.wiring`).
        """
        store = await HistoryStore.open(settings.db)
        if pipeline is None:
            # Only the inference settings travel on: no token reaches model code.
            pipeline = Pipeline(InferenceConfig.from_settings(settings), engine=engine)
        try:
            await pipeline.start()
        except BaseException:
            # The store's connection runs on a non-daemon thread: left open, it kept the
            # interpreter from exiting after a failed model load (the process hung after
            # its traceback, deaf to Ctrl-C). The caller never gets the service to close.
            await store.close()
            raise
        service = cls(settings, getattr(pipeline, "engine", None), store)
        service.pipeline = pipeline
        await service.retention.start()
        return service

    async def close(self, *, close_engine: bool = True) -> None:
        """Release the database and, unless shared, the engine."""
        await self.retention.stop()
        await self.store.close()
        if close_engine:
            # The pipeline closes its engine; a remote pipeline (workers/) has none here.
            await self.pipeline.close()

    async def analyze(self, audio: bytes, sender: Sender,
                      on_stage: OnStage | None = None) -> Analysis:
        """Analyse one voice note from ``sender`` and record it in their history.

        ``on_stage`` is told each stage the note enters (:data:`inference.stages.STAGES`),
        for a progress display.

        Raises an :class:`~inference.errors.InputError` subclass for audio that cannot be
        analysed and :class:`~inference.errors.Busy` when the engine's queue is full.
        A redelivered message returns the stored analysis with ``duplicate=True``; one
        racing the original waits for it (and gets its result or its error).
        """
        while True:
            async with self.claim(sender) as claim:
                if claim.stored is not None:
                    return claim.stored
                if not claim.in_flight:
                    return await claim.analyze(audio, on_stage)
                assert claim._pending is not None
                pending = claim._pending
            result = await asyncio.shield(pending)
            if result is not None:
                return replace(result, duplicate=True)
            # The other handler stored nothing without failing: try on our own.

    @contextlib.asynccontextmanager
    async def claim(self, sender: Sender) -> AsyncIterator[Claim]:
        """Decide whether a delivery is new, answered before, or being handled right now.

        Hold the claim (``async with``) for as long as the message is handled, from the first
        reply to the last, so a redelivery racing it is recognised. A claim that ends without
        an error is remembered, so a redelivered refusal is not answered twice.
        """
        key = _key(sender)
        if key in self._inflight:
            yield Claim(sender, in_flight=True, _pending=self._inflight[key])
            return
        # Registered before the first await: concurrent handlers interleave there.
        future: asyncio.Future[Analysis | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        claim = Claim(sender, _service=self)
        try:
            stored = await self.store.get_by_message(*key)
            if stored is not None:
                stored.duplicate = True
                claim.stored, claim.handled_before = stored, True
            else:
                claim.handled_before = key in self._handled
            yield claim
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: nobody may be waiting
            raise
        else:
            future.set_result(claim._result or claim.stored)
            self._remember(key)
        finally:
            del self._inflight[key]

    def _remember(self, key: _Key) -> None:
        self._handled[key] = None
        self._handled.move_to_end(key)
        while len(self._handled) > REMEMBERED_DELIVERIES:
            self._handled.popitem(last=False)

    async def history(self, platform: str, user_id: str, limit: int = 5) -> list[Analysis]:
        """The user's latest ``limit`` analyses, newest first (only theirs)."""
        return await self.store.recent(platform, str(user_id), limit)

    async def count(self, platform: str, user_id: str) -> int:
        """How many analyses are stored for the user."""
        return await self.store.count(platform, str(user_id))

    async def holds_anything(self, platform: str, user_id: str) -> bool:
        """Whether anything is stored about the user (analyses, a pending note, a digest
        schedule, a privacy choice): ``/forget`` has something to delete."""
        return await self.store.holds_anything(platform, str(user_id))

    async def forget(self, platform: str, user_id: str) -> int:
        """Delete everything stored about the user; returns how many analyses went."""
        deleted = await self.store.forget(platform, str(user_id))
        log.info("forgot %d analyses of a %s user", deleted, platform)
        return deleted

    async def trend(self, platform: str, user_id: str, days: int,
                    lang: str = "en") -> TrendReport:
        """The user's mood trend over the last ``days`` days, in ``settings.tz``.

        Raises :class:`ValueError` for a period outside 1..365 days.
        """
        return await build_trend(self.store, platform, str(user_id), days=days,
                                 tz=self.settings.tz, lang=lang)

    async def _analyze_and_store(self, audio: bytes, sender: Sender,
                                 on_stage: OnStage | None = None) -> Analysis:
        return await self.record(await self.analyze_bytes(audio, on_stage), sender)

    async def record(self, analysis: Analysis, sender: Sender) -> Analysis:
        """Read ``analysis`` (fresh from :meth:`analyze_bytes`) against the sender's usual
        voice and store it in their history, as :meth:`analyze` does after the models.

        For a caller that analyses many notes of one sender at once and records them in
        order (``voicemood analyze``): each note's tag is then read against the notes
        recorded before it, exactly as if they had come one by one.
        """
        # The tag is read against the person's own usual voice (a lively speaker is not
        # always excited); analyze_bytes returned a copy, so the cache keeps the plain one.
        past = await self.store.recent(sender.platform, str(sender.user_id), BASELINE_NOTES)
        analysis.emotion = fuse_with_baseline(
            analysis.emotion, [a.emotion.voice.arousal for a in past if a.emotion.voice])
        analysis.created_at = time.time()
        # Stored as the person chose (/privacy transcripts off: no transcript).
        if not await add_as_chosen(self.store, sender, analysis):
            # Another process sharing the database stored this message meanwhile.
            existing = await self.store.get_by_message(*_key(sender))
            if existing is not None:
                existing.duplicate = True
                return existing
        return analysis

    async def analyze_bytes(self, audio: bytes, on_stage: OnStage | None = None) -> Analysis:
        """Analyse audio without storing it (cached by the hash of the bytes; a cached note
        goes through no stage)."""
        digest = hashlib.sha256(audio).hexdigest()
        cached = self._cache.get(digest)
        if cached is not None:
            self._cache.move_to_end(digest)
            return replace(cached, timings={**cached.timings, "cached": 1.0}, id=None,
                           sender=None, duplicate=False)
        s = self.settings
        result = await self.pipeline.run(audio, on_stage=on_stage)
        analysis = Analysis(
            transcript=result.transcript,
            language=result.language,
            duration_s=result.duration_s,
            emotion=result.emotion,
            models=result.models,
            timings=result.timings,
            audio_sha256=result.audio_sha256,
        )
        if s.cache_size > 0:
            self._cache[digest] = analysis
            while len(self._cache) > s.cache_size:
                self._cache.popitem(last=False)
        return replace(analysis)
