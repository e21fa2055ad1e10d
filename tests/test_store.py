"""bot.storage.history: the SQLite history on disk."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from bot.analysis import Analysis, Sender
from bot.storage.history import SCHEMA_VERSION, HistoryStore
from inference.types import FusedEmotion, TextReading, VoiceReading
from tests.conftest import sqlite_threads


def make_analysis(label: str = "positive", transcript: str = "hello", created: float = 1000.0,
                  valence: float = 0.5) -> Analysis:
    emotion = FusedEmotion(
        label=label, confidence=0.8, valence=valence, arousal=0.4,
        text=TextReading(label, {"positive": 0.7, "negative": 0.1, "neutral": 0.2,
                                 "excited": 0.0}, "lex"),
        voice=VoiceReading("calm", 0.3, {"calm": 0.9, "moderate": 0.1, "agitated": 0.0}, "pros"),
    )
    return Analysis(transcript=transcript, language="en", duration_s=3.5, emotion=emotion,
                    models={"asr": "whisper"}, timings={"asr": 1.0}, audio_sha256="ab",
                    created_at=created)


async def test_schema_wal_and_index(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "h.db"
    async with await HistoryStore.open(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
    with contextlib.closing(sqlite3.connect(path)) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        plan = con.execute(
            "EXPLAIN QUERY PLAN SELECT * FROM analyses WHERE platform='t' AND user_id='u'"
            " AND created_at >= 0 AND created_at < 10").fetchall()
    assert "idx_analyses_user_time" in " ".join(str(r) for r in plan)


async def test_round_trip_and_redelivery(tmp_path: Path) -> None:
    async with await HistoryStore.open(tmp_path / "h.db") as store:
        sender = Sender("telegram", "7", "42", "100")
        a = make_analysis(transcript="first")
        assert await store.add(sender, a) is True
        assert a.id is not None
        # The same message again (a redelivery) is ignored, not duplicated, not overwritten.
        assert await store.add(sender, make_analysis(transcript="second")) is False
        assert await store.count("telegram", "7") == 1
        got = await store.get_by_message("telegram", "42", "100")
        assert got is not None
        assert got.transcript == "first"
        assert got.emotion.text is not None and got.emotion.text.scores["positive"] == 0.7
        assert got.emotion.voice is not None and got.emotion.voice.label == "calm"
        assert got.sender == sender
        assert got.models == {"asr": "whisper"}
        # Same message id in another chat is another message.
        assert await store.add(Sender("telegram", "7", "43", "100"), make_analysis()) is True


async def test_users_are_isolated_and_forget(tmp_path: Path) -> None:
    async with await HistoryStore.open(tmp_path / "h.db") as store:
        for i in range(3):
            await store.add(Sender("telegram", "alice", "1", f"a{i}"),
                            make_analysis(created=1000 + i))
        await store.add(Sender("telegram", "bob", "1", "b0"), make_analysis("negative"))
        await store.add(Sender("slack", "alice", "C1", "F1"), make_analysis("excited"))
        recent = await store.recent("telegram", "alice", 2)
        assert [a.created_at for a in recent] == [1002, 1001]
        assert all(a.sender and a.sender.user_id == "alice" for a in recent)
        assert await store.forget("telegram", "alice") == 3
        assert await store.count("telegram", "alice") == 0
        assert await store.count("telegram", "bob") == 1
        assert await store.count("slack", "alice") == 1


async def test_between_is_half_open(tmp_path: Path) -> None:
    async with await HistoryStore.open(tmp_path / "h.db") as store:
        for i, ts in enumerate([100.0, 200.0, 300.0]):
            await store.add(Sender("cli", "u", "cli", str(i)), make_analysis(created=ts))
        got = await store.between("cli", "u", 100.0, 300.0)
        assert [a.created_at for a in got] == [100.0, 200.0]


async def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    async with await HistoryStore.open(path) as store:
        await store.add(Sender("cli", "u", "cli", "1"), make_analysis())
    async with await HistoryStore.open(path) as store:
        assert await store.count("cli", "u") == 1


async def test_migrates_an_unversioned_file_and_refuses_a_newer_one(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()  # an empty, version-0 database
    async with await HistoryStore.open(path) as store:
        assert await store.schema_version() == SCHEMA_VERSION
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        con.commit()
    before = set(sqlite_threads())
    with pytest.raises(RuntimeError, match="newer") as refused:
        await HistoryStore.open(path)
    # The refused open closed its connection: its non-daemon thread ends, even while the
    # caller still holds the error (the CLI printing it), so the process can exit.
    opened = [t for t in sqlite_threads() if t not in before]
    for thread in opened:
        thread.join(timeout=10)
    assert [t.name for t in opened if t.is_alive()] == [], refused.value


async def test_add_many_counts_new_rows(tmp_path: Path) -> None:
    async with await HistoryStore.open(tmp_path / "h.db") as store:
        rows = [(Sender("cli", "u", "c", str(i)), make_analysis(created=i)) for i in range(50)]
        assert await store.add_many(rows) == 50
        assert await store.add_many(rows[:10]) == 0
        assert await store.count("cli", "u") == 50


async def test_add_many_stores_rows_exactly_like_add(tmp_path: Path) -> None:
    async with await HistoryStore.open(tmp_path / "h.db") as store:
        await store.add(Sender("cli", "u", "c", "one"), make_analysis(created=5.0))
        await store.add_many([(Sender("cli", "u", "c", "many"), make_analysis(created=5.0))])
        one = await store.get_by_message("cli", "c", "one")
        many = await store.get_by_message("cli", "c", "many")
        assert one is not None and many is not None
        assert many.emotion.text is not None and many.emotion.voice is not None
        assert many.emotion.text.scores == {"positive": 0.7, "negative": 0.1, "neutral": 0.2,
                                            "excited": 0.0}
        assert many.emotion.voice.scores == {"calm": 0.9, "moderate": 0.1, "agitated": 0.0}
        assert (many.emotion, many.timings, many.audio_sha256) == (
            one.emotion, one.timings, one.audio_sha256)


async def test_forget_also_drops_digest_schedule_and_privacy_choice(tmp_path: Path) -> None:
    from bot.storage.journal import DigestSchedule

    async with await HistoryStore.open(tmp_path / "h.db") as store:
        journal = store.journal
        for user in ("alice", "bob"):
            await store.add(Sender("telegram", user, user, "m1"), make_analysis())
            await journal.save_schedule(DigestSchedule("telegram", user, user, 6, 19 * 60,
                                                       "UTC", enabled=True, next_at=5000.0))
            await journal.set_keep_transcripts("telegram", user, False)
        assert await store.forget("telegram", "alice") == 1
        assert await journal.schedule("telegram", "alice") is None
        assert await journal.keeps_transcripts("telegram", "alice") is True  # the default again
        # Bob keeps everything.
        bob = await journal.schedule("telegram", "bob")
        assert bob is not None and bob.enabled and bob.next_at == 5000.0
        assert await journal.keeps_transcripts("telegram", "bob") is False
        assert await store.count("telegram", "bob") == 1
