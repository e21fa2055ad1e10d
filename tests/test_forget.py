"""``/forget`` leaves nothing: no row in any person table, no byte on disk.

Real SQLite files: the store under test is the one ``voicemood serve`` opens, and the last
test reads the raw bytes of the database and its write-ahead log while it is still open, as
anyone with a copy of the data folder (a backup, a stolen disk) could.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.analysis import Sender
from bot.storage.history import HistoryStore
from bot.storage.journal import DigestSchedule
from bot.storage.schema import PERSON_TABLES
from inference.engine import InferenceEngine
from tests import fake_telegram as fk
from tests.fake_telegram import FakeTelegram
from tests.test_store import make_analysis
from tests.test_telegram import ALICE as ALICE_TG
from tests.test_telegram import fake, reply_to, running_bot, send_command  # noqa: F401

ALICE = Sender("telegram", "7", "42", "100")
#: A transcript no other row, page header or index could contain by chance.
SECRET = "zebra-quartz-marmalade-4411 my doctor said the tumour is benign"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[HistoryStore]:
    """A history file on disk, closed at the end even when the test fails."""
    opened = await HistoryStore.open(tmp_path / "history.db")
    try:
        yield opened
    finally:
        await opened.close()


async def rows_about(store: HistoryStore, platform: str, user_id: str) -> dict[str, int]:
    """Rows per person table of (platform, user_id), read with the store's own connection."""
    counts = {}
    for table in PERSON_TABLES:
        async with store._conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE platform=? AND user_id=?",
                (platform, user_id)) as cur:
            counts[table] = (await cur.fetchone())[0]
    return counts


async def test_forget_deletes_a_pending_note(store: HistoryStore) -> None:
    assert await store.pending.record(ALICE, {"file_id": "AwACAgQ"}, "en", received_at=1000.0)
    assert (await rows_about(store, "telegram", "7"))["pending_notes"] == 1

    assert await store.forget("telegram", "7") == 0
    assert await store.pending.get(ALICE) is None
    assert await store.pending.count() == 0


async def test_forget_with_no_analyses_deletes_the_schedule_and_the_choice(
        store: HistoryStore) -> None:
    await store.journal.save_schedule(DigestSchedule("telegram", "7", "42", weekday=0,
                                                     minute=540, tz="UTC", enabled=True,
                                                     next_at=2000.0))
    await store.journal.set_keep_transcripts("telegram", "7", False)
    assert await store.count("telegram", "7") == 0
    # Someone with only a schedule and a choice has something stored: /forget must not say
    # "I have nothing stored about you" and skip it.
    assert await store.holds_anything("telegram", "7") is True

    assert await store.forget("telegram", "7") == 0
    assert await rows_about(store, "telegram", "7") == {
        "analyses": 0, "pending_notes": 0, "digest_schedules": 0, "privacy_prefs": 0}
    assert await store.journal.schedule("telegram", "7") is None
    assert await store.journal.keeps_transcripts("telegram", "7") is True  # the default again
    assert await store.holds_anything("telegram", "7") is False


async def test_forget_keeps_other_people(store: HistoryStore) -> None:
    bob = Sender("telegram", "8", "43", "101")
    await store.add(ALICE, make_analysis(transcript="alice's note"))
    await store.add(bob, make_analysis(transcript="bob's note"))
    await store.pending.record(Sender("telegram", "8", "43", "102"), {"file_id": "x"})

    assert await store.forget("telegram", "7") == 1
    assert await rows_about(store, "telegram", "8") == {
        "analyses": 1, "pending_notes": 1, "digest_schedules": 0, "privacy_prefs": 0}
    assert await store.holds_anything("telegram", "8") is True


async def test_a_forgotten_transcript_is_nowhere_on_disk_while_the_store_is_open(
        tmp_path: Path, store: HistoryStore) -> None:
    await store.add(ALICE, make_analysis(transcript=SECRET))
    await store.add(Sender("telegram", "8", "43", "101"), make_analysis(transcript="bob"))
    needle = SECRET.encode()
    db, wal = tmp_path / "history.db", tmp_path / "history.db-wal"
    # The note is on disk (in the log, until a checkpoint moves it into the file).
    assert needle in db.read_bytes() + wal.read_bytes()

    assert await store.forget("telegram", "7") == 1

    # The same process still has the file open: no close, no checkpoint on exit, has run.
    for path in (db, wal, tmp_path / "history.db-shm"):
        if path.exists():
            assert needle not in path.read_bytes(), f"the transcript is still in {path.name}"
    assert wal.exists() and wal.stat().st_size == 0  # the log was truncated
    assert [a.transcript for a in await store.recent("telegram", "8")] == ["bob"]


async def test_telegram_forget_with_only_a_privacy_choice_asks_and_deletes_it(
        fake: FakeTelegram, tmp_path: Path, engine: InferenceEngine) -> None:  # noqa: F811
    alice = str(ALICE_TG["id"])
    async with running_bot(fake, tmp_path, engine) as service:
        await service.store.journal.set_keep_transcripts("telegram", alice, False)

        ask = send_command(fake, ALICE_TG, "/forget")
        confirm = await reply_to(fake, ask)
        assert confirm.params["text"] == ("This deletes everything I have stored about you (0 "
                                          "analyses). It cannot be undone. Are you sure?")
        yes = confirm.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        fake.push(fk.callback(ALICE_TG, yes, confirm.result))
        await fake.wait_for(lambda: fake.calls_to("editMessageText"))
        assert fake.calls_to("editMessageText")[-1].params["text"] == (
            "Done: 0 analyses deleted. Nothing about you is stored now.")
        assert await service.holds_anything("telegram", alice) is False

        again = send_command(fake, ALICE_TG, "/forget")
        assert (await reply_to(fake, again)).params["text"] == "I have nothing stored about you."
