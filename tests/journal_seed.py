"""Stored rows for the mood-journal tests (export, digest, privacy): seeded straight into
the SQLite history, because what those tests check is what happens to stored rows, not the
analysis that produced them."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from bot.analysis import Analysis, Sender
from bot.storage.history import HistoryStore
from inference.types import FusedEmotion, TextReading, VoiceReading


def row(platform: str, user: str, message_id: str, created_at: float, transcript: str,
        label: str = "neutral", *, language: str = "en", valence: float = 0.0,
        confidence: float = 0.8, arousal: float = 0.4, duration_s: float = 4.0,
        text_label: str | None = None, voice_label: str | None = "calm",
        chat: str | None = None) -> tuple[Sender, Analysis]:
    """One analysis as the pipeline stores it, sent by ``user`` (in their private chat)."""
    emotion = FusedEmotion(
        label=label, confidence=confidence, valence=valence, arousal=arousal,
        text=TextReading(text_label or label, {text_label or label: confidence}, "lexicon"),
        voice=None if voice_label is None else VoiceReading(voice_label, 0.3,
                                                            {voice_label: 0.7}, "prosody"),
    )
    analysis = Analysis(transcript=transcript, language=language, duration_s=duration_s,
                        emotion=emotion, models={"asr": "whisper-base"}, timings={},
                        audio_sha256="ab" * 32, created_at=created_at)
    return Sender(platform, user, chat or user, message_id), analysis


async def seed(store: HistoryStore, rows: list[tuple[Sender, Analysis]]) -> None:
    """Store ``rows`` in one transaction."""
    assert await store.add_many(rows) == len(rows)


class FakeClock:
    """A :class:`bot.clock.Clock` that only moves when the test calls :meth:`advance`.

    ``sleep`` returns once the clock has been advanced past its end; :meth:`settled`
    waits until ``n`` jobs are asleep again, i.e. have finished what the last move made due.
    """

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._moved = asyncio.Condition()
        self._sleeping: list[datetime] = []

    def now(self) -> datetime:
        return self._now

    async def sleep(self, seconds: float) -> None:
        until = self._now + timedelta(seconds=seconds)
        async with self._moved:
            self._sleeping.append(until)
            self._moved.notify_all()  # wakes settled(), which waits for this job to sleep
            try:
                await self._moved.wait_for(lambda: self._now >= until)
            finally:
                self._sleeping.remove(until)

    async def advance(self, to: datetime) -> None:
        """Move the clock to ``to`` and wake the jobs whose sleep has ended."""
        assert to >= self._now
        async with self._moved:
            self._now = to
            self._moved.notify_all()

    async def settled(self, n: int = 1, within: float = 10.0) -> None:
        """Wait until ``n`` jobs sleep towards a time still ahead: whatever the last move
        made due has been done."""
        async with asyncio.timeout(within), self._moved:
            await self._moved.wait_for(
                lambda: sum(until > self._now for until in self._sleeping) >= n)


def stored_rows(tmp_path: Path) -> list[tuple]:
    """``(user_id, chat_id, message_id, transcript)`` of every stored analysis, in order, read
    straight from the SQLite file the test's service wrote (``tmp_path/voicemood.db``)."""
    con = sqlite3.connect(tmp_path / "voicemood.db")
    try:
        return con.execute("SELECT user_id, chat_id, message_id, transcript FROM analyses"
                           " ORDER BY id").fetchall()
    finally:
        con.close()
