"""bot.core.pending: accepted notes survive a restart and are handed to exactly one later run."""

from __future__ import annotations

import time
from pathlib import Path

from bot.analysis import Sender
from bot.core.pending import PendingNote, PendingNotes, ResumeReport, resume
from bot.core.service import AnalysisService
from bot.storage.history import HistoryStore
from inference.engine import InferenceEngine
from tests.audio_factory import speech_file
from tests.conftest import make_settings

ALICE = Sender("telegram", "7", "42", "1001")
BOB = Sender("slack", "U2", "D9", "1700000000.000100")


async def test_a_note_left_by_a_dead_run_is_claimed_once_by_the_next(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    store = await HistoryStore.open(db)
    first = PendingNotes(store, run_id="run-1")
    assert await first.record(ALICE, {"file_id": "AwACAgQ"}, "zh", received_at=1000.0)
    # The run that recorded the note is handling it: its own sweep leaves it alone.
    assert await first.claim("telegram") == []
    await store.close()  # the process dies before answering

    store = await HistoryStore.open(db)
    second = PendingNotes(store, run_id="run-2")
    [note] = await second.claim("telegram")
    assert note.sender == ALICE
    assert note.ref == {"file_id": "AwACAgQ"}
    assert note.lang == "zh"
    assert note.received_at == 1000.0
    assert note.attempts == 1
    assert await second.claim("telegram") == []  # a second sweep does not repeat it
    assert await second.claim("slack") == []
    await store.close()

    store = await HistoryStore.open(db)  # run 2 died too: run 3 sees the second attempt
    [again] = await PendingNotes(store, run_id="run-3").claim("telegram")
    assert again.attempts == 2
    await store.close()


async def test_record_is_idempotent_and_complete_forgets(tmp_path: Path) -> None:
    store = await HistoryStore.open(tmp_path / "h.db")
    pending = PendingNotes(store, run_id="a")
    assert await pending.record(BOB, {"file_id": "F1", "url": "http://x/f"}, received_at=5.0)
    # A redelivery keeps the first receipt time and reference.
    assert not await pending.record(BOB, {"file_id": "F2"}, received_at=9.0)
    note = await pending.get(BOB)
    assert note is not None and note.ref == {"file_id": "F1", "url": "http://x/f"}
    assert note.received_at == 5.0
    assert await pending.count() == 1
    assert await pending.complete(BOB)
    assert not await pending.complete(BOB)
    assert await pending.get(BOB) is None
    assert await PendingNotes(store, run_id="b").claim("slack") == []
    await store.close()


async def test_list_stale_returns_only_notes_past_the_age_limit(tmp_path: Path) -> None:
    store = await HistoryStore.open(tmp_path / "h.db")
    pending = PendingNotes(store)
    old = Sender("telegram", "7", "42", "1")
    new = Sender("telegram", "7", "42", "2")
    await pending.record(old, {"file_id": "a"}, received_at=1000.0)
    await pending.record(new, {"file_id": "b"}, received_at=1900.0)
    stale = await pending.list_stale("telegram", max_age_s=600, now=2000.0)
    assert [n.sender.message_id for n in stale] == ["1"]
    assert stale[0].age_s(2000.0) == 1000.0
    assert await pending.list_stale("slack", max_age_s=600, now=2000.0) == []
    await store.close()


async def test_pending_rows_do_not_touch_the_history(tmp_path: Path) -> None:
    store = await HistoryStore.open(tmp_path / "h.db")
    await PendingNotes(store).record(ALICE, {"file_id": "x"})
    assert await store.count("telegram", "7") == 0
    assert await store.schema_version() >= 3
    await store.close()


async def test_after_a_crash_every_pending_note_is_answered_exactly_once(
        tmp_path: Path, engine: InferenceEngine) -> None:
    """Run 1 accepts four notes and dies at a different step of each; run 2 resumes."""
    clip = speech_file(tmp_path, "The meeting was moved to Thursday.", "ogg").read_bytes()
    files = {"f-done": clip, "f-stored": clip, "f-new": clip, "f-old": clip,
             "f-junk": b"not audio at all" * 20}
    done, stored, new, old, junk = (Sender("telegram", "7", "42", str(i)) for i in range(1, 6))
    settings = make_settings(tmp_path)

    run1 = await AnalysisService.create(settings, engine=engine)
    pending1 = PendingNotes(run1.store)
    for sender, fid in ((done, "f-done"), (stored, "f-stored"), (new, "f-new"),
                        (junk, "f-junk")):
        await pending1.record(sender, {"file_id": fid}, "en")
    await pending1.record(old, {"file_id": "f-old"}, "en", received_at=time.time() - 7200)
    await run1.analyze(clip, done)  # analysed, answered, completed
    await pending1.complete(done)
    await run1.analyze(clip, stored)  # analysed and stored; died before replying
    await run1.close(close_engine=False)  # ... and "new" and "junk" were never started

    answers: list[tuple[str, str]] = []

    async def fetch(note: PendingNote) -> bytes:
        return files[note.ref["file_id"]]

    async def answer(note: PendingNote, outcome: object) -> None:
        what = getattr(outcome, "code", None) or getattr(outcome, "transcript", "?")
        answers.append((note.sender.message_id, str(what)))

    async def apologise(note: PendingNote) -> None:
        answers.append((note.sender.message_id, "sorry"))

    run2 = await AnalysisService.create(settings, engine=engine)
    pending2 = PendingNotes(run2.store)
    report = await resume(pending2, run2, "telegram", fetch=fetch, answer=answer,
                          apologise=apologise, max_age_s=3600)
    assert report == ResumeReport(answered=2, refused=1, apologised=1, left=0)
    by_message = dict(answers)
    assert sorted(by_message) == ["2", "3", "4", "5"]  # not "1": it was answered before
    assert len(answers) == 4  # one answer each
    assert "meeting" in by_message["2"].lower() and "meeting" in by_message["3"].lower()
    assert by_message["4"] == "sorry"
    assert by_message["5"] == "not_audio"
    # Each analysed note is in the history once: "2" was not analysed a second time.
    assert await run2.count("telegram", "7") == 3
    assert await pending2.count() == 0
    # A third start finds nothing left to do.
    again = await resume(PendingNotes(run2.store), run2, "telegram", fetch=fetch,
                         answer=answer, apologise=apologise, max_age_s=3600)
    assert again == ResumeReport() and len(answers) == 4
    await run2.close(close_engine=False)
