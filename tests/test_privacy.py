"""Privacy mode and retention (bot/privacy.py, the hooks in bot/service.py): what reaches
the SQLite file when a person turned transcripts off, and which rows the retention purge
deletes -- at start, and a day later on a fake clock."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.analysis import Sender
from bot.core.service import AnalysisService
from bot.journal.operations import Journal
from bot.journal.privacy import Retention, purge_expired
from bot.storage.history import HistoryStore
from tests.audio_factory import speech_file
from tests.conftest import make_settings
from tests.journal_seed import FakeClock, row, seed

DAY = 24 * 3600.0
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC).timestamp()


def _rows(db: Path) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT user_id, message_id, transcript, audio_sha256, label,"
                           " text_label FROM analyses ORDER BY id").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_file(tmp_path_factory.mktemp("privacy"), "I am so happy today.",
                       "ogg", name="happy").read_bytes()


async def test_transcripts_off_stores_tags_and_scores_but_no_transcript(
        tmp_path, engine, clip):
    settings = make_settings(tmp_path)
    service = await AnalysisService.create(settings, engine=engine)
    try:
        journal = Journal(service)
        assert await journal.privacy("telegram", "1001", ["transcripts", "off"], "en") == (
            "Transcripts off: from now on I keep only the tags and scores of your notes. My "
            "replies still show what I heard. Notes stored before keep their transcript until "
            "you use /forget.")
        alice = await service.analyze(clip, Sender("telegram", "1001", "1001", "1"))
        bob = await service.analyze(clip, Sender("telegram", "1002", "1002", "2"))
        # The reply is made from what was heard, whatever is kept.
        assert "happy" in alice.transcript.lower()
        assert alice.id is not None and alice.sender == Sender("telegram", "1001", "1001", "1")
        # A redelivery is answered from the row: without the transcript, never re-analysed.
        again = await service.analyze(clip, Sender("telegram", "1001", "1001", "1"))
        assert (again.duplicate, again.transcript) == (True, "")

        await journal.privacy("telegram", "1001", ["transcripts", "on"], "en")
        later = await service.analyze(clip, Sender("telegram", "1001", "1001", "3"))
        assert "happy" in later.transcript.lower()
    finally:
        await service.close(close_engine=False)
    rows = _rows(tmp_path / "voicemood.db")
    assert [(r[0], r[1]) for r in rows] == [("1001", "1"), ("1002", "2"), ("1001", "3")]
    assert (rows[0][2], rows[0][3]) == ("", "")  # no transcript, no audio fingerprint
    assert (rows[0][4], rows[0][5]) == (bob.label, bob.emotion.text.label)  # tags kept
    assert "happy" in rows[1][2].lower() and len(rows[1][3]) == 64  # Bob's choice: default
    assert "happy" in rows[2][2].lower()


async def test_privacy_command_says_what_is_kept(tmp_path):
    store = await HistoryStore.open(tmp_path / "voicemood.db")
    try:
        journal = Journal(SimpleNamespace(store=store,
                                          settings=make_settings(tmp_path, retention_days=90)))
        assert await journal.privacy("telegram", "1001", [], "en") == (
            "What I keep about you, for each voice note: its time, length and language, the "
            "mood tag with its confidence, valence and arousal, and the word and voice "
            "readings, plus the transcript. Never the audio.\n\n"
            "Analyses older than 90 days are deleted automatically.\n\n"
            "Weekly digest: off.\n\n"
            "/privacy transcripts off|on changes what is kept for new notes; /forget deletes "
            "everything.")
        await store.journal.set_keep_transcripts("telegram", "1001", False)
        await journal.digest("telegram", "1001", "1001", ["on", "fri", "08:00"], "en")
        text = await journal.privacy("slack", "1001", [], "en", cmd="/voicemood privacy",
                                     forget="/voicemood forget")
        assert ", plus the transcript" in text  # another platform's choice is not this one
        assert await journal.privacy("telegram", "1001", [], "zh") == (
            "每条语音我保存：时间、时长、语言、情绪标签及其置信度、效价和激活度，以及文字和声音"
            "两方面的判断——但不保存转写：你已关闭转写保存（回复中仍会显示；之前的记录保留原有"
            "转写）。从不保存音频。\n\n"
            "超过 90 天的分析会被自动删除。\n\n"
            "每周摘要：开启（周五 08:00，UTC）。\n\n"
            "/privacy transcripts off|on 更改新语音保存的内容；/forget 删除全部内容。")
        assert await journal.privacy("telegram", "1001", ["transcripts"], "en") == (
            "Use /privacy to see what I keep, or /privacy transcripts off|on.")
    finally:
        await store.close()


async def test_retention_deletes_exactly_the_rows_past_the_limit(tmp_path):
    store = await HistoryStore.open(tmp_path / "voicemood.db")
    try:
        await seed(store, [
            row("telegram", "1001", "old", NOW - 30 * DAY - 1, "31 days old"),
            row("telegram", "1002", "bob-old", NOW - 400 * DAY, "Bob, long ago"),
            row("slack", "U1", "edge", NOW - 30 * DAY, "exactly 30 days old"),
            row("telegram", "1001", "new", NOW - 29 * DAY, "29 days old"),
            row("telegram", "1002", "today", NOW - 60, "a minute ago"),
        ])
        assert await purge_expired(store, 0, NOW) == 0  # 0 keeps everything
        assert await purge_expired(store, 30, NOW) == 2
        assert [r[1] for r in _rows(tmp_path / "voicemood.db")] == ["edge", "new", "today"]
    finally:
        await store.close()


async def test_retention_runs_at_service_start(tmp_path, engine):
    db = tmp_path / "voicemood.db"
    now = time.time()
    async with await HistoryStore.open(db) as store:
        await seed(store, [row("telegram", "1001", "old", now - 8 * DAY, "old"),
                           row("telegram", "1001", "new", now - 6 * DAY, "new")])
    service = await AnalysisService.create(make_settings(tmp_path, retention_days=7),
                                           engine=engine)
    try:
        assert [r[1] for r in _rows(db)] == ["new"]
    finally:
        await service.close(close_engine=False)


async def test_retention_runs_again_every_day(tmp_path):
    store = await HistoryStore.open(tmp_path / "voicemood.db")
    clock = FakeClock(datetime.fromtimestamp(NOW, UTC))
    retention = Retention(store, 7, clock)
    try:
        await seed(store, [row("telegram", "1001", "a", NOW - 7.5 * DAY, "gone at start"),
                           row("telegram", "1001", "b", NOW - 6.5 * DAY, "gone a day later"),
                           row("telegram", "1001", "c", NOW - 5.5 * DAY, "gone in two days")])
        assert await retention.start() == 1
        await clock.settled()
        assert [r[1] for r in _rows(tmp_path / "voicemood.db")] == ["b", "c"]
        await clock.advance(datetime.fromtimestamp(NOW, UTC) + timedelta(hours=23))
        await clock.settled()
        assert [r[1] for r in _rows(tmp_path / "voicemood.db")] == ["b", "c"]
        await clock.advance(datetime.fromtimestamp(NOW, UTC) + timedelta(days=1))
        await clock.settled()
        assert [r[1] for r in _rows(tmp_path / "voicemood.db")] == ["c"]
    finally:
        await retention.stop()
        await store.close()
