"""The mood-journal features on Telegram, end to end: ``serve_telegram`` (real
python-telegram-bot) against the fake Bot API (tests/fake_telegram.py), the real service and
SQLite file. Histories are seeded as stored rows; only the privacy and on-demand tests run a
clip through the real models (one short clip, analysed once thanks to the service's cache).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.telegram.texts import utf16_len
from bot.core.service import AnalysisService
from inference.engine import InferenceEngine
from tests import fake_telegram as fk
from tests.audio_factory import speech_file
from tests.fake_telegram import Call, FakeTelegram
from tests.journal_seed import FakeClock, row, seed, stored_rows
from tests.test_telegram import TOKEN, running_bot

pytestmark = pytest.mark.filterwarnings(
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALICE = fk.user(1001, "Alice", "en")
BOB = fk.user(1002, "Bob", "en")
GROUP = fk.group_chat(-100777, "family")
# 2026-11-20T01:30:00Z and 2026-11-21T15:45:30Z
T1, T2 = 1795138200.0, 1795275930.0
ZH = "今天很开心，我们去公园了。"
WEDNESDAY_NOON = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SUNDAY_7PM = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)
NEXT_SUNDAY_7PM = datetime(2026, 11, 29, 11, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_file(tmp_path_factory.mktemp("journal_tg"), "I am so happy today.", "ogg",
                       name="happy").read_bytes()


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


@contextlib.asynccontextmanager
async def running(fake: FakeTelegram, tmp_path: Path, engine: InferenceEngine, *,
                  clock: FakeClock | None = None, **overrides: Any
                  ) -> AsyncIterator[AnalysisService]:
    """``serve_telegram`` as ``voicemood serve`` runs it, days cut in Asia/Shanghai."""
    async with running_bot(fake, tmp_path, engine, share_cache=False, clock=clock,
                           tz="Asia/Shanghai", **overrides) as service:
        yield service


def command(fake: FakeTelegram, u: dict, text: str, chat: dict | None = None,
            **extra: Any) -> dict:
    update = fk.command(u, text, chat)
    update["message"].update(extra)
    fake.push(update)
    return update["message"]


def answers(fake: FakeTelegram, msg: dict, method: str = "sendMessage") -> list[Call]:
    return [c for c in fake.calls_to(method, chat_id=msg["chat"]["id"])
            if (c.params.get("reply_parameters") or {}).get("message_id") == msg["message_id"]
            and not c.params.get("_failed")]


async def answer(fake: FakeTelegram, msg: dict, method: str = "sendMessage") -> Call:
    return (await fake.wait_for(lambda: answers(fake, msg, method), 60))[0]


async def seed_history(service: AnalysisService) -> None:
    await seed(service.store, [
        row("telegram", "1001", "m1", T1, ZH, "positive", language="zh", valence=0.62,
            confidence=0.91, arousal=0.55, duration_s=3.25, voice_label="happy"),
        row("telegram", "1002", "b1", T1 + 60, "bob's secret note", "negative"),
        row("telegram", "1001", "m2", T2, "Fine, thanks.", "neutral", confidence=0.5,
            arousal=0.2, duration_s=12.0, voice_label=None),
    ])


# ----------------------------------------------------------------------------- export


async def test_export_sends_only_the_persons_rows_as_a_document(fake, tmp_path, engine):
    async with running(fake, tmp_path, engine) as service:
        await seed_history(service)
        msg = command(fake, ALICE, "/export")
        doc = await answer(fake, msg, "sendDocument")
        assert doc.files["document"] == (
            "\ufefftime,duration_s,tag,confidence,valence,arousal,text_label,voice_label,"
            "language,transcript\r\n"
            f"2026-11-20T09:30:00+08:00,3.25,positive,0.91,0.62,0.55,positive,happy,zh,{ZH}\r\n"
            "2026-11-21T23:45:30+08:00,12.0,neutral,0.5,0.0,0.2,neutral,,en,Fine, thanks.\r\n"
            .replace("Fine, thanks.", '"Fine, thanks."')).encode()
        name = doc.params["_filenames"]["document"]
        assert name.startswith("voicemood-telegram-1001-") and name.endswith(".csv")
        assert doc.params["caption"] == "Your voicemood history: 2 analyses."

        # From a group: JSON, delivered to the private chat, the group only told so.
        in_group = command(fake, ALICE, "/export json 3650", GROUP)
        assert (await answer(fake, in_group)).params["text"] == (
            "Use /export [csv|json] [days], e.g. /export json 30.")
        in_group = command(fake, ALICE, "/export json", GROUP)
        assert (await answer(fake, in_group)).params["text"] == (
            "I've sent that to you in a private chat.")
        [private] = [c for c in fake.calls_to("sendDocument", chat_id=1001)
                     if c.params["_filenames"]["document"].endswith(".json")]
        assert ZH.encode() in private.files["document"]
        assert b"bob" not in private.files["document"]
        assert not fake.calls_to("sendDocument", chat_id=GROUP["id"])

        nobody = command(fake, fk.user(1003, "Carol"), "/export")
        assert (await answer(fake, nobody)).params["text"] == (
            "You have no analyses yet, so there is nothing to export.")


# ----------------------------------------------------------------------------- digest


async def test_weekly_digest_is_sent_at_its_time_and_stops_for_a_blocked_person(
        fake, tmp_path, engine):
    clock = FakeClock(WEDNESDAY_NOON)
    async with running(fake, tmp_path, engine, clock=clock) as service:
        await seed(service.store, [
            row("telegram", user, f"{user}-{day}",
                datetime(2026, 11, day, 2, 0, tzinfo=UTC).timestamp(), "a good day",
                "positive", valence=0.6)
            for user in ("1001", "1002") for day in (19, 20, 21, 24)])
        on = command(fake, ALICE, "/digest on sun 19:00")
        assert (await answer(fake, on)).params["text"] == (
            "Weekly digest on: every Sunday at 19:00 (Asia/Shanghai), starting 2026-11-22 "
            "19:00. Weeks without voice notes are skipped. /digest tz Area/City changes the "
            "time zone.")
        await answer(fake, command(fake, BOB, "/digest on"))
        fake.forbidden_chats.add(1002)  # Bob blocks the bot
        await clock.settled()
        assert not fake.calls_to("sendPhoto")

        await clock.advance(SUNDAY_7PM)
        photo = (await fake.wait_for(lambda: fake.calls_to("sendPhoto", chat_id=1001)))[0]
        assert photo.files["photo"][:8] == PNG_MAGIC
        [digest] = [c for c in fake.calls_to("sendMessage", chat_id=1001)
                    if c.params["text"].startswith("📬")]
        assert digest.params["text"].startswith(
            "📬 Your weekly mood digest\n\nYour mood, last 7 days (Nov 16 - Nov 22, "
            "Asia/Shanghai)\n3 notes, 0.2 min in total.")
        await clock.settled()
        bob = await service.store.journal.schedule("telegram", "1002")
        assert (bob.enabled, bob.next_at) == (False, None)
        tries_to_bob = len(fake.calls_to("sendMessage", chat_id=1002))

        await clock.advance(NEXT_SUNDAY_7PM)
        week2 = await fake.wait_for(lambda: [
            c for c in fake.calls_to("sendMessage", chat_id=1001)
            if c.params["text"].startswith("📬")][1:])
        assert week2[0].params["text"] == (  # one note that week: no chart
            "📬 Your weekly mood digest\n\n1 note so far in the last 7 days -- send a few "
            "more to see a trend.")
        await clock.settled()
        assert len(fake.calls_to("sendMessage", chat_id=1002)) == tries_to_bob

        status = command(fake, ALICE, "/digest")
        assert (await answer(fake, status)).params["text"] == (
            "Your weekly digest comes every Sunday at 19:00 (Asia/Shanghai); the next one is "
            "due 2026-12-06 19:00. /digest off stops it.")


# ----------------------------------------------------------------------------- privacy


async def test_privacy_mode_stores_no_transcript_but_still_shows_it(
        fake, tmp_path, engine, clip):
    async with running(fake, tmp_path, engine):
        off = command(fake, ALICE, "/privacy transcripts off")
        assert (await answer(fake, off)).params["text"].startswith(
            "Transcripts off: from now on I keep only the tags and scores of your notes.")
        note = fk.message(ALICE, **fk.voice(fake.add_file(clip), len(clip)))
        fake.push(note)
        shown = (await answer(fake, note["message"])).params["text"]
        assert "happy" in shown.lower()
        status = command(fake, ALICE, "/privacy")
        assert "but no transcript" in (await answer(fake, status)).params["text"]
    assert stored_rows(tmp_path) == [("1001", "1001", str(note["message"]["message_id"]), "")]


# ----------------------------------------------------------------------------- on demand


async def test_ondemand_group_downloads_nothing_until_mood(fake, tmp_path, engine, clip):
    async with running(fake, tmp_path, engine, telegram_group_mode="ondemand"):
        note = fk.message(ALICE, GROUP, **fk.voice(fake.add_file(clip), len(clip)))
        fake.push(note)
        fake.push(fk.message(BOB, GROUP, text="nice"))
        settle = command(fake, BOB, "/help", GROUP)
        await answer(fake, settle)
        await asyncio.sleep(0.3)
        assert not fake.calls_to("getFile") and not fake.downloads
        assert stored_rows(tmp_path) == []
        assert not answers(fake, note["message"])

        lonely = command(fake, BOB, "/mood", GROUP)
        assert (await answer(fake, lonely)).params["text"] == (
            "Reply to a voice note with /mood and I'll analyse it.")

        ask = command(fake, BOB, "/mood", GROUP, reply_to_message=note["message"])
        result = (await answer(fake, note["message"])).params["text"]
        assert "happy" in result.lower()
        assert len(fake.downloads) == 1
        assert not answers(fake, ask)  # the answer goes to the note, in the group
        group_id, msg_id = str(GROUP["id"]), str(note["message"]["message_id"])
        # Stored under the note's sender (Alice), not under Bob who asked.
        assert [r[:3] for r in stored_rows(tmp_path)] == [("1001", group_id, msg_id)]
        # Asked again: the stored analysis, without fetching the note a second time.
        command(fake, ALICE, "/mood", GROUP, reply_to_message=note["message"])
        again = await fake.wait_for(lambda: answers(fake, note["message"])[1:])
        assert again[0].params["text"] == result
        assert len(fake.downloads) == 1

        # Private chats are unaffected: analysed on arrival.
        private = fk.message(BOB, **fk.voice(fake.add_file(clip), len(clip)))
        fake.push(private)
        assert "happy" in (await answer(fake, private["message"])).params["text"].lower()


async def test_mood_for_a_note_being_analysed_is_answered_when_it_is_ready(
        fake, tmp_path, engine, clip):
    async with running(fake, tmp_path, engine, telegram_group_mode="ondemand"):
        note = fk.message(ALICE, GROUP, **fk.voice(fake.add_file(clip), len(clip)))
        fake.push(note)
        fake.hold_downloads = asyncio.Event()
        command(fake, BOB, "/mood", GROUP, reply_to_message=note["message"])
        await fake.wait_for(lambda: fake.downloads)
        # Alice asks too while Bob's request is still being worked on.
        command(fake, ALICE, "/mood", GROUP, reply_to_message=note["message"])
        await asyncio.sleep(0.5)
        fake.hold_downloads.set()
        both = await fake.wait_for(lambda: answers(fake, note["message"])[1:] and
                                   answers(fake, note["message"]))
        assert len(both) == 2 and "happy" in both[0].params["text"].lower()
        assert both[1].params["text"] == both[0].params["text"]
        assert len(fake.downloads) == 1


async def test_mood_on_the_note_of_someone_not_allowed_is_refused_and_nothing_fetched(
        fake, tmp_path, engine, clip):
    """Bob may use the bot, Alice may not: Bob's /mood on Alice's note meets the allow-list
    (on the note's sender), so nothing of hers is downloaded, analysed or stored."""
    async with running(fake, tmp_path, engine, telegram_group_mode="ondemand",
                       telegram_allowed_users=str(BOB["id"])) as service:
        # Alice's note itself never reached the bot as an update: only Bob's /mood quotes it.
        note = fk.message(ALICE, GROUP, **fk.voice(fake.add_file(clip), len(clip)))["message"]
        command(fake, BOB, "/mood", GROUP, reply_to_message=note)
        refusal = await answer(fake, note)
        assert refusal.params["text"] == (
            "Sorry, this bot is private and the person who sent that note is not on its list "
            "of users, so I won't analyse or store it.")
        settle = command(fake, BOB, "/help", GROUP)
        await answer(fake, settle)
        assert not fake.calls_to("getFile") and not fake.downloads
        assert not fake.calls_to("sendChatAction")
        assert len(answers(fake, note)) == 1
        assert stored_rows(tmp_path) == []
        assert await service.store.pending.count() == 0


# ----------------------------------------------------------------------------- long


def _sentences(n: int) -> str:
    return " ".join(f"Sentence number {i} is here." for i in range(n))


async def test_long_transcripts_split_at_sentences_or_come_as_a_file(fake, tmp_path, engine):
    async with running(fake, tmp_path, engine) as service:
        # The analysis itself is not under test: the service's by-hash cache answers.
        notes = {b"a medium note": _sentences(150), b"a very long note": _sentences(600)}
        for audio, transcript in notes.items():
            _, analysis = row("telegram", "x", "x", 0.0, transcript)
            service._cache[hashlib.sha256(audio).hexdigest()] = analysis
        medium = fk.message(ALICE, **fk.voice(fake.add_file(b"a medium note"), 13))
        long = fk.message(ALICE, **fk.voice(fake.add_file(b"a very long note"), 16))
        fake.push(medium)
        fake.push(long)
        await fake.wait_for(lambda: len(answers(fake, medium["message"])) == 2
                            and answers(fake, long["message"], "sendDocument"))
        first, second = (c.params["text"] for c in answers(fake, medium["message"]))
        assert first.endswith(" is here.") and second.startswith("Sentence number ")
        assert (first + " " + second).count(" is here.") == 150
        assert max(utf16_len(first), utf16_len(second)) <= 4096

        [short] = answers(fake, long["message"])
        assert short.params["text"].endswith(
            " is here. …\n\nThe transcript is long; here it is in full as a file.")
        assert utf16_len(short.params["text"]) <= 4096
        [doc] = answers(fake, long["message"], "sendDocument")
        assert doc.params["_filenames"]["document"] == "transcript.txt"
        assert doc.files["document"] == _sentences(600).encode()
