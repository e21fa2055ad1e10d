"""The mood-journal features on Slack, end to end: ``serve_slack`` (real Bolt, HTTP mode)
answering signed requests, against the fake Slack Web API (tests/fake_slack.py), with the
real service and SQLite file. Histories are seeded as stored rows; the privacy and
on-demand tests run one short clip through the real models."""

from __future__ import annotations

import contextlib
import hashlib
import json
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.audio_factory import speech_file
from tests.fake_slack import FakeSlack
from tests.journal_seed import FakeClock, row, seed, stored_rows
from tests.test_slack import ALICE, BOB, CHANNEL, Harness
from tests.test_slack import running as slack_running

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ZH = "今天很开心，我们去公园了。"
T1, T2 = 1795138200.0, 1795275930.0  # 2026-11-20T01:30:00Z, 2026-11-21T15:45:30Z
WEDNESDAY_NOON = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SUNDAY_7PM = datetime(2026, 11, 22, 11, 0, tzinfo=UTC)


class Slack(FakeSlack):
    """The fake, plus people who have left the workspace (no DM can be opened to them)."""

    def __init__(self) -> None:
        super().__init__()
        self.gone: set[str] = set()

    def _m_conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("users") in self.gone:
            return {"ok": False, "error": "user_not_found"}
        return super()._m_conversations_open(p)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return speech_file(tmp_path_factory.mktemp("journal_slack"), "I am so happy today.",
                       "m4a", name="happy").read_bytes()


@pytest.fixture
async def fake() -> AsyncIterator[Slack]:
    f = Slack()
    await f.start()
    yield f
    await f.stop()


class App:
    """The running app (tests/test_slack.py's harness), spoken to the way these tests do:
    ``/voicemood`` sub-commands, events and the message shortcut, each acknowledged."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.bot, self.fake, self.service = harness.bot, harness.fake, harness.service

    async def command(self, text: str, *, user: str = ALICE, response: str = "cmd") -> None:
        reply = await self.harness.command("/voicemood", text, user=user, response=response)
        assert reply.status == 200

    async def event(self, event: dict[str, Any]) -> None:
        assert (await self.harness.event(event)).status == 200

    async def shortcut(self, message: dict[str, Any], *, user: str, response: str) -> None:
        payload = {
            "type": "message_action", "callback_id": "voicemood_analyse", "token": "legacy",
            "trigger_id": "1.2.3", "action_ts": "1.2", "api_app_id": "A0VOICE",
            "team": {"id": "T0TEAM", "domain": "fake"},
            "user": {"id": user, "name": user.lower(), "team_id": "T0TEAM"},
            "channel": {"id": CHANNEL, "name": "general"}, "message_ts": message["ts"],
            "message": message, "response_url": self.fake.response_url(response)}
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        reply = await self.harness.post(body, "application/x-www-form-urlencoded")
        assert reply.status == 200

    async def settle(self) -> None:
        await self.harness.settle()

    def responses(self, name: str) -> list[str]:
        return [c.params["text"] for c in self.fake.calls_to("response")
                if c.params["name"] == name]


@contextlib.asynccontextmanager
async def running(tmp_path: Path, engine: Any, fake: Slack, *, clock: FakeClock | None = None,
                  **overrides: Any) -> AsyncIterator[App]:
    async with slack_running(tmp_path, engine, fake, working_after_s=60, clock=clock,
                             tz="Asia/Shanghai", **overrides) as harness:
        yield App(harness)


def file_message(fake: Slack, clip: bytes, *, user: str, channel: str, ts: str,
                 file_id: str) -> dict[str, Any]:
    file = fake.add_file(file_id, clip, name="clip.m4a", mimetype="audio/mp4",
                         filetype="m4a", user=user, channel=channel, ts=ts,
                         subtype="slack_audio", duration_ms=2000)
    return {"type": "message", "subtype": "file_share", "channel": channel,
            "channel_type": "im" if channel.startswith("D") else "channel", "user": user,
            "ts": ts, "event_ts": ts, "text": "", "files": [file], "upload": True}


async def test_export_is_uploaded_to_the_persons_dm_with_only_their_rows(
        tmp_path, engine, fake):
    async with running(tmp_path, engine, fake) as app:
        await seed(app.service.store, [
            row("slack", ALICE, "F1", T1, ZH, "positive", language="zh", valence=0.62,
                confidence=0.91, arousal=0.55, duration_s=3.25, voice_label="happy"),
            row("slack", BOB, "F2", T1 + 60, "bob's secret note", "negative"),
            row("telegram", ALICE, "m9", T1 + 90, "same id on Telegram", "excited"),
            row("slack", ALICE, "F3", T2, "Fine.", "neutral", confidence=0.5, arousal=0.2,
                duration_s=12.0, voice_label=None),
        ])
        await app.command("export")
        await app.settle()
        [upload] = fake.calls_to("upload")
        assert upload.body == (
            "\ufefftime,duration_s,tag,confidence,valence,arousal,text_label,voice_label,"
            "language,transcript\r\n"
            f"2026-11-20T09:30:00+08:00,3.25,positive,0.91,0.62,0.55,positive,happy,zh,{ZH}\r\n"
            "2026-11-21T23:45:30+08:00,12.0,neutral,0.5,0.0,0.2,neutral,,en,Fine.\r\n"
        ).encode()
        [done] = fake.calls_to("files.completeUploadExternal")
        assert done.params["channel_id"] == "DU0ALICE"
        assert done.params["initial_comment"] == "Your voicemood history: 2 analyses."
        assert app.responses("cmd") == ["📎 I've sent your export to our direct messages."]

        await app.command("export xlsx", response="bad")
        await app.command("export", user="U0NOBODY", response="empty")
        await app.settle()
        assert app.responses("bad") == [
            "Use /voicemood export [csv|json] [days], e.g. /voicemood export json 30."]
        assert app.responses("empty") == [
            "You have no analyses yet, so there is nothing to export."]
        assert len(fake.calls_to("upload")) == 1


async def test_weekly_digest_goes_to_the_dm_and_stops_for_someone_who_left(
        tmp_path, engine, fake):
    clock = FakeClock(WEDNESDAY_NOON)
    async with running(tmp_path, engine, fake, clock=clock) as app:
        await seed(app.service.store, [
            row("slack", user, f"{user}-{day}",
                datetime(2026, 11, day, 2, 0, tzinfo=UTC).timestamp(), "good", "positive",
                valence=0.6)
            for user in (ALICE, BOB) for day in (19, 20, 21)])
        await app.command("digest on sun 19:00", response="on")
        await app.command("digest on", user=BOB, response="bob")
        await app.settle()
        assert app.responses("on") == [
            "Weekly digest on: every Sunday at 19:00 (Asia/Shanghai), starting 2026-11-22 "
            "19:00. Weeks without voice notes are skipped. /voicemood digest tz Area/City "
            "changes the time zone."]
        fake.gone.add(BOB)
        await clock.settled()
        assert not fake.calls_to("chat.postMessage")

        await clock.advance(SUNDAY_7PM)
        await fake.wait_for(lambda: fake.calls_to("files.completeUploadExternal"),
                            what="digest chart")
        await clock.settled()
        [digest] = [c.params for c in fake.calls_to("chat.postMessage")]
        assert digest["channel"] == "DU0ALICE"
        assert digest["text"].startswith(
            "📬 Your weekly mood digest\n\nYour mood, last 7 days (Nov 16 - Nov 22, "
            "Asia/Shanghai)\n3 notes, 0.2 min in total.")
        [chart] = fake.calls_to("upload")
        assert chart.body[:8] == PNG_MAGIC
        bob = await app.service.store.journal.schedule("slack", BOB)
        assert (bob.enabled, bob.next_at) == (False, None)


async def test_privacy_mode_stores_no_transcript(tmp_path, engine, fake, clip):
    async with running(tmp_path, engine, fake) as app:
        await app.command("privacy transcripts off", response="off")
        await app.settle()
        assert app.responses("off")[0].startswith(
            "Transcripts off: from now on I keep only the tags and scores of your notes.")
        await app.event(file_message(fake, clip, user=ALICE, channel="D0ALICE",
                                     ts="1700000000.000100", file_id="F0CLIP"))
        await app.settle()
        [reply] = [c.params for c in fake.calls_to("chat.postMessage")]
        assert "happy" in reply["text"].lower()  # shown, not kept
    assert stored_rows(tmp_path) == [(ALICE, "D0ALICE", "F0CLIP", "")]


async def test_ondemand_channel_downloads_nothing_until_the_shortcut(
        tmp_path, engine, fake, clip):
    async with running(tmp_path, engine, fake, slack_channel_mode="ondemand") as app:
        message = file_message(fake, clip, user=ALICE, channel=CHANNEL,
                               ts="1700000000.000200", file_id="F0CHAN")
        await app.event(message)
        await app.settle()
        assert not fake.calls_to("download") and not fake.calls_to("chat.postMessage")
        assert stored_rows(tmp_path) == []

        await app.shortcut({"type": "message", "user": BOB, "ts": "1700000000.000300",
                            "text": "no audio here"}, user=ALICE, response="nothing")
        await app.shortcut(message, user=BOB, response="asked")
        await app.settle()
        assert app.responses("nothing") == [
            "That message has no voice note or audio file I can analyse."]
        [answer] = [c.params for c in fake.calls_to("chat.postMessage")]
        assert (answer["channel"], answer["thread_ts"]) == (CHANNEL, "1700000000.000200")
        assert "happy" in answer["text"].lower()
        # Stored under the clip's sender (Alice), not Bob who asked.
        assert [r[:3] for r in stored_rows(tmp_path)] == [(ALICE, CHANNEL, "F0CHAN")]

        # A DM with the app is analysed on arrival whatever the channel mode.
        await app.event(file_message(fake, clip, user=BOB, channel="D0BOB",
                                     ts="1700000000.000400", file_id="F0DM"))
        await app.settle()
        assert len(fake.calls_to("chat.postMessage")) == 2
        assert len(fake.calls_to("download")) == 2


async def test_a_very_long_transcript_comes_as_a_file_in_the_thread(tmp_path, engine, fake):
    transcript = " ".join(f"Sentence number {i} is here." for i in range(600))
    async with running(tmp_path, engine, fake) as app:
        # The analysis itself is not under test: the service's by-hash cache answers.
        _, analysis = row("slack", "x", "x", 0.0, transcript)
        app.service._cache[hashlib.sha256(b"a very long clip").hexdigest()] = analysis
        await app.event(file_message(fake, b"a very long clip", user=ALICE, channel=CHANNEL,
                                     ts="1700000000.000500", file_id="F0LONG"))
        await app.settle()
        [reply] = [c.params for c in fake.calls_to("chat.postMessage")]
        assert reply["thread_ts"] == "1700000000.000500"
        assert reply["text"].endswith(
            " is here. …\n\nThe transcript is long; here it is in full as a file.")
        assert len(reply["text"]) <= 4000
        [upload] = fake.calls_to("upload")
        assert upload.body == transcript.encode()
        [done] = fake.calls_to("files.completeUploadExternal")
        assert (done.params["channel_id"], done.params["thread_ts"]) == (
            CHANNEL, "1700000000.000500")
