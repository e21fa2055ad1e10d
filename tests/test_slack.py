"""The Slack adapter end to end: the real Bolt app behind ``serve_slack``'s aiohttp server,
signed HTTP requests from the test, a fake Slack Web API on 127.0.0.1 (tests/fake_slack.py),
real ffmpeg, the real offline-tier models and a real SQLite file.

Background work is awaited with bounded polls on what the fake received and on the bot's
task set; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web

from adapters.slack import (
    COMMAND,
    EVENTS_PATH,
    FORGET_NO,
    FORGET_YES,
    MESSAGE_EVENTS,
    TREND_COMMAND,
    WORKING_AFTER_S,
    SlackBot,
    serve_slack,
)
from adapters.slack.files import token_allowed
from app.wiring import open_service
from bot.analysis import Analysis, Sender
from bot.core.service import AnalysisService
from inference.types import FusedEmotion, TextReading, VoiceReading
from tests.audio_factory import speech_file
from tests.conftest import make_settings
from tests.fake_slack import APP_TOKEN, BOT_ID, BOT_TOKEN, BOT_USER_ID, FakeSlack

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
CHANNEL = "C0GENERAL"
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# What users read, written out: a change of wording must show up here.
HELP = (
    "I'm voicemood. Send me a voice note, an audio file or a video note and I'll reply with "
    "what you said and the mood I hear — from your words and your voice — as one of four "
    "tags: 😊 positive, 😔 negative, 😐 neutral, 😠 excited.\n\nWhat I store: for each note, "
    "the transcript, the tags and scores, its length and time, under your user id — never the "
    "audio. Only you can see your history.\n\nRecord an audio clip or share an audio/video "
    "file (m4a, mp4, webm, mp3, ogg, wav...) in a channel where I am, or here in a direct "
    "message, and I reply in its thread.\n• `/voicemood` — this help\n• `/voicemood last` — "
    "analyse your most recent audio file in this channel\n• `/trend [7d|30d|90d]` — your mood "
    "over time (only you see it; the chart comes by direct message)\n• `/voicemood forget` — "
    "delete everything I have stored about you\n"
    "• `/voicemood export [csv|json] [days]` — your history as a file, by direct message\n"
    "• `/voicemood digest [on [weekday] [HH:MM] | off | tz Area/City]` — a weekly mood digest "
    "by direct message\n"
    "• `/voicemood privacy [transcripts off|on]` — what I keep about you\n"
    "• Message menu › *Analyse this voice note* — analyse a clip now (the only way in "
    "channels set to on-demand)")
NOT_AUDIO = ("That doesn't look like audio. Send a voice note or an audio file (ogg, mp3, m4a, "
             "mp4, webm, wav, flac).")
DECODE_ERRORS = {
    NOT_AUDIO,
    "I couldn't decode that audio — the file seems damaged. Could you record it again?",
    "That audio uses a format I can't decode. Please send it as ogg, mp3, m4a or wav.",
}
DOWNLOAD_FAILED = "I couldn't download that file. Please try sending it again."


# ---------------------------------------------------------------------- audio


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Short real speech: a Slack clip (m4a) and a shared mp3."""
    tmp = tmp_path_factory.mktemp("slack_audio")
    return {
        "m4a": speech_file(tmp, "I am so happy today, this is wonderful.", "m4a",
                           name="happy").read_bytes(),
        "mp3": speech_file(tmp, "Good morning, the weather is lovely.", "mp3",
                           name="morning").read_bytes(),
    }


# ---------------------------------------------------------------------- harness


def sign(body: str, timestamp: int, secret: str = SECRET) -> str:
    """Slack's request signature: v0= + HMAC-SHA256(secret, "v0:{ts}:{body}")."""
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass
class Reply:
    """What the app answered over HTTP."""

    status: int
    text: str
    seconds: float

    def json(self) -> dict[str, Any]:
        return json.loads(self.text) if self.text else {}


@dataclass
class Harness:
    """A running ``serve_slack`` with its bot, service, fake Slack and an HTTP client."""

    bot: SlackBot
    service: AnalysisService
    fake: FakeSlack
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.bot.http_port}{EVENTS_PATH}"

    async def post(self, body: str, content_type: str, *, timestamp: int | None = None,
                   signature: str | None = None, headers: dict[str, str] | None = None,
                   signed: bool = True) -> Reply:
        ts = int(time.time()) if timestamp is None else timestamp
        h = {"Content-Type": content_type, **(headers or {})}
        if signed:
            h["X-Slack-Request-Timestamp"] = str(ts)
            h["X-Slack-Signature"] = signature or sign(body, ts)
        t0 = time.monotonic()
        async with self.http.post(self.url, data=body.encode(), headers=h) as resp:
            return Reply(resp.status, await resp.text(), time.monotonic() - t0)

    async def event(self, event: dict[str, Any], *, retry: int | None = None,
                    **kwargs: Any) -> Reply:
        body = json.dumps({
            "token": "legacy", "team_id": "T0TEAM", "api_app_id": "A0VOICE",
            "type": "event_callback", "event_id": f"Ev{event.get('ts', '0')}",
            "event_time": int(time.time()), "event": event,
            "authorizations": [{"team_id": "T0TEAM", "user_id": BOT_USER_ID, "is_bot": True}],
        })
        headers = kwargs.pop("headers", {})
        if retry:
            headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
        return await self.post(body, "application/json", headers=headers, **kwargs)

    async def command(self, command: str, text: str = "", *, user: str = ALICE,
                      channel: str = CHANNEL, response: str = "cmd", **kwargs: Any) -> Reply:
        body = urllib.parse.urlencode({
            "token": "legacy", "team_id": "T0TEAM", "team_domain": "fake", "channel_id": channel,
            "channel_name": "general", "user_id": user, "user_name": user.lower(),
            "command": command, "text": text, "api_app_id": "A0VOICE",
            "response_url": self.fake.response_url(response), "trigger_id": "1.2.3",
        })
        return await self.post(body, "application/x-www-form-urlencoded", **kwargs)

    async def click(self, action_id: str, *, user: str = ALICE, response: str = "click") -> Reply:
        payload = {
            "type": "block_actions", "team": {"id": "T0TEAM", "domain": "fake"},
            "user": {"id": user, "username": user.lower(), "team_id": "T0TEAM"},
            "api_app_id": "A0VOICE", "token": "legacy", "trigger_id": "1.2.3",
            "container": {"type": "message", "message_ts": "1.1", "channel_id": CHANNEL,
                          "is_ephemeral": True},
            "channel": {"id": CHANNEL, "name": "general"},
            "response_url": self.fake.response_url(response),
            "actions": [{"action_id": action_id, "block_id": "voicemood_forget",
                         "type": "button", "value": "x", "action_ts": "1.2"}],
        }
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return await self.post(body, "application/x-www-form-urlencoded")

    async def settle(self) -> None:
        """Wait (bounded) for every background task of the bot."""
        async with asyncio.timeout(90):
            await self.bot.idle()

    async def responses(self, name: str) -> list[dict[str, Any]]:
        await self.fake.wait_for(lambda: self.fake.calls_to("response")
                                 and any(c.params["name"] == name
                                         for c in self.fake.calls_to("response")),
                                 what=f"response_url {name}")
        return [c.params for c in self.fake.calls_to("response") if c.params["name"] == name]


@contextlib.asynccontextmanager
async def running(tmp_path: Path, engine: Any, fake: FakeSlack, *,
                  working_after_s: float = WORKING_AFTER_S, max_tasks: int | None = None,
                  clock: Any = None, **overrides: Any) -> AsyncIterator[Harness]:
    """``serve_slack`` in HTTP mode on a free port, against ``fake`` (``clock``: the bot's
    injectable clock, for the digests)."""
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN, "slack_signing_secret": SECRET, "slack_app_token": None,
        "slack_port": 0, "slack_api_base_url": fake.api_base,
    }
    values.update(overrides)
    settings = make_settings(tmp_path, **values)
    service = await open_service(settings, engine=engine)  # broker mode: the Celery client
    bot = SlackBot(service, settings, working_after_s=working_after_s, max_tasks=max_tasks,
                   clock=clock)
    server = asyncio.create_task(serve_slack(service, settings, bot=bot, host="127.0.0.1"))
    http = aiohttp.ClientSession()
    try:
        ready = asyncio.create_task(bot.ready.wait())
        await asyncio.wait({ready, server}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if server.done():
            server.result()  # raises what stopped it
        assert bot.ready.is_set(), "serve_slack did not start"
        yield Harness(bot, service, fake, http)
    finally:
        await http.close()
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
        await service.close(close_engine=False)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    """A fresh fake Slack per test."""
    f = await FakeSlack().start()
    yield f
    await f.stop()


@pytest.fixture
async def slack(tmp_path: Path, engine: Any, fake: FakeSlack) -> AsyncIterator[Harness]:
    """The app with default settings (and no "working" notice for short clips)."""
    async with running(tmp_path, engine, fake, working_after_s=60) as h:
        yield h


def file_event(file: dict[str, Any], *, user: str = ALICE, channel: str = CHANNEL,
               ts: str = "1700000000.000100", channel_type: str = "channel",
               subtype: str | None = "file_share", **extra: Any) -> dict[str, Any]:
    """A ``message`` event sharing ``file``, as Slack sends it."""
    event = {"type": "message", "channel": channel, "channel_type": channel_type, "user": user,
             "ts": ts, "event_ts": ts, "text": "", "files": [file], "upload": True, **extra}
    if subtype:
        event["subtype"] = subtype
    return event


def posts(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c.params for c in fake.calls_to("chat.postMessage")]


def note(days_ago: float, label: str, valence: float) -> Analysis:
    """A stored-looking analysis ``days_ago`` days back."""
    emotion = FusedEmotion(label=label, confidence=0.9, valence=valence, arousal=0.5, text=None,
                           voice=VoiceReading("calm", 0.3, {"calm": 0.9}, "test"))
    return Analysis(transcript="seeded", language="en", duration_s=5.0, emotion=emotion,
                    models={}, timings={}, created_at=time.time() - days_ago * 86400)


async def seed(service: AnalysisService, user: str, notes: list[Analysis]) -> None:
    await service.store.add_many(
        (Sender("slack", user, CHANNEL, f"seed-{user}-{i}"), a) for i, a in enumerate(notes))


def assert_shows_analysis(text: str, row: Analysis) -> None:
    """A reply about a real note: tag and confidence first, the transcript last."""
    first, *_, heard, transcript = text.split("\n")
    assert first.startswith("*") and first.endswith(
        f" / {row.label} · {row.emotion.confidence:.2f}*")
    word = "转写" if row.language.startswith("zh") else "Transcript"
    assert heard == f"{word} ({row.duration_s:.1f} s, {row.language}):"
    assert transcript == row.transcript.replace("&", "&amp;").replace("<", "&lt;").replace(
        ">", "&gt;")


def assert_no_secrets(fake: FakeSlack) -> None:
    """Nothing the app sent to Slack carries a token or an internal error."""
    for call in fake.calls:
        text = json.dumps(call.params, ensure_ascii=False)
        assert BOT_TOKEN not in text and SECRET not in text
        assert "Traceback" not in text and "Error(" not in text


# ---------------------------------------------------------------------- files


async def test_recorded_clip_is_answered_in_its_thread(tmp_path, engine, fake, clips):
    async with running(tmp_path, engine, fake, working_after_s=0) as h:
        ts = "1700000001.000200"
        file = fake.add_file("F1CLIP", clips["m4a"], name="audio_message.m4a",
                             mimetype="audio/mp4", filetype="m4a", user=ALICE, channel=CHANNEL,
                             ts=ts, subtype="slack_audio", duration_ms=3200)
        reply = await h.event(file_event(file, ts=ts))
        # Acknowledged before the work is done: nothing is stored yet.
        assert reply.status == 200 and reply.seconds < 3
        assert await h.service.count("slack", ALICE) == 0

        await fake.wait_for(lambda: len(posts(fake)) >= 2, what="notice and result")
        await h.settle()
        stored = await h.service.store.get_by_message("slack", CHANNEL, "F1CLIP")
        assert stored is not None and stored.sender.user_id == ALICE
        assert "happy" in stored.transcript.lower()
        notice, result = posts(fake)
        assert notice["text"] == "🎧 Transcribing 3 s of audio…"
        assert_shows_analysis(result["text"], stored)
        assert {p["channel"] for p in (notice, result)} == {CHANNEL}
        assert {p["thread_ts"] for p in (notice, result)} == {ts}
        downloads = fake.calls_to("download")
        assert len(downloads) == 1 and downloads[0].params["file"] == "F1CLIP"
        assert downloads[0].headers["Authorization"] == f"Bearer {BOT_TOKEN}"
        assert not fake.calls_to("files.info")  # the event carried the whole file object
        assert await h.service.count("slack", ALICE) == 1
        assert_no_secrets(fake)


async def test_shared_mp3_in_a_dm_is_looked_up_and_answered(slack, fake, clips):
    ts = "1700000002.000300"
    dm = "D0ALICE"
    fake.add_file("F2MP3", clips["mp3"], name="morning.mp3", mimetype="audio/mpeg",
                  filetype="mp3", user=ALICE, channel=dm, ts=ts)
    # Newer clients send no subtype, and a Slack Connect style stub needs files.info.
    stub = {"id": "F2MP3", "file_access": "check_file_info"}
    reply = await slack.event(file_event(stub, channel=dm, channel_type="im", ts=ts,
                                         subtype=None))
    assert reply.status == 200

    await fake.wait_for(lambda: posts(fake), what="the analysis")
    await slack.settle()
    assert [c.params["file"] for c in fake.calls_to("files.info")] == ["F2MP3"]
    stored = await slack.service.store.get_by_message("slack", dm, "F2MP3")
    assert stored is not None and "morning" in stored.transcript.lower()
    # A quick clip gets no "working" notice: just the result.
    (result,) = posts(fake)
    assert (result["channel"], result["thread_ts"]) == (dm, ts)
    assert_shows_analysis(result["text"], stored)
    assert len(fake.calls_to("download")) == 1


async def test_non_audio_files_get_a_clear_reply(slack, fake):
    pdf = fake.add_file("F3PDF", b"%PDF-1.4 not audio", name="report.pdf",
                        mimetype="application/pdf", filetype="pdf", user=ALICE,
                        channel=CHANNEL, ts="1700000003.000100")
    png = fake.add_file("F3PNG", PNG_MAGIC + b"x" * 100, name="cat.png", mimetype="image/png",
                        filetype="png", user=ALICE, channel="D0ALICE", ts="1700000003.000200")
    fake_mp3 = fake.add_file("F3FAKE", b"this is not audio at all\n" * 200, name="voice.mp3",
                             mimetype="audio/mpeg", filetype="mp3", user=ALICE,
                             channel=CHANNEL, ts="1700000003.000300")
    not_audio = NOT_AUDIO

    # A PDF in a channel: told to the uploader only, in the message's thread.
    assert (await slack.event(file_event(pdf, ts="1700000003.000100"))).status == 200
    await fake.wait_for(lambda: fake.calls_to("chat.postEphemeral"), what="ephemeral reply")
    eph = fake.calls_to("chat.postEphemeral")[0].params
    assert eph == {**eph, "channel": CHANNEL, "user": ALICE, "thread_ts": "1700000003.000100",
                   "text": not_audio}

    # An image in a DM: a normal thread reply.
    assert (await slack.event(file_event(png, channel="D0ALICE", channel_type="im",
                                         ts="1700000003.000200"))).status == 200
    await fake.wait_for(lambda: posts(fake), what="DM reply")
    assert posts(fake)[0]["text"] == not_audio
    assert posts(fake)[0]["thread_ts"] == "1700000003.000200"

    # Something that only claims to be audio: downloaded, refused by the decoder, in thread.
    assert (await slack.event(file_event(fake_mp3, ts="1700000003.000300"))).status == 200
    await fake.wait_for(lambda: len(posts(fake)) >= 2, what="decoder refusal")
    await slack.settle()
    refusal = posts(fake)[1]
    assert refusal["thread_ts"] == "1700000003.000300"
    assert refusal["text"] in DECODE_ERRORS
    assert [c.params["file"] for c in fake.calls_to("download")] == ["F3FAKE"]
    assert await slack.service.count("slack", ALICE) == 0
    assert_no_secrets(fake)


async def test_over_size_files_are_refused_before_and_while_downloading(tmp_path, engine,
                                                                        fake):
    limit = 100_000
    too_large = "That file is too large for me (97.7 KB). Please send a shorter recording."
    async with running(tmp_path, engine, fake, max_audio_bytes=limit) as h:
        big = fake.add_file("F4BIG", b"\0" * 10, size=5_000_000, name="long.m4a",
                            mimetype="audio/mp4", filetype="m4a", user=ALICE, channel=CHANNEL,
                            ts="1700000004.000100")
        await h.event(file_event(big, ts="1700000004.000100"))
        await fake.wait_for(lambda: posts(fake), what="size refusal")
        await h.settle()
        assert posts(fake)[0]["text"] == too_large
        assert posts(fake)[0]["thread_ts"] == "1700000004.000100"
        assert not fake.calls_to("download")  # refused on the declared size alone

        # A file whose declared size lies (1 KB, then 200 MB stream in) is cut off at the
        # limit: not even a mebibyte more is read.
        liar = fake.add_file("F4LIAR", b"", size=1_000, name="short.mp3",
                             mimetype="audio/mpeg", filetype="mp3", user=ALICE,
                             channel=CHANNEL, ts="1700000004.000200")
        fake.streams["F4LIAR"] = 200 * 1024 * 1024
        await h.event(file_event(liar, ts="1700000004.000200"))
        await fake.wait_for(lambda: len(posts(fake)) >= 2, what="stream refusal")
        await h.settle()
        assert posts(fake)[1]["text"] == too_large
        assert [c.params["file"] for c in fake.calls_to("download")] == ["F4LIAR"]
        assert limit < fake.streamed["F4LIAR"] < limit + 1024 * 1024

        # Slack tells the length of clips: one over the limit is refused unseen, too.
        long = fake.add_file("F4LONG", b"\0" * 10, name="clip.webm", mimetype="audio/webm",
                             filetype="webm", user=ALICE, channel=CHANNEL,
                             ts="1700000004.000300", subtype="slack_audio",
                             duration_ms=700_000)
        await h.event(file_event(long, ts="1700000004.000300"))
        await fake.wait_for(lambda: len(posts(fake)) >= 3, what="length refusal")
        await h.settle()
        assert posts(fake)[2]["text"] == ("That recording is too long: I analyse up to 10 min. "
                                          "Please send a shorter one.")
        assert len(fake.calls_to("download")) == 1
        assert await h.service.count("slack", ALICE) == 0


async def test_retried_event_is_analysed_and_answered_once(slack, fake, clips):
    ts = "1700000005.000100"
    file = fake.add_file("F5CLIP", clips["m4a"], name="audio_message.m4a", mimetype="audio/mp4",
                         filetype="m4a", user=ALICE, channel=CHANNEL, ts=ts,
                         subtype="slack_audio")
    event = file_event(file, ts=ts)
    # The first delivery and a retry racing it...
    first, second = await asyncio.gather(slack.event(event), slack.event(event, retry=1))
    assert first.status == second.status == 200
    await fake.wait_for(lambda: posts(fake), what="the analysis")
    await slack.settle()
    # ...and a retry after the answer went out,
    assert (await slack.event(event, retry=2)).status == 200
    await slack.settle()
    # ...even after a restart, when only the history remembers the file.
    slack.service._handled.clear()  # what a restart forgets
    assert (await slack.event(event, retry=3)).status == 200
    await slack.settle()

    assert len(posts(fake)) == 1
    assert len(fake.calls_to("download")) == 1
    assert await slack.service.count("slack", ALICE) == 1

    # A refusal stores nothing, yet its retry is not answered twice either.
    pdf = fake.add_file("F5PDF", b"%PDF", name="r.pdf", mimetype="application/pdf",
                        filetype="pdf", user=ALICE, channel=CHANNEL, ts="1700000005.2")
    await slack.event(file_event(pdf, ts="1700000005.2"))
    await slack.settle()
    await slack.event(file_event(pdf, ts="1700000005.2"), retry=1)
    await slack.settle()
    assert len(fake.calls_to("chat.postEphemeral")) == 1


async def test_messages_from_bots_are_ignored(slack, fake, clips):
    own = fake.add_file("F6OWN", clips["m4a"], name="a.m4a", mimetype="audio/mp4",
                        filetype="m4a", user=BOT_USER_ID, channel=CHANNEL, ts="1700000006.1")
    other = fake.add_file("F6BOT", clips["m4a"], name="b.m4a", mimetype="audio/mp4",
                          filetype="m4a", user="U0OTHERBOT", channel=CHANNEL, ts="1700000006.2")
    events = [
        file_event(own, user=BOT_USER_ID, ts="1700000006.1", bot_id=BOT_ID),
        file_event(other, user="U0OTHERBOT", ts="1700000006.2", subtype="bot_message",
                   bot_id="B0OTHER"),
        file_event(other, user="U0OTHERBOT", ts="1700000006.3", bot_id="B0OTHER",
                   bot_profile={"id": "B0OTHER", "name": "otherbot"}),
    ]
    for event in events:
        assert (await slack.event(event)).status == 200
        assert not slack.bot.busy  # nothing was started
    await slack.settle()
    assert set(fake.methods()) <= {"auth.test"}
    assert await slack.service.count("slack", BOT_USER_ID) == 0
    assert await slack.service.count("slack", "U0OTHERBOT") == 0


#: A known analysis, so the reply can be written out in full.
#: Its confidence is what its readings fuse to: the service reads the tag again against the
#: person's (here empty) voice baseline before storing it (inference.arousal_baseline).
KNOWN = Analysis(
    transcript="I *really* mean it_ok ~not~ `this` <!channel> & more", language="en",
    duration_s=3.2,
    emotion=FusedEmotion(label="negative", confidence=0.70, valence=-0.5, arousal=0.6,
                         text=TextReading("negative", {"negative": 0.7}, "lexicon"),
                         voice=VoiceReading("agitated", 0.72, {"agitated": 0.8}, "prosody")),
    models={"asr": "whisper-base"}, timings={},
)
J = "\u2060"  # the invisible word joiner that keeps a mark from formatting


async def test_reply_to_a_known_analysis_escapes_the_speakers_words(slack, fake, clips,
                                                                     monkeypatch):
    """Tag, confidence, readings, transcript; *bold*, _it_, ~st~, `code` and mentions in
    what was said show as typed, in English and in Chinese."""
    results = [KNOWN, replace(KNOWN, transcript="今天*真*不开心", language="zh")]

    async def known(audio: bytes, on_stage: object = None) -> Analysis:
        return replace(results.pop(0))

    monkeypatch.setattr(slack.service, "analyze_bytes", known)
    for n in (1, 2):
        ts = f"1700000020.00000{n}"
        file = fake.add_file(f"F20K{n}", clips["m4a"], name="a.m4a", mimetype="audio/mp4",
                             filetype="m4a", user=ALICE, channel=CHANNEL, ts=ts)
        await slack.event(file_event(file, ts=ts))
        await fake.wait_for(lambda n=n: len(posts(fake)) == n, what="the analysis")
    await slack.settle()
    en, zh = (p["text"] for p in posts(fake))
    assert en == (
        "*😔 负向 / negative · 0.70*\n"
        "🎙 voice: agitated (arousal 0.72)\n"
        "📝 words: negative (0.70)\n"
        "\n"
        "Transcript (3.2 s, en):\n"
        f"I {J}*{J}really{J}*{J} mean it{J}_{J}ok {J}~{J}not{J}~{J} {J}`{J}this{J}`{J} "
        "&lt;!channel&gt; &amp; more")
    assert zh == (
        "*😔 负向 / negative · 0.70*\n"
        "🎙 声音: 躁动 (激活度 0.72)\n"
        "📝 文字: 负向 (0.70)\n"
        "\n"
        "转写 (3.2 s, zh):\n"
        f"今天{J}*{J}真{J}*{J}不开心")


async def test_a_rate_limited_reply_is_retried_after_retry_after(slack, fake, clips):
    fake.fail_next("chat.postMessage", 429, {"Retry-After": "1"})
    ts = "1700000021.000100"
    file = fake.add_file("F21", clips["m4a"], name="a.m4a", mimetype="audio/mp4",
                         filetype="m4a", user=ALICE, channel=CHANNEL, ts=ts)
    await slack.event(file_event(file, ts=ts))
    await fake.wait_for(lambda: len(fake.calls_to("chat.postMessage")) == 2, what="the retry")
    await slack.settle()
    first, second = fake.calls_to("chat.postMessage")
    assert first.params["_failed"] == 429 and "_failed" not in second.params
    assert second.params["thread_ts"] == ts and "Transcript (" in second.params["text"]


@pytest.fixture
async def attacker() -> AsyncIterator[list[dict[str, str]]]:
    """Another server on another loopback port; records the headers of every request."""
    seen: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.Response(body=b"\0" * 100, content_type="audio/mp4")

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    seen.append({"_url": f"http://127.0.0.1:{runner.addresses[0][1]}"})
    yield seen
    await runner.cleanup()


async def test_the_token_never_goes_to_another_port_or_through_a_redirect(slack, fake,
                                                                          clips, attacker):
    evil = attacker.pop(0)["_url"]
    ts1, ts2 = "1700000022.000100", "1700000022.000200"
    file = fake.add_file("F22EVIL", clips["m4a"], name="a.m4a", mimetype="audio/mp4",
                         filetype="m4a", user=ALICE, channel=CHANNEL, ts=ts1)
    file["url_private_download"] = f"{evil}/files-pri/F22EVIL/download/a.m4a"
    await slack.event(file_event(file, ts=ts1))
    # The real Slack host, redirecting elsewhere.
    moved = fake.add_file("F22MOVED", clips["m4a"], name="b.m4a", mimetype="audio/mp4",
                          filetype="m4a", user=ALICE, channel=CHANNEL, ts=ts2)
    fake.redirects["F22MOVED"] = f"{evil}/stolen"
    await slack.event(file_event(moved, ts=ts2))
    await fake.wait_for(lambda: len(posts(fake)) == 2, what="two refusals")
    await slack.settle()
    assert [(p["thread_ts"], p["text"]) for p in posts(fake)] in (
        [(ts1, DOWNLOAD_FAILED), (ts2, DOWNLOAD_FAILED)],
        [(ts2, DOWNLOAD_FAILED), (ts1, DOWNLOAD_FAILED)])
    assert all("Authorization" not in h for h in attacker)
    assert [c.params["file"] for c in fake.calls_to("download")] == ["F22MOVED"]
    assert await slack.service.count("slack", ALICE) == 0


def test_the_token_may_go_only_to_exact_slack_origins():
    prod = "https://slack.com/api/"
    assert token_allowed("https://files.slack.com/files-pri/T1-F1/download/a.m4a", prod)
    assert token_allowed("https://slack.com/files-pri/T1-F1/a.m4a", prod)  # the API's own
    for url in ("http://files.slack.com/files-pri/T1-F1/a.m4a",  # plain HTTP
                "http://slack.com:8080/files-pri/a.m4a", "https://slack.com:8443/a.m4a",
                "https://files.slack.com:444/a.m4a", "https://evil.slack.com/a.m4a",
                "https://files.slack.com.evil.example/a.m4a", "https://files.slack.com:x/a",
                "files.slack.com/a.m4a", ""):
        assert not token_allowed(url, prod), url
    double = "http://127.0.0.1:5000/api/"  # a test double or proxy, configured on purpose
    assert token_allowed("http://127.0.0.1:5000/files-pri/F1/a.m4a", double)
    assert not token_allowed("http://127.0.0.1:5001/files-pri/F1/a.m4a", double)
    assert not token_allowed("https://127.0.0.1:5000/files-pri/F1/a.m4a", double)


async def test_messages_beyond_the_task_cap_get_a_busy_reply(tmp_path, engine, fake, clips):
    async with running(tmp_path, engine, fake, working_after_s=60, max_tasks=1) as h:
        fake.hold_downloads = asyncio.Event()
        ts1, ts2 = "1700000023.000100", "1700000023.000200"
        one = fake.add_file("F23A", clips["m4a"], name="a.m4a", mimetype="audio/mp4",
                            filetype="m4a", user=ALICE, channel=CHANNEL, ts=ts1)
        two = fake.add_file("F23B", clips["mp3"], name="b.mp3", mimetype="audio/mpeg",
                            filetype="mp3", user=BOB, channel=CHANNEL, ts=ts2)
        await h.event(file_event(one, ts=ts1))
        await fake.wait_for(lambda: fake.calls_to("download"), what="the first download")
        await h.event(file_event(two, user=BOB, ts=ts2))
        await fake.wait_for(lambda: posts(fake), what="the busy reply")
        assert posts(fake)[0]["thread_ts"] == ts2
        assert posts(fake)[0]["text"] == ("I'm busy with other recordings right now. Please "
                                          "try again in about 30 s.")
        fake.hold_downloads.set()
        await fake.wait_for(lambda: len(posts(fake)) == 2, what="the first answer")
        await h.settle()
        assert posts(fake)[1]["thread_ts"] == ts1
        assert "Transcript (" in posts(fake)[1]["text"]
        assert [c.params["file"] for c in fake.calls_to("download")] == ["F23A"]


# ---------------------------------------------------------------------- commands


async def test_voicemood_without_argument_shows_help(slack, fake):
    reply = await slack.command("/voicemood")
    assert reply.status == 200 and reply.seconds < 3
    body = reply.json()
    assert body["text"] == HELP
    assert "/voicemood last" in body["text"] and "/trend" in body["text"]
    assert body.get("response_type", "ephemeral") == "ephemeral"

    unknown = (await slack.command("/voicemood", "dance <!channel>")).json()["text"]
    assert unknown.startswith("I don't know `dance`.\n\nRecord an audio clip")
    assert "<!channel>" not in unknown
    assert not slack.bot.busy
    await slack.settle()
    assert not fake.calls_to("chat.postMessage")

    # Text typed into a DM with the app gets the help too; text in a channel is left alone.
    chat = {"type": "message", "user": ALICE, "text": "hello?", "ts": "1700000011.1"}
    await slack.event({**chat, "channel": CHANNEL, "channel_type": "channel"})
    await slack.event({**chat, "channel": "D0ALICE", "channel_type": "im"})
    await fake.wait_for(lambda: posts(fake), what="DM help")
    await slack.settle()
    (dm_help,) = posts(fake)
    assert dm_help["channel"] == "D0ALICE"
    assert dm_help["text"] == HELP


async def test_voicemood_last_analyses_the_callers_latest_audio_file(slack, fake, clips):
    now = int(time.time())
    share_ts = "1700000007.000100"
    fake.add_file("F7OLD", clips["mp3"], name="morning.mp3", mimetype="audio/mpeg",
                  filetype="mp3", user=ALICE, channel=CHANNEL, ts=share_ts, created=now - 600)
    fake.add_file("F7PDF", b"%PDF", name="notes.pdf", mimetype="application/pdf",
                  filetype="pdf", user=ALICE, channel=CHANNEL, ts="1700000007.2",
                  created=now - 60)
    fake.add_file("F7BOB", clips["m4a"], name="bob.m4a", mimetype="audio/mp4", filetype="m4a",
                  user=BOB, channel=CHANNEL, ts="1700000007.3", created=now - 30)
    fake.add_file("F7ELSEWHERE", clips["m4a"], name="x.m4a", mimetype="audio/mp4",
                  filetype="m4a", user=ALICE, channel="C0OTHER", ts="1700000007.4",
                  created=now - 10)

    reply = await slack.command("/voicemood", "last", response="last1")
    assert reply.status == 200 and reply.seconds < 3
    assert reply.json()["text"] == "🔎 Looking for your latest audio file in this channel…"
    await fake.wait_for(lambda: posts(fake), what="the analysis")
    await slack.settle()

    listing = fake.calls_to("files.list")[0].params
    assert listing["channel"] == CHANNEL and listing["user"] == ALICE
    stored = await slack.service.store.get_by_message("slack", CHANNEL, "F7OLD")
    assert stored is not None and stored.sender.user_id == ALICE
    (result,) = posts(fake)
    assert result["channel"] == CHANNEL and result["thread_ts"] == share_ts
    assert_shows_analysis(result["text"], stored)
    assert [c.params["file"] for c in fake.calls_to("download")] == ["F7OLD"]

    # Asking again answers privately from the history: no new download, post or row.
    await slack.command("/voicemood", "last", response="last2")
    (again,) = await slack.responses("last2")
    await slack.settle()
    assert again["response_type"] == "ephemeral"
    intro, analysis = again["text"].split("\n\n", 1)
    assert intro == "I analysed that file before — here is the result:"
    assert_shows_analysis(analysis, stored)
    assert len(fake.calls_to("download")) == 1 and len(posts(fake)) == 1
    assert await slack.service.count("slack", ALICE) == 1

    # Someone without audio here is told so.
    await slack.command("/voicemood", "last", user=CAROL, response="last3")
    (none,) = await slack.responses("last3")
    assert none["text"] == ("I couldn't find an audio file from you in this channel. Record a "
                            "clip or share an audio file here first (I only see channels I'm a "
                            "member of).")
    await slack.settle()

    # A /voicemood last racing the clip's own event leaves the work to the event.
    new = fake.add_file("F7NEW", clips["m4a"], name="audio_message.m4a", mimetype="audio/mp4",
                        filetype="m4a", user=ALICE, channel=CHANNEL, ts="1700000007.5",
                        subtype="slack_audio", created=now)
    # The clip's download is held, so its analysis is surely in hand when /last arrives.
    fake.hold_downloads = asyncio.Event()
    await slack.event(file_event(new, ts="1700000007.5"))
    await fake.wait_for(lambda: len(fake.calls_to("download")) == 2, what="the clip's download")
    await slack.command("/voicemood", "last", response="last4")
    (racing,) = await slack.responses("last4")
    assert racing["text"] == ("I'm already analysing that file; the reply will appear in its "
                              "thread.")
    fake.hold_downloads.set()
    fake.hold_downloads = None
    await fake.wait_for(lambda: len(posts(fake)) >= 2, what="the clip's answer")
    await slack.settle()
    assert posts(fake)[1]["thread_ts"] == "1700000007.5"
    assert [c.params["file"] for c in fake.calls_to("download")] == ["F7OLD", "F7NEW"]
    assert await slack.service.count("slack", ALICE) == 2


async def test_trend_is_private_and_the_chart_goes_to_a_dm(slack, fake):
    # Whole days back from now: each note on its own calendar day, whatever the hour the
    # test runs at (0.1 days back was yesterday in the first 2.4 h after midnight UTC).
    await seed(slack.service, ALICE, [note(d, lbl, v) for d, lbl, v in [
        (0, "positive", 0.7), (1, "neutral", 0.1), (2, "negative", -0.5),
        (3, "positive", 0.6), (4, "excited", 0.4)]])
    await seed(slack.service, BOB, [note(d, "negative", -0.9) for d in (0, 1, 2, 3)])

    reply = await slack.command("/trend", "30d", response="trend1")
    assert reply.status == 200 and reply.json()["text"] == "📈 Building your mood trend…"
    (answer,) = await slack.responses("trend1")
    await slack.settle()
    assert answer["response_type"] == "ephemeral"
    today = datetime.now(UTC).date()
    first, low = today - timedelta(days=29), today - timedelta(days=2)
    assert answer["text"] == (
        f"Your mood, last 30 days ({first:%b} {first.day} - {today:%b} {today.day}, UTC)\n"
        "5 notes, 0.4 min in total.\n"
        "Tags: positive 40%, negative 20%, neutral 20%, excited 20%.\n"
        "Mood score: +0.26 (from -1 to +1), no notes in the previous 30 days to compare with.\n"
        "Most frequent voice emotion: calm.\n"
        f"Lowest day: {low:%a} {low:%b} {low.day} (-0.50).\n\n"
        "📈 I've sent you the chart in a direct message.")
    assert not posts(fake)  # nothing in the channel

    (opened,) = fake.calls_to("conversations.open")
    assert opened.params["users"] == ALICE
    (get_url,) = fake.calls_to("files.getUploadURLExternal")
    assert get_url.params["filename"] == "voicemood-trend-30d.png"
    (upload,) = fake.calls_to("upload")
    assert upload.body.startswith(PNG_MAGIC) and int(get_url.params["length"]) == len(upload.body)
    (complete,) = fake.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == "D" + ALICE
    assert json.loads(complete.params["files"])[0]["id"] == upload.params["file"]

    # A bad period is answered at once; someone without history gets text and no chart.
    bad = await slack.command("/trend", "fortnight", response="trend2")
    assert "fortnight" in bad.json()["text"] and not slack.bot.busy
    await slack.command("/trend", "", user=CAROL, response="trend3")
    (empty,) = await slack.responses("trend3")
    await slack.settle()
    assert empty["text"] == ("No voice notes in the last 7 days yet -- send a few to see your "
                             "trend.")
    assert len(fake.calls_to("upload")) == 1


async def test_forget_asks_first_then_deletes_only_the_caller(slack, fake):
    service = slack.service
    await seed(slack.service, ALICE, [note(1, "positive", 0.5), note(2, "negative", -0.5)])
    await seed(slack.service, BOB, [note(1, "neutral", 0.0)])

    ask = (await slack.command("/voicemood", "forget")).json()
    question = ("This deletes everything I have stored about you (2 analyses). It cannot be "
                "undone. Are you sure?")
    assert ask["text"] == question
    buttons = [e for b in ask["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == [FORGET_YES, FORGET_NO]
    assert await service.count("slack", ALICE) == 2  # nothing deleted by asking

    assert (await slack.click(FORGET_NO, response="no")).status == 200
    (cancelled,) = await slack.responses("no")
    assert cancelled["text"] == "Cancelled — nothing was deleted."
    assert cancelled["replace_original"] is True
    assert await service.count("slack", ALICE) == 2

    assert (await slack.click(FORGET_YES, response="yes")).status == 200
    (done,) = await slack.responses("yes")
    await slack.settle()
    assert done["text"] == "Done: 2 analyses deleted. Nothing about you is stored now."
    assert done["response_type"] == "ephemeral" and done["replace_original"] is True
    assert await service.count("slack", ALICE) == 0
    assert await service.count("slack", BOB) == 1

    again = (await slack.command("/voicemood", "forget")).json()
    assert again["text"] == "I have nothing stored about you."
    assert "blocks" not in again


# ---------------------------------------------------------------------- request checks


async def test_forged_or_missing_signature_is_refused(slack, fake, clips):
    file = fake.add_file("F9", clips["m4a"], name="a.m4a", mimetype="audio/mp4", filetype="m4a",
                         user=ALICE, channel=CHANNEL, ts="1700000009.1")
    forged = sign("something else", int(time.time()))
    assert (await slack.event(file_event(file, ts="1700000009.1"), signature=forged)).status \
        == 401
    wrong_secret = await slack.command("/voicemood", "forget",
                                       signature="v0=" + "0" * 64)
    assert wrong_secret.status == 401 and "forget" not in wrong_secret.text
    assert (await slack.event(file_event(file, ts="1700000009.1"), signed=False)).status == 401
    await slack.settle()
    assert fake.calls == []  # not even auth.test: refused before anything else
    assert await slack.service.count("slack", ALICE) == 0


async def test_stale_timestamp_is_refused(slack, fake):
    stale = int(time.time()) - 6 * 60
    reply = await slack.command("/voicemood", "", timestamp=stale)  # correctly signed, but old
    assert reply.status == 401
    future = int(time.time()) + 6 * 60
    assert (await slack.command("/voicemood", "", timestamp=future)).status == 401
    assert fake.calls == []
    # The same request, fresh, is accepted: it was only the timestamp.
    assert (await slack.command("/voicemood", "")).status == 200


# ---------------------------------------------------------------------- manifest


def test_manifest_matches_what_the_app_handles():
    path = Path(__file__).resolve().parent.parent / "adapters" / "slack_manifest.yml"
    manifest = yaml.safe_load(path.read_text())
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == \
        {COMMAND, TREND_COMMAND}
    settings = manifest["settings"]
    assert tuple(settings["event_subscriptions"]["bot_events"]) == MESSAGE_EVENTS
    assert settings["interactivity"]["is_enabled"] is True  # the forget buttons
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True
    # Exactly what the calls need: history (message events), chat:write (replies), files:read
    # (files.info, files.list, downloads), files:write + im:write (chart by DM), commands.
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "channels:history", "groups:history", "im:history", "mpim:history", "chat:write",
        "files:read", "files:write", "im:write", "commands"}


# ---------------------------------------------------------------------- modes


async def test_http_mode_refuses_to_start_without_a_signing_secret(tmp_path, service, fake):
    settings = make_settings(tmp_path, slack_bot_token=BOT_TOKEN, slack_signing_secret=None,
                             slack_app_token=None, slack_api_base_url=fake.api_base)
    with pytest.raises(RuntimeError, match="SLACK_SIGNING_SECRET"):
        await serve_slack(service, settings)
    assert fake.calls == []


async def test_socket_mode_answers_commands_and_events(tmp_path, service, fake):
    settings = make_settings(tmp_path, slack_bot_token=BOT_TOKEN, slack_app_token=APP_TOKEN,
                             slack_signing_secret=None, slack_api_base_url=fake.api_base)
    bot = SlackBot(service, settings)
    server = asyncio.create_task(serve_slack(service, settings, bot=bot))
    try:
        await fake.wait_for(lambda: bot.ready.is_set() or server.done(), limit_s=20,
                            what="socket mode connection")
        assert bot.ready.is_set(), server
        (opened,) = fake.calls_to("apps.connections.open")
        assert opened.headers["Authorization"] == f"Bearer {APP_TOKEN}"

        await fake.socket_send({
            "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"command": "/voicemood", "text": "", "user_id": ALICE,
                        "channel_id": CHANNEL, "team_id": "T0TEAM",
                        "response_url": fake.response_url("sock"), "trigger_id": "1.2.3"},
        })
        await fake.wait_for(lambda: fake.socket_acks, what="socket ack")
        ack = fake.socket_acks[0]
        assert ack["envelope_id"] == "env-1"
        assert ack["payload"]["text"] == HELP

        pdf = fake.add_file("F10PDF", b"%PDF", name="r.pdf", mimetype="application/pdf",
                            filetype="pdf", user=ALICE, channel=CHANNEL, ts="1700000010.1")
        await fake.socket_send({
            "envelope_id": "env-2", "type": "events_api", "accepts_response_payload": False,
            "retry_attempt": 0, "retry_reason": "",
            "payload": {"type": "event_callback", "team_id": "T0TEAM", "api_app_id": "A0VOICE",
                        "event_id": "Ev10", "event": file_event(pdf, ts="1700000010.1")},
        })
        await fake.wait_for(lambda: fake.calls_to("chat.postEphemeral"), what="socket event")
        assert {a["envelope_id"] for a in fake.socket_acks} == {"env-1", "env-2"}
        assert fake.calls_to("chat.postEphemeral")[0].params["text"] == NOT_AUDIO
    finally:
        server.cancel()
        await asyncio.gather(server, return_exceptions=True)
    assert not bot.busy
