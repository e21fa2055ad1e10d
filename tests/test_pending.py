"""bot.core.pending: accepted notes survive a restart and are handed to exactly one later run,
which answers them through the one note use-case (bot.core.notes).

Every store and service a test opens belongs to the ``opened`` fixture, which closes what
is still open when the test ends, passed or failed (aiosqlite's thread is not a daemon: a
store left open would keep pytest from exiting).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.analysis import Analysis, Sender
from bot.core import pending as pending_mod
from bot.core.long_reply import LongReply
from bot.core.notes import Delivery, Note, handle
from bot.core.pending import PendingNote, ResumeReport, note_of, resume
from bot.core.service import AnalysisService
from bot.ops.settings import Settings
from bot.storage.history import HistoryStore
from inference.engine import InferenceEngine
from inference.errors import Busy
from tests.audio_factory import speech_file
from tests.conftest import make_settings
from tests.journal_seed import row

ALICE = Sender("telegram", "7", "42", "1001")
BOB = Sender("slack", "U2", "D9", "1700000000.000100")
APOLOGY = ("Sorry — I was restarted while your voice note was waiting and it is too old to "
           "analyse now. Please send it again.")
NOT_AUDIO = ("That doesn't look like audio. Send a voice note or an audio file (ogg, mp3, m4a, "
             "mp4, webm, wav, flac).")


class Opened:
    """Opens stores and services for one test; :meth:`close` (or the fixture) closes them."""

    def __init__(self, engine: InferenceEngine | None = None) -> None:
        self.engine = engine
        self._open: list[HistoryStore | AnalysisService] = []

    async def store(self, db: Path) -> HistoryStore:
        store = await HistoryStore.open(db)
        self._open.append(store)
        return store

    async def service(self, settings: Settings) -> AnalysisService:
        assert self.engine is not None, "ask for the opened_with_engine fixture"
        service = await AnalysisService.create(settings, engine=self.engine)
        self._open.append(service)
        return service

    async def close(self, thing: HistoryStore | AnalysisService) -> None:
        """Close ``thing`` now (a run that dies)."""
        self._open.remove(thing)
        await _close(thing)

    async def close_all(self) -> None:
        while self._open:
            with contextlib.suppress(Exception):
                await _close(self._open.pop())


async def _close(thing: HistoryStore | AnalysisService) -> None:
    if isinstance(thing, AnalysisService):
        await thing.close(close_engine=False)
    else:
        await thing.close()


@pytest.fixture
async def opened() -> AsyncIterator[Opened]:
    """Stores opened by the test, closed at its end."""
    holder = Opened()
    yield holder
    await holder.close_all()


@pytest.fixture
async def opened_with_engine(engine: InferenceEngine) -> AsyncIterator[Opened]:
    """Stores and services (on the session's engine) opened by the test, closed at its end."""
    holder = Opened(engine)
    yield holder
    await holder.close_all()


class RecordingPort:
    """A :class:`~bot.core.notes.NotePort` that serves ``files`` by ``ref["file_id"]`` and
    records every answer as ``(message_id, text)`` in ``answers``."""

    markup = "plain"
    message_limit = 4096
    download_limit = None
    shows_typing = True
    answers_in_spoken_language = False

    def __init__(self, files: dict[str, bytes], answers: list[tuple[str, str]],
                 message_id: str, fetched: list[str] | None = None) -> None:
        self.files, self.answers, self.message_id = files, answers, message_id
        self.fetched = fetched if fetched is not None else []

    def measure(self, text: str) -> int:
        return len(text)

    async def fetch(self, note: Note) -> bytes:
        self.fetched.append(note.sender.message_id)
        return self.files[note.ref["file_id"]]

    async def send(self, text: str, *, edit: Any = None) -> None:
        self.answers.append((self.message_id, text))

    async def send_analysis(self, reply: LongReply, *, again: bool, edit: Any = None) -> None:
        self.answers.append((self.message_id, "\n".join(reply.messages)))
        if reply.transcript_file is not None:
            self.answers.append((self.message_id, f"file:{reply.filename}"))

    async def notice(self, text: str) -> None:
        return None

    async def withdraw(self, notice: Any) -> None:
        return None

    async def in_hand(self) -> None:
        return None

    async def typing(self) -> None:
        return None


def recording(files: dict[str, bytes], answers: list[tuple[str, str]],
              fetched: list[str] | None = None):  # type: ignore[no-untyped-def]
    """A ``port_for`` for :func:`resume` answering into ``answers``."""

    def port_for(note: PendingNote) -> tuple[Note, RecordingPort]:
        return note_of(note), RecordingPort(files, answers, note.sender.message_id, fetched)

    return port_for


def known(transcript: str) -> Analysis:
    """An analysis as the pipeline returns it, for the service's by-hash cache."""
    return row("telegram", "x", "x", 0.0, transcript)[1]


def cache(service: AnalysisService, audio: bytes, transcript: str) -> None:
    """Let the service answer ``audio`` from its cache (the models are not under test)."""
    service._cache[hashlib.sha256(audio).hexdigest()] = known(transcript)


# ------------------------------------------------------------------------ the repository


async def test_a_note_left_by_a_dead_run_is_claimed_once_by_the_next(
        tmp_path: Path, opened: Opened) -> None:
    db = tmp_path / "h.db"
    store = await opened.store(db)
    first = store.pending_as("run-1")
    assert await first.record(ALICE, {"file_id": "AwACAgQ"}, "zh", received_at=1000.0)
    # The run that recorded the note is handling it: its own sweep leaves it alone.
    assert await first.claim("telegram") == []
    await opened.close(store)  # the process dies before answering

    store = await opened.store(db)
    second = store.pending_as("run-2")
    [note] = await second.claim("telegram")
    assert note.sender == ALICE
    assert note.ref == {"file_id": "AwACAgQ"}
    assert note.lang == "zh"
    assert note.received_at == 1000.0
    assert note.attempts == 1
    assert await second.claim("telegram") == []  # a second sweep does not repeat it
    assert await second.claim("slack") == []
    await opened.close(store)

    store = await opened.store(db)  # run 2 died too: run 3 sees the second attempt
    [again] = await store.pending_as("run-3").claim("telegram")
    assert again.attempts == 2


async def test_record_is_idempotent_and_complete_forgets(tmp_path: Path,
                                                          opened: Opened) -> None:
    store = await opened.store(tmp_path / "h.db")
    pending = store.pending_as("a")
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
    assert await store.pending_as("b").claim("slack") == []


async def test_list_stale_returns_only_notes_past_the_age_limit(tmp_path: Path,
                                                                 opened: Opened) -> None:
    store = await opened.store(tmp_path / "h.db")
    pending = store.pending_as()
    old = Sender("telegram", "7", "42", "1")
    new = Sender("telegram", "7", "42", "2")
    await pending.record(old, {"file_id": "a"}, received_at=1000.0)
    await pending.record(new, {"file_id": "b"}, received_at=1900.0)
    stale = await pending.list_stale("telegram", max_age_s=600, now=2000.0)
    assert [n.sender.message_id for n in stale] == ["1"]
    assert stale[0].age_s(2000.0) == 1000.0
    assert await pending.list_stale("slack", max_age_s=600, now=2000.0) == []


async def test_pending_rows_do_not_touch_the_history(tmp_path: Path, opened: Opened) -> None:
    store = await opened.store(tmp_path / "h.db")
    await store.pending_as().record(ALICE, {"file_id": "x"})
    assert await store.count("telegram", "7") == 0
    assert await store.schema_version() >= 3


# ------------------------------------------------------------------------ the resume sweep


async def test_after_a_crash_every_pending_note_is_answered_exactly_once(
        tmp_path: Path, opened_with_engine: Opened) -> None:
    """Run 1 accepts four notes and dies at a different step of each; run 2 resumes."""
    opened = opened_with_engine
    clip = speech_file(tmp_path, "The meeting was moved to Thursday.", "ogg").read_bytes()
    files = {"f-done": clip, "f-stored": clip, "f-new": clip, "f-old": clip,
             "f-junk": b"not audio at all" * 20}
    done, stored, new, old, junk = (Sender("telegram", "7", "42", str(i)) for i in range(1, 6))
    settings = make_settings(tmp_path)

    run1 = await opened.service(settings)
    pending1 = run1.store.pending_as()
    for sender, fid in ((done, "f-done"), (stored, "f-stored"), (new, "f-new"),
                        (junk, "f-junk")):
        await pending1.record(sender, {"file_id": fid}, "en")
    await pending1.record(old, {"file_id": "f-old"}, "en", received_at=time.time() - 7200)
    await run1.analyze(clip, done)  # analysed, answered, completed
    await pending1.complete(done)
    await run1.analyze(clip, stored)  # analysed and stored; died before replying
    await opened.close(run1)  # ... and "new" and "junk" were never started

    answers: list[tuple[str, str]] = []
    run2 = await opened.service(settings)
    report = await resume(run2, "telegram", recording(files, answers), max_age_s=3600)
    assert report == ResumeReport(answered=2, refused=1, apologised=1, left=0)
    by_message = dict(answers)
    assert sorted(by_message) == ["2", "3", "4", "5"]  # not "1": it was answered before
    assert len(answers) == 4  # one answer each
    assert "meeting" in by_message["2"].lower() and "meeting" in by_message["3"].lower()
    assert by_message["4"] == APOLOGY
    assert by_message["5"] == NOT_AUDIO
    # Each analysed note is in the history once: "2" was not analysed a second time.
    assert await run2.count("telegram", "7") == 3
    assert await run2.store.pending.count() == 0
    # A third start finds nothing left to do.
    again = await resume(run2, "telegram", recording(files, answers), max_age_s=3600)
    assert again == ResumeReport() and len(answers) == 4


async def _left_by_an_earlier_run(service: AnalysisService, sender: Sender, file_id: str, *,
                                  earlier_claims: int = 0) -> None:
    """A pending row an earlier run recorded (and ``earlier_claims`` runs after it claimed)
    before dying."""
    assert await service.store.pending_as("receiver").record(
        sender, {"file_id": file_id}, "en")
    for n in range(earlier_claims):
        assert await service.store.pending_as(f"crashed-{n}").claim("telegram")


async def test_a_note_a_live_redelivery_answered_meanwhile_is_not_answered_again(
        tmp_path: Path, opened_with_engine: Opened, monkeypatch: pytest.MonkeyPatch) -> None:
    """The platform redelivers the note while the sweep has it claimed but not started:
    the live delivery answers and completes it, and the sweep must stay silent."""
    service = await opened_with_engine.service(make_settings(tmp_path))
    files = {"f1": b"a note redelivered during the sweep"}
    cache(service, files["f1"], "Redelivered and answered live.")
    await _left_by_an_earlier_run(service, ALICE, "f1")
    answers: list[tuple[str, str]] = []
    notes = service.store.pending
    claim_rows = notes.claim

    async def claim_then_redelivered(platform: str) -> list[PendingNote]:
        rows = await claim_rows(platform)
        # The live handler gets the redelivery first: analysed, answered, completed.
        live = RecordingPort(files, answers, "live")
        assert await handle(service, Note(ALICE, {"file_id": "f1"}), live) == "answered"
        return rows

    monkeypatch.setattr(notes, "claim", claim_then_redelivered)
    report = await resume(service, "telegram", recording(files, answers), max_age_s=3600)
    assert report == ResumeReport(in_hand=1)
    assert answers == [("live", answers[0][1])]
    assert "Redelivered and answered live." in answers[0][1]
    assert await service.count("telegram", "7") == 1
    assert await notes.count() == 0


@pytest.mark.parametrize("earlier_claims", [pending_mod.MAX_ATTEMPTS - 1,
                                            pending_mod.MAX_ATTEMPTS])
async def test_a_note_claimed_too_often_gets_the_apology_and_is_not_analysed(
        earlier_claims: int, tmp_path: Path, opened_with_engine: Opened) -> None:
    """A note every run since it arrived died on (it may be what kills the process) gets
    the apology once this run is one attempt too many; up to the limit it is answered."""
    service = await opened_with_engine.service(make_settings(tmp_path))
    files = {"f1": b"the note that crashes every run"}
    cache(service, files["f1"], "Answered on the last try.")
    await _left_by_an_earlier_run(service, ALICE, "f1", earlier_claims=earlier_claims)
    answers: list[tuple[str, str]] = []
    fetched: list[str] = []
    report = await resume(service, "telegram", recording(files, answers, fetched),
                          max_age_s=3600)
    if earlier_claims < pending_mod.MAX_ATTEMPTS:  # this run is the last allowed attempt
        assert report == ResumeReport(answered=1)
        [(message_id, text)] = answers
        assert message_id == "1001" and "Answered on the last try." in text
        assert fetched == ["1001"]
        assert await service.count("telegram", "7") == 1
    else:
        assert report == ResumeReport(apologised=1)
        assert answers == [("1001", APOLOGY)]
        assert fetched == []
        assert await service.count("telegram", "7") == 0
    assert await service.store.pending.count() == 0


async def test_busy_models_during_resume_are_waited_out_then_the_note_is_answered(
        tmp_path: Path, opened_with_engine: Opened, monkeypatch: pytest.MonkeyPatch) -> None:
    service = await opened_with_engine.service(make_settings(tmp_path))
    files = {"f1": b"a note resumed while the models are busy"}
    await _left_by_an_earlier_run(service, ALICE, "f1")
    calls: list[bytes] = []

    async def busy_once(audio: bytes, on_stage: object = None) -> Analysis:
        calls.append(audio)
        if len(calls) == 1:
            raise Busy("queue full", retry_after_s=0.0)
        return known("Answered once the models were free.")

    monkeypatch.setattr(service, "analyze_bytes", busy_once)
    answers: list[tuple[str, str]] = []
    report = await resume(service, "telegram", recording(files, answers), max_age_s=3600)
    assert report == ResumeReport(answered=1)
    assert len(calls) == 2
    # No busy phrase for the person: the sweep waited, then answered once.
    [(message_id, text)] = answers
    assert message_id == "1001" and "Answered once the models were free." in text
    assert await service.count("telegram", "7") == 1
    assert await service.store.pending.count() == 0


async def test_a_live_note_of_someone_not_allowed_is_refused_unfetched(
        tmp_path: Path, opened_with_engine: Opened) -> None:
    service = await opened_with_engine.service(
        make_settings(tmp_path, telegram_allowed_users="99"))
    answers: list[tuple[str, str]] = []
    fetched: list[str] = []
    port = RecordingPort({"f1": b"x"}, answers, "1001", fetched)
    outcome = await handle(service, Note(ALICE, {"file_id": "f1"}, requester="99"), port,
                           Delivery(repeat_stored=True, wait_in_flight=True))
    assert outcome == "not_allowed"
    assert answers == [("1001", "Sorry, this bot is private and the person who sent that note "
                                "is not on its list of users, so I won't analyse or store it.")]
    assert fetched == []
    assert await service.count("telegram", "7") == 0
    assert await service.store.pending.count() == 0
