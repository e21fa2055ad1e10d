"""The Telegram adapter, end to end: the real python-telegram-bot Application, polling a
fake Bot API server on 127.0.0.1 (tests/fake_telegram.py), the real service, ffmpeg, SQLite
file and offline-tier models. Only Telegram itself is faked.

Each test starts ``serve_telegram`` exactly as ``voicemood serve`` does, pushes updates
into the fake's getUpdates queue and asserts on what the bot sent and what the database
holds. Real Whisper runs cost seconds, so the number of distinct clips analysed per test
is kept small (the service caches repeated bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.telegram import serve_telegram
from adapters.telegram.texts import MESSAGE_LIMIT, split_message, utf16_len
from bot.analysis import Analysis, Sender
from bot.core.service import AnalysisService
from bot.ops.logs import RedactingFormatter
from inference.engine import InferenceEngine
from inference.types import FusedEmotion, TextReading, VoiceReading
from tests import fake_telegram as fk
from tests.audio_factory import speech_file, tone_or_silence
from tests.conftest import make_settings
from tests.fake_telegram import Call, FakeTelegram

pytestmark = pytest.mark.filterwarnings(
    # AIORateLimiter reads RetryAfter.retry_after, which PTB 22 flags for a future change.
    "ignore:.*retry_after.*:telegram.warnings.PTBDeprecationWarning"
)

TOKEN = "123456789:AAH-fake-token-for-voicemood-tests-0123456789"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BAD_WAV = (b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x99\x99\x01\x00\x80\x3e\x00\x00"
           b"\x00\x7d\x00\x00\x02\x00\x10\x00data\x00\x10\x00\x00" + b"\x00" * 4096)

ALICE = fk.user(1001, "Alice", "en")
BOB = fk.user(1002, "Bob", "zh-hans")
CAROL = fk.user(1003, "Carol", "de")  # neither English nor Chinese: English replies


# --------------------------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """Short real speech in every format a Telegram user can send, made once."""
    d = tmp_path_factory.mktemp("telegram_clips")
    spoken = {
        "happy": ("I am so happy today.", "ogg"),
        "weather": ("The weather is terrible.", "mp3"),
        "video": ("Hello from a round video.", "mp4"),
        "document": ("This is an audio document.", "m4a"),
        "morning": ("Good morning everyone.", "ogg"),
        "thanks": ("Thank you very much.", "ogg"),
    }
    out = {key: speech_file(d, text, fmt, name=key).read_bytes()
           for key, (text, fmt) in spoken.items()}
    out["silence"] = tone_or_silence(d, "silence").read_bytes()
    out["tone"] = tone_or_silence(d, "tone").read_bytes()
    return out


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    """The fake Bot API server."""
    server = FakeTelegram(TOKEN)
    await server.start()
    yield server
    await server.stop()


def bot_settings(fake: FakeTelegram, tmp_path: Path, **overrides: Any):
    """Settings pointing the bot at the fake server, with a database under ``tmp_path``."""
    values: dict[str, Any] = {"telegram_bot_token": TOKEN,
                              "telegram_api_base_url": fake.api_base,
                              "telegram_file_base_url": fake.file_base}
    values.update(overrides)
    return make_settings(tmp_path, **values)


#: Analyses of the clips, shared between the tests' services (see ``running_bot``).
_SHARED_CACHE: dict[str, Any] = {}


@contextlib.asynccontextmanager
async def running_bot(fake: FakeTelegram, tmp_path: Path, engine: InferenceEngine, *,
                      share_cache: bool = True, clock: Any = None,
                      prepare: Callable[[AnalysisService], Awaitable[None]] | None = None,
                      **overrides: Any) -> AsyncIterator[AnalysisService]:
    """``serve_telegram`` running as a task (as ``voicemood serve`` runs it; ``clock``: its
    injectable clock, for the digests). ``prepare`` runs on the service before ``serve``
    starts (what an earlier run left in the database).

    With ``share_cache`` the service starts with the analyses of clips earlier tests already
    ran through the models (the service's own by-hash cache), so each clip costs one Whisper
    run per file rather than per test. Tests about engine concurrency turn it off.
    """
    settings = bot_settings(fake, tmp_path, **overrides)
    service = await AnalysisService.create(settings, engine=engine)
    cache = getattr(service, "_cache", None) if share_cache else None
    if isinstance(cache, dict):
        cache.update(_SHARED_CACHE)
    task: asyncio.Task[None] | None = None
    try:
        if prepare is not None:
            await prepare(service)
        task = asyncio.create_task(serve_telegram(service, settings, clock=clock))
        first_poll = len(fake.calls_to("getUpdates"))
        await fake.wait_for(lambda: len(fake.calls_to("getUpdates")) > first_poll
                            or task.done(), 30)
        if task.done():
            task.result()
        yield service
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 15)
        if isinstance(cache, dict):
            _SHARED_CACHE.update(cache)
        await service.close(close_engine=False)


_KINDS = {  # kind -> (folder, suffix) the real Bot API uses for file paths
    "voice": ("voice", "oga"), "audio": ("music", "mp3"), "video_note": ("video_notes", "mp4"),
    "document": ("documents", "m4a"),
}


def send_note(fake: FakeTelegram, u: dict, data: bytes, kind: str = "voice", *,
              chat: dict | None = None, duration: int = 3, size: int | None = -1,
              mime: str | None = "audio/mp4", name: str = "note.m4a",
              file_id: str | None = None, local_path: str | None = None) -> dict:
    """Register ``data`` as a file and push a message carrying it; returns the message.

    ``size=-1`` announces the real size, ``None`` leaves file_size out.
    """
    folder, suffix = _KINDS[kind]
    fid = file_id or fake.add_file(data, folder=folder, suffix=suffix, local_path=local_path)
    announced = len(data) if size == -1 else size
    if kind == "voice":
        content = fk.voice(fid, announced or 0, duration)
    elif kind == "audio":
        content = fk.audio(fid, announced or 0, duration)
    elif kind == "video_note":
        content = fk.video_note(fid, announced or 0, duration)
    else:
        content = fk.document(fid, announced or 0, mime, name)
    if announced is None:
        next(iter(content.values())).pop("file_size")
    update = fk.message(u, chat, **content)
    fake.push(update)
    return update["message"]


def send_command(fake: FakeTelegram, u: dict, text: str, chat: dict | None = None) -> dict:
    """Push a command; returns the message."""
    update = fk.command(u, text, chat)
    fake.push(update)
    return update["message"]


def replies(fake: FakeTelegram, msg: dict) -> list[Call]:
    """Successful sendMessage/sendPhoto calls replying to ``msg``, in order."""
    out = []
    for call in fake.sent(msg["chat"]["id"]):
        reply_to = call.params.get("reply_parameters") or {}
        if reply_to.get("message_id") == msg["message_id"]:
            out.append(call)
    return out


async def reply_to(fake: FakeTelegram, msg: dict, within: float = 60.0) -> Call:
    """Wait for the first reply to ``msg``."""
    return (await fake.wait_for(lambda: replies(fake, msg), within))[0]


async def settle(fake: FakeTelegram, u: dict, chat: dict | None = None) -> None:
    """Round-trip a /help so every update pushed before it has been handled."""
    msg = send_command(fake, u, "/help", chat)
    await reply_to(fake, msg)
    await asyncio.sleep(0.3)


# What users read, written out: a change of wording must show up here.
HELP = {
    "en": "I'm voicemood. Send me a voice note, an audio file or a video note and I'll reply "
          "with what you said and the mood I hear — from your words and your voice — as one "
          "of four tags: 😊 positive, 😔 negative, 😐 neutral, 😠 excited.\n\nWhat I store: "
          "for each note, the transcript, the tags and scores, its length and time, under "
          "your user id — never the audio. Only you can see your history.\n\nCommands:\n"
          "/history [n] — your last n analyses (default 5)\n/trend [7d|30d|90d] — how your "
          "mood has been going\n/forget — delete everything stored about you\n"
          "/export [csv|json] [days] — your history as a file\n"
          "/digest [on [weekday] [HH:MM] | off | tz Area/City] — a weekly mood digest\n"
          "/privacy [transcripts off|on] — what I keep about you\n"
          "/mood — reply with it to a voice note to have it analysed\n/help — this message",
    "zh": "我是 voicemood。给我发语音、音频文件或视频消息，我会回复你说的内容，以及我从你的话语和"
          "声音中听出的情绪：😊 正向、😔 负向、😐 中性、😠 激动。\n\n我保存什么：每条语音的转写、"
          "情绪标签和分数、时长和时间，按你的用户 ID 保存——从不保存音频。只有你能看到自己的记录。"
          "\n\n命令：\n/history [n] — 你最近的 n 条分析（默认 5 条）\n/trend [7d|30d|90d] — "
          "你的情绪走势\n/forget — 删除保存的关于你的全部内容\n"
          "/export [csv|json] [天数] — 把你的记录导出为文件\n"
          "/digest [on [星期] [HH:MM] | off | tz 地区/城市] — 每周情绪摘要\n"
          "/privacy [transcripts off|on] — 我保存了什么\n"
          "/mood — 用它回复一条语音，我就会分析\n/help — 显示本说明",
}
ERRORS = {
    "empty": "That file is empty — please send the voice note again.",
    "not_audio": "That doesn't look like audio. Send a voice note or an audio file (ogg, mp3, "
                 "m4a, mp4, webm, wav, flac).",
    "corrupt": "I couldn't decode that audio — the file seems damaged. Could you record it "
               "again?",
    "unsupported_codec": "That audio uses a format I can't decode. Please send it as ogg, mp3, "
                         "m4a or wav.",
    "silent": "I couldn't hear anything — the recording seems silent.",
    "no_speech": "I couldn't make out any words in that recording. Try speaking closer to the "
                 "microphone.",
    "download_failed": "I couldn't download that file. Please try sending it again.",
    "internal": "Sorry — something went wrong on my side while analysing that. It has been "
                "logged; please try again in a moment.",
    "too_long_1s": "That recording is too long: I analyse up to 1 s. Please send a shorter one.",
    "too_long_10min": "That recording is too long: I analyse up to 10 min. Please send a "
                      "shorter one.",
    "too_large_1KB": "That file is too large for me (1 KB). Please send a shorter recording.",
    "too_large_2MB": "That file is too large for me (2 MB). Please send a shorter recording.",
    "download_too_large_20MB": "That file is larger than 20 MB, which is the most I can "
                               "download here. Please send a shorter recording.",
}
NOT_ALLOWED = {
    "en": "Sorry, this bot is private and you're not on its list of users. Nothing you send is "
          "processed or stored.",
    "zh": "抱歉，这是一个私人机器人，你不在用户名单中。你发送的内容不会被处理或保存。",
}


def assert_shows_analysis(text: str, row: Analysis, lang: str) -> None:
    """The reply to a real note: tag and confidence first, the transcript last."""
    first, *_, heard, transcript = text.split("\n")
    assert first.startswith("<b>")
    assert first.endswith(f" / {row.label} · {row.emotion.confidence:.2f}</b>")
    word = "Transcript" if lang == "en" else "转写"
    assert heard == f"{word} ({row.duration_s:.1f} s, {row.language}):"
    assert transcript == html.escape(row.transcript, quote=False)


async def stored(service: AnalysisService, msg: dict) -> Analysis | None:
    return await service.store.get_by_message("telegram", str(msg["chat"]["id"]),
                                              str(msg["message_id"]))


def make_analysis(transcript: str, label: str = "neutral", *, created_at: float | None = None,
                  valence: float = 0.0) -> Analysis:
    """An analysis as the pipeline stores it, for seeding histories."""
    emotion = FusedEmotion(
        label=label, confidence=0.8, valence=valence, arousal=0.4,
        text=TextReading(label, {label: 0.8}, "lexicon"),
        voice=VoiceReading("calm", 0.3, {"calm": 0.7}, "prosody"),
    )
    return Analysis(transcript=transcript, language="en", duration_s=4.0, emotion=emotion,
                    models={"asr": "whisper-base"}, timings={},
                    created_at=created_at or time.time())


async def seed(service: AnalysisService, u: dict, n: int, transcript: str = "note {i}",
               label: str = "neutral", valence: float = 0.0, start: float | None = None) -> None:
    base = start or time.time() - 3600
    rows = [(Sender("telegram", str(u["id"]), str(u["id"]), f"seed-{u['id']}-{i}"),
             make_analysis(transcript.format(i=i), label, created_at=base + i, valence=valence))
            for i in range(n)]
    await service.store.add_many(rows)


# --------------------------------------------------------------------------------------------
# voice notes


async def test_each_media_kind_is_analysed_replied_and_stored(fake, tmp_path, engine, clips):
    """Voice, audio (long: progress message edited into the result), round video note and
    an audio document from a Chinese-speaking user."""
    async with running_bot(fake, tmp_path, engine) as service:
        sent = {
            "voice": send_note(fake, ALICE, clips["happy"], "voice"),
            "audio": send_note(fake, ALICE, clips["weather"], "audio", duration=20),
            "video_note": send_note(fake, CAROL, clips["video"], "video_note"),
            "document": send_note(fake, BOB, clips["document"], "document",
                                  mime=None, name="memo.m4a"),
        }
        langs = {"voice": "en", "audio": "en", "video_note": "en", "document": "zh"}
        await fake.wait_for(lambda: all(replies(fake, m) for m in sent.values()), 120)
        progress = replies(fake, sent["audio"])[0]
        assert progress.params["text"] == "🎧 Transcribing 20 s of audio…"
        await fake.wait_for(lambda: fake.calls_to(
            "editMessageText", message_id=progress.result["message_id"]), 60)

        for kind, msg in sent.items():
            row = await stored(service, msg)
            assert row is not None, kind
            assert row.sender == Sender("telegram", str(msg["from"]["id"]),
                                        str(msg["chat"]["id"]), str(msg["message_id"]))
            if kind == "audio":
                [edit] = fake.calls_to("editMessageText",
                                       message_id=progress.result["message_id"])
                assert_shows_analysis(edit.params["text"], row, langs[kind])
                assert edit.params["parse_mode"] == "HTML"
                assert len(replies(fake, msg)) == 1  # only the progress message
            else:
                [reply] = replies(fake, msg)
                assert_shows_analysis(reply.params["text"], row, langs[kind])
                assert reply.params["parse_mode"] == "HTML"
            assert fake.calls_to("sendChatAction", chat_id=msg["chat"]["id"], action="typing")

        assert "happy" in (await stored(service, sent["voice"])).transcript.lower()
        assert "weather" in (await stored(service, sent["audio"])).transcript.lower()
        assert "document" in (await stored(service, sent["document"])).transcript.lower()
        bob_reply = replies(fake, sent["document"])[0].params["text"]
        assert "声音" in bob_reply and "转写" in bob_reply
        assert len(fake.downloads) == 4
        assert await service.count("telegram", str(ALICE["id"])) == 2


#: A known analysis, so the reply can be written out in full.
#: Its confidence is what its readings fuse to: the service reads the tag again against the
#: person's (here empty) voice baseline before storing it (inference.arousal_baseline).
KNOWN = Analysis(
    transcript="I am so <happy> & glad today.", language="en", duration_s=3.2,
    emotion=FusedEmotion(label="positive", confidence=0.80, valence=0.6, arousal=0.4,
                         text=TextReading("positive", {"positive": 0.8}, "lexicon"),
                         voice=VoiceReading("calm", 0.31, {"calm": 0.7}, "prosody")),
    models={"asr": "whisper-base"}, timings={},
)


async def test_reply_to_a_known_analysis_in_english_and_chinese(
        fake, tmp_path, engine, clips, monkeypatch):
    """Tag, confidence, both readings and the transcript, every field escaped for HTML."""
    # One note at a time, each answered before the next is sent: results come in order.
    results = [KNOWN, replace(KNOWN, transcript="今天我很开心。", language="zh"),
               replace(KNOWN, transcript="ok", language="<i>x</i>")]
    async with running_bot(fake, tmp_path, engine, share_cache=False) as service:
        async def known(audio: bytes, on_stage: object = None) -> Analysis:
            return replace(results.pop(0))

        monkeypatch.setattr(service, "analyze_bytes", known)
        en = send_note(fake, ALICE, clips["happy"])
        assert (await reply_to(fake, en)).params["text"] == (
            "<b>😊 正向 / positive · 0.80</b>\n"
            "🎙 voice: calm (arousal 0.31)\n"
            "📝 words: positive (0.80)\n"
            "\n"
            "Transcript (3.2 s, en):\n"
            "I am so &lt;happy&gt; &amp; glad today.")
        zh = send_note(fake, BOB, clips["happy"])
        assert (await reply_to(fake, zh)).params["text"] == (
            "<b>😊 正向 / positive · 0.80</b>\n"
            "🎙 声音: 平静 (激活度 0.31)\n"
            "📝 文字: 正向 (0.80)\n"
            "\n"
            "转写 (3.2 s, zh):\n"
            "今天我很开心。")
        odd = send_note(fake, CAROL, clips["happy"])
        assert (await reply_to(fake, odd)).params["text"].endswith(
            "Transcript (3.2 s, &lt;i&gt;x&lt;/i&gt;):\nok")


async def test_other_messages_get_a_hint_in_private_and_are_ignored_in_groups(
        fake, tmp_path, engine):
    group = fk.group_chat()
    async with running_bot(fake, tmp_path, engine) as service:
        text = fk.message(ALICE, text="hello bot")
        photo = fk.message(ALICE, photo=[{"file_id": "P", "file_unique_id": "P",
                                          "width": 9, "height": 9}])
        pdf = fk.message(ALICE, **fk.document("PDF1", 1000, "application/pdf", "cv.pdf"))
        unknown = fk.command(ALICE, "/frobnicate")
        for update in (text, photo, pdf, unknown):
            fake.push(update)
        assert (await reply_to(fake, text["message"])).params["text"] == (
            "Send me a voice note (or an audio file) and I'll tell you what I hear. /help lists "
            "the commands.")
        assert (await reply_to(fake, photo["message"])).params["text"] == ERRORS["not_audio"]
        assert (await reply_to(fake, pdf["message"])).params["text"] == ERRORS["not_audio"]
        assert (await reply_to(fake, unknown["message"])).params["text"] == HELP["en"]

        fake.push(fk.message(BOB, group, text="hi all"))
        fake.push(fk.message(BOB, group, **fk.document("PDF2", 1000, "application/pdf", "a.pdf")))
        await settle(fake, BOB, group)
        assert len(fake.sent(group["id"])) == 1  # only the /help answer
        assert not fake.calls_to("getFile")
        assert await service.count("telegram", str(BOB["id"])) == 0


# --------------------------------------------------------------------------------------------
# refusals


def _refusal_cases(clips: dict[str, bytes]) -> dict[str, dict[str, Any]]:
    return {
        "empty": dict(data=b"", expect=ERRORS["empty"]),
        "not_audio": dict(data=b"this is not audio at all " * 20, kind="document",
                          mime="audio/mpeg", name="song.mp3", expect=ERRORS["not_audio"]),
        "corrupt": dict(data=clips["happy"][:200], expect=ERRORS["corrupt"]),
        "unsupported_codec": dict(data=BAD_WAV, kind="document", mime="audio/wav",
                                  name="a.wav", expect=ERRORS["unsupported_codec"]),
        "silent": dict(data=clips["silence"], expect=ERRORS["silent"]),
        "no_speech": dict(data=clips["tone"], expect=ERRORS["no_speech"]),
        # The note says 1 s but holds ~2 s: the pipeline measures and refuses.
        "too_long": dict(data=clips["happy"], duration=1, settings={"max_audio_seconds": 1.0},
                         expect=ERRORS["too_long_1s"]),
        # Telegram's duration already says too long: refused without downloading.
        "too_long_announced": dict(data=clips["happy"], duration=700, downloads=False,
                                   expect=ERRORS["too_long_10min"]),
        # No size in the message; getFile's size is over the limit: nothing is downloaded.
        "too_large": dict(data=clips["happy"], size=None, settings={"max_audio_bytes": 1024},
                          downloads=False, expect=ERRORS["too_large_1KB"]),
        "download_too_large": dict(data=clips["happy"], size=25 * 1024 * 1024,
                                   downloads=False, expect=ERRORS["download_too_large_20MB"]),
        # No size in the message, but the Bot API refuses the file.
        "download_too_large_getfile": dict(data=clips["happy"], size=None, too_big=True,
                                           downloads=False,
                                           expect=ERRORS["download_too_large_20MB"]),
        "download_failed": dict(data=clips["happy"], file_id="NO-SUCH-FILE", downloads=False,
                                expect=ERRORS["download_failed"]),
    }


REFUSALS = list(_refusal_cases(dict.fromkeys(("happy", "silence", "tone"), b"")))


@pytest.mark.parametrize("case", REFUSALS)
async def test_pipeline_refusals_become_friendly_replies(case, fake, tmp_path, engine, clips):
    c = _refusal_cases(clips)[case]
    # Tighter limits must meet the pipeline, not an analysis cached under the default ones.
    overrides = c.get("settings", {})
    async with running_bot(fake, tmp_path, engine, share_cache=not overrides,
                           **overrides) as service:
        file_id = c.get("file_id")
        if c.get("too_big"):
            file_id = fake.add_file(c["data"], too_big=True)
        msg = send_note(fake, ALICE, c["data"], c.get("kind", "voice"),
                        duration=c.get("duration", 3), size=c.get("size", -1),
                        mime=c.get("mime"), name=c.get("name", "x"), file_id=file_id)
        reply = await reply_to(fake, msg)
        assert reply.params["text"] == c["expect"]
        assert reply.params["parse_mode"] == "HTML"
        await asyncio.sleep(0.2)
        assert len(replies(fake, msg)) == 1
        assert await service.count("telegram", str(ALICE["id"])) == 0
        if c.get("downloads", True):
            assert len(fake.downloads) == 1
        else:
            assert not fake.downloads


async def test_a_download_longer_than_announced_is_cut_off_at_the_limit(
        fake, tmp_path, engine):
    """getFile says 1,234 bytes, the download streams 200 MB: reading stops at the limit."""
    limit = 2 * 1024 * 1024
    async with running_bot(fake, tmp_path, engine, share_cache=False,
                           max_audio_bytes=limit) as service:
        file_id = fake.add_stream(1234, 200 * 1024 * 1024)
        msg = send_note(fake, ALICE, b"", file_id=file_id, size=1234)
        reply = await reply_to(fake, msg)
        assert reply.params["text"] == ERRORS["too_large_2MB"]
        streamed = fake.files[file_id].streamed
        assert limit < streamed < limit + 1024 * 1024
        assert await service.count("telegram", str(ALICE["id"])) == 0


async def test_busy_engine_gives_a_retry_reply(fake, tmp_path, engine, clips):
    """A one-slot engine queue: of three notes at once, at least one is told to retry."""
    small = InferenceEngine(make_settings(tmp_path, queue_size=1, batch_size=1),
                            backends=engine.backends)
    try:
        async with running_bot(fake, tmp_path, small, share_cache=False, queue_size=1,
                               batch_size=1) as service:
            users = [ALICE, BOB, CAROL]
            notes = [send_note(fake, u, clips[k], "voice")
                     for u, k in zip(users, ("happy", "morning", "thanks"), strict=True)]
            await fake.wait_for(lambda: all(replies(fake, m) for m in notes), 120)
            texts = [replies(fake, m)[0].params["text"] for m in notes]
            busy = [t for t in texts if re.fullmatch(
                r"I'm busy with other recordings right now\. Please try again in about \d+ s\."
                r"|正在处理其他录音，请大约 \d+ 秒后再试。", t)]
            assert 1 <= len(busy) <= 2, texts
            analysed = [m for m, t in zip(notes, texts, strict=True) if t not in busy]
            for m in analysed:
                assert await stored(service, m) is not None
            total = sum([await service.count("telegram", str(u["id"])) for u in users])
            assert total == len(analysed)
    finally:
        await small.close()


async def test_unexpected_failure_apologises_logs_and_keeps_serving(
        fake, tmp_path, engine, clips, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="adapters.telegram")
    caplog.set_level(logging.INFO, logger="bot.core.notes")  # the note use-case logs there
    formatter = RedactingFormatter("%(message)s")  # what `voicemood serve` logs with
    real_infer = engine.infer
    calls = 0

    async def flaky_infer(audio, on_stage=None):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError(f"model exploded while fetching /bot{TOKEN}/getFile")
        return await real_infer(audio, on_stage=on_stage)

    monkeypatch.setattr(engine, "infer", flaky_infer)
    async with running_bot(fake, tmp_path, engine, share_cache=False) as service:
        first = send_note(fake, ALICE, clips["happy"])
        apology = await reply_to(fake, first)
        assert apology.params["text"] == ERRORS["internal"]
        assert "exploded" not in apology.params["text"]
        assert await stored(service, first) is None

        second = send_note(fake, BOB, clips["morning"])
        reply = await reply_to(fake, second)
        row = await stored(service, second)
        assert row is not None
        assert_shows_analysis(reply.params["text"], row, "zh")
    ours = "\n".join(formatter.format(r) for r in caplog.records
                     if r.name.startswith(("adapters.telegram", "bot.core.notes")))
    assert "Traceback" in ours and "model exploded" in ours
    assert TOKEN not in ours and "[redacted]" in ours


async def test_a_failing_command_is_logged_apologised_for_and_the_bot_goes_on(
        fake, tmp_path, engine, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="adapters.telegram")
    async with running_bot(fake, tmp_path, engine) as service:
        async def broken(*args: Any) -> list[Analysis]:
            raise RuntimeError(f"database gone at /bot{TOKEN}/x")

        monkeypatch.setattr(service, "history", broken)
        failed = send_command(fake, BOB, "/history")
        assert (await reply_to(fake, failed)).params["text"] == (
            "抱歉，分析时出了点问题，已记录下来，请稍后再试。")
        ok = send_command(fake, ALICE, "/help")
        assert (await reply_to(fake, ok)).params["text"] == HELP["en"]
    logged = "\n".join(RedactingFormatter("%(message)s").format(r) for r in caplog.records
                       if r.name.startswith("adapters.telegram"))
    assert "Traceback" in logged and "database gone" in logged and TOKEN not in logged


# --------------------------------------------------------------------------------------------
# commands


async def test_help_and_start_in_the_users_language(fake, tmp_path, engine):
    async with running_bot(fake, tmp_path, engine):
        en = send_command(fake, ALICE, "/help")
        zh = send_command(fake, BOB, "/start")
        other = send_command(fake, CAROL, "/help")
        assert (await reply_to(fake, en)).params["text"] == HELP["en"]
        assert (await reply_to(fake, zh)).params["text"] == HELP["zh"]
        assert (await reply_to(fake, other)).params["text"] == HELP["en"]


async def test_history_is_per_user_escaped_and_split(fake, tmp_path, engine):
    async with running_bot(fake, tmp_path, engine) as service:
        await seed(service, ALICE, 60, transcript="entry {i}: <b>not bold</b> & " + "la " * 40)
        await seed(service, BOB, 2, transcript="bob secret {i}")

        five = send_command(fake, ALICE, "/history")
        reply = await reply_to(fake, five)
        text = reply.params["text"]
        assert text.startswith("Your last 5 analyses:\n• ")
        assert text.count("\n• ") == 5
        assert "entry 59: &lt;b&gt;not bold&lt;/b&gt; &amp;" in text
        assert "bob" not in text

        many = send_command(fake, ALICE, "/history 50")
        await reply_to(fake, many)
        await asyncio.sleep(0.3)
        pieces = [c.params["text"] for c in replies(fake, many)]
        assert len(pieces) >= 2
        assert all(utf16_len(p) <= MESSAGE_LIMIT for p in pieces)
        joined = "\n".join(pieces)
        assert sum(p.count("• ") for p in pieces) == 50
        assert "entry 10:" in joined and "entry 9:" not in joined

        bad = send_command(fake, ALICE, "/history lots")
        assert (await reply_to(fake, bad)).params["text"] == (
            "Please give a number between 1 and 50, e.g. /history 10.")
        empty = send_command(fake, CAROL, "/history")
        assert (await reply_to(fake, empty)).params["text"] == (
            "You have no analyses yet. Send me a voice note!")


async def test_forget_asks_first_and_keeps_other_users_rows(fake, tmp_path, engine):
    async with running_bot(fake, tmp_path, engine) as service:
        await seed(service, ALICE, 3)
        await seed(service, BOB, 2)

        ask = send_command(fake, ALICE, "/forget")
        confirm = await reply_to(fake, ask)
        assert confirm.params["text"] == ("This deletes everything I have stored about you (3 "
                                          "analyses). It cannot be undone. Are you sure?")
        buttons = confirm.params["reply_markup"]["inline_keyboard"][0]
        assert [b["text"] for b in buttons] == ["Yes, delete", "Cancel"]
        yes, no = (b["callback_data"] for b in buttons)

        fake.push(fk.callback(ALICE, no, confirm.result))
        await fake.wait_for(lambda: fake.calls_to("editMessageText"))
        assert fake.calls_to("editMessageText")[-1].params["text"] == (
            "Cancelled — nothing was deleted.")
        assert await service.count("telegram", str(ALICE["id"])) == 3

        fake.push(fk.callback(ALICE, yes, confirm.result))
        await fake.wait_for(lambda: len(fake.calls_to("editMessageText")) == 2)
        assert fake.calls_to("editMessageText")[-1].params["text"] == (
            "Done: 3 analyses deleted. Nothing about you is stored now.")
        assert len(fake.calls_to("answerCallbackQuery")) == 2
        assert await service.count("telegram", str(ALICE["id"])) == 0
        assert await service.count("telegram", str(BOB["id"])) == 2

        again = send_command(fake, ALICE, "/forget")
        assert (await reply_to(fake, again)).params["text"] == "I have nothing stored about you."


async def test_trend_sends_a_chart_with_the_summary(fake, tmp_path, engine):
    async with running_bot(fake, tmp_path, engine, tz="UTC") as service:
        now = time.time()
        await seed(service, ALICE, 4, label="positive", valence=0.6, start=now - 4000)
        await seed(service, BOB, 1, start=now - 4000)

        ask = send_command(fake, ALICE, "/trend 7d")
        chart = await reply_to(fake, ask)
        assert chart.method == "sendPhoto"
        assert chart.files["photo"].startswith(PNG_MAGIC)
        today = datetime.now(UTC).date()
        first = today - timedelta(days=6)
        assert chart.params["caption"] == (
            f"Your mood, last 7 days ({first:%b} {first.day} - {today:%b} {today.day}, UTC)\n"
            "4 notes, 0.3 min in total.\n"
            "Tags: positive 100%, negative 0%, neutral 0%, excited 0%.\n"
            "Mood score: +0.60 (from -1 to +1), no notes in the previous 7 days to compare "
            "with.\nMost frequent voice emotion: calm.")
        assert chart.params["parse_mode"] == "HTML"

        little = send_command(fake, BOB, "/trend")
        text = await reply_to(fake, little)
        assert text.method == "sendMessage"
        assert text.params["text"] == "最近7天目前只有 1 条语音——再发几条就能看到趋势。"

        bad = send_command(fake, ALICE, "/trend forever")
        assert "forever" in (await reply_to(fake, bad)).params["text"]


# --------------------------------------------------------------------------------------------
# groups, access, delivery


async def test_group_notes_are_attributed_and_personal_data_stays_private(
        fake, tmp_path, engine, clips):
    group = fk.group_chat()
    fake.forbidden_chats.add(BOB["id"])  # Bob never opened a private chat with the bot
    async with running_bot(fake, tmp_path, engine) as service:
        a = send_note(fake, ALICE, clips["happy"], chat=group)
        b = send_note(fake, BOB, clips["morning"], chat=group)
        await fake.wait_for(lambda: replies(fake, a) and replies(fake, b), 120)
        row_a, row_b = await stored(service, a), await stored(service, b)
        assert row_a.sender == Sender("telegram", str(ALICE["id"]), str(group["id"]),
                                      str(a["message_id"]))
        assert row_b.sender.user_id == str(BOB["id"])
        assert_shows_analysis(replies(fake, a)[0].params["text"], row_a, "en")
        assert_shows_analysis(replies(fake, b)[0].params["text"], row_b, "zh")

        # /history in a group goes to the asker's private chat, with only their notes.
        hist = send_command(fake, ALICE, "/history@voicemood_test_bot", group)
        assert (await reply_to(fake, hist)).params["text"] == (
            "I've sent that to you in a private chat.")
        [private] = fake.sent(ALICE["id"])
        assert row_a.transcript.split()[0] in private.params["text"]
        assert html.escape(row_b.transcript, quote=False) not in private.params["text"]

        # Bob cannot be written to privately: he is told how, nothing is shown in the group.
        trend = send_command(fake, BOB, "/trend", group)
        told = (await reply_to(fake, trend)).params["text"]
        assert told == ("这是个人信息，我只在私聊中显示。请先打开与我的私聊"
                        "（@voicemood_test_bot），点击“开始”，然后在那里发送 /trend。")

        # /forget in the group: Bob cannot press Alice's button.
        ask = send_command(fake, ALICE, "/forget", group)
        confirm = await reply_to(fake, ask)
        yes = confirm.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
        fake.push(fk.callback(BOB, yes, confirm.result))
        await fake.wait_for(lambda: fake.calls_to("answerCallbackQuery"))
        refusal = fake.calls_to("answerCallbackQuery")[0].params
        assert refusal["text"] == "只有发起请求的人才能点这个按钮。"
        assert refusal["show_alert"] is True
        assert await service.count("telegram", str(ALICE["id"])) == 1
        assert not fake.calls_to("editMessageText")

        fake.push(fk.callback(ALICE, yes, confirm.result))
        await fake.wait_for(lambda: fake.calls_to("editMessageText"))
        assert fake.calls_to("editMessageText")[0].params["text"] == (
            "Done: 1 analyses deleted. Nothing about you is stored now.")
        assert await service.count("telegram", str(ALICE["id"])) == 0
        assert await service.count("telegram", str(BOB["id"])) == 1


async def test_allow_list_refuses_others_and_processes_nothing(fake, tmp_path, engine, clips):
    async with running_bot(fake, tmp_path, engine,
                           telegram_allowed_users=str(ALICE["id"])) as service:
        note = send_note(fake, BOB, clips["happy"])
        cmd = send_command(fake, CAROL, "/history")
        assert (await reply_to(fake, note)).params["text"] == NOT_ALLOWED["zh"]
        assert (await reply_to(fake, cmd)).params["text"] == NOT_ALLOWED["en"]
        fake.push(fk.callback(CAROL, f"vmforget:yes:{CAROL['id']}",
                              {"message_id": 5, "date": 0, "chat": fk.private_chat(CAROL)}))
        await fake.wait_for(lambda: fake.calls_to("answerCallbackQuery"))
        assert fake.calls_to("answerCallbackQuery")[0].params["text"] == NOT_ALLOWED["en"]

        ok = send_command(fake, ALICE, "/help")
        assert (await reply_to(fake, ok)).params["text"] == HELP["en"]
        assert not fake.calls_to("getFile") and not fake.downloads
        assert not fake.calls_to("sendChatAction")
        assert await service.count("telegram", str(BOB["id"])) == 0


async def test_duplicate_delivery_is_analysed_and_answered_once(fake, tmp_path, engine, clips):
    fid = fake.add_file(clips["happy"])
    update = fk.message(ALICE, **fk.voice(fid, len(clips["happy"])))
    msg = update["message"]
    async with running_bot(fake, tmp_path, engine) as service:
        fake.push(dict(update))  # delivered twice in one batch...
        fake.push(dict(update))
        await reply_to(fake, msg)
        fake.push(dict(update))  # ...and once more after it was answered
        await settle(fake, ALICE)
        assert len(replies(fake, msg)) == 1
        assert len(fake.downloads) == 1
        assert await service.count("telegram", str(ALICE["id"])) == 1
    # A restart (the offset was never confirmed) redelivers it once more.
    async with running_bot(fake, tmp_path, engine) as service:
        fake.push(dict(update))
        await settle(fake, ALICE)
        assert len(replies(fake, msg)) == 1
        assert len(fake.downloads) == 1
        assert await service.count("telegram", str(ALICE["id"])) == 1


async def test_a_long_note_answered_after_a_restart_comes_with_its_transcript_file(
        fake, tmp_path, engine):
    """A run accepted a note with a very long transcript and died; the next run answers it
    as a live note would be: the start of the transcript, then the whole text as a .txt."""
    audio = b"a very long note left pending by a run that died"
    transcript = " ".join(f"Sentence number {i} is here." for i in range(600))
    file_id = fake.add_file(audio)
    msg_id = 777

    async def left_by_an_earlier_run(service: AnalysisService) -> None:
        # The analysis itself is not under test: the service's by-hash cache answers.
        service._cache[hashlib.sha256(audio).hexdigest()] = replace(
            make_analysis(transcript), created_at=0.0)
        assert await service.store.pending_as("the-run-that-died").record(
            Sender("telegram", str(ALICE["id"]), str(ALICE["id"]), str(msg_id)),
            {"file_id": file_id, "kind": "voice", "duration_s": 16.0}, "en")

    async with running_bot(fake, tmp_path, engine, share_cache=False,
                           prepare=left_by_an_earlier_run) as service:
        doc = (await fake.wait_for(lambda: fake.calls_to("sendDocument")))[0]
        assert doc.params["reply_parameters"]["message_id"] == msg_id
        assert doc.params["_filenames"]["document"] == "transcript.txt"
        assert doc.files["document"] == transcript.encode()
        texts = [c.params["text"] for c in fake.calls_to("sendMessage", chat_id=ALICE["id"])
                 if (c.params.get("reply_parameters") or {}).get("message_id") == msg_id]
        # A note announced as 16 s long: the progress message first, edited into the answer.
        assert texts == ["🎧 Transcribing 16 s of audio…"]
        [edit] = fake.calls_to("editMessageText")
        reply = edit.params["text"]
        assert reply.endswith(" is here. …\n\nThe transcript is long; here it is in full as a "
                              "file.")
        assert utf16_len(reply) <= MESSAGE_LIMIT
        assert len(fake.downloads) == 1
        assert await service.count("telegram", str(ALICE["id"])) == 1
        assert await service.store.pending.count() == 0


async def test_flood_limit_429_and_a_bad_gateway_are_retried(fake, tmp_path, engine):
    fake.fail_next("sendMessage", 429, {"ok": False, "error_code": 429,
                                        "description": "Too Many Requests: retry after 1",
                                        "parameters": {"retry_after": 1}})
    fake.fail_next("sendMessage", 502, {"ok": False, "error_code": 502,
                                        "description": "Bad Gateway"})
    async with running_bot(fake, tmp_path, engine):
        msg = send_command(fake, ALICE, "/help")
        reply = await reply_to(fake, msg, within=20)
        assert reply.params["text"] == HELP["en"]
        attempts = fake.calls_to("sendMessage")
        assert [bool(a.params.get("_failed")) for a in attempts] == [True, True, False]
        assert attempts[1].at - attempts[0].at >= 1.0  # retry_after was waited out


async def test_two_users_in_flight_at_once_and_commands_stay_responsive(
        fake, tmp_path, engine, clips):
    async with running_bot(fake, tmp_path, engine, share_cache=False) as service:
        a = send_note(fake, ALICE, clips["happy"])
        b = send_note(fake, BOB, clips["morning"])
        await fake.wait_for(lambda: len(fake.downloads) == 2, 30)
        helped = send_command(fake, CAROL, "/help")
        await fake.wait_for(lambda: replies(fake, a) and replies(fake, b), 120)
        help_at = (await reply_to(fake, helped)).at
        a_at, b_at = replies(fake, a)[0].at, replies(fake, b)[0].at
        # Both notes were downloaded (in flight) before either answer, and /help did not
        # wait for the models.
        assert max(t for _, t in fake.downloads) < min(a_at, b_at)
        assert help_at < min(a_at, b_at)
        row_a, row_b = await stored(service, a), await stored(service, b)
        assert row_a and row_b and row_a.transcript != row_b.transcript


# --------------------------------------------------------------------------------------------
# deployment: self-hosted Bot API server, webhook, clean stop


async def test_self_hosted_bot_api_server_lifts_the_20_mb_limit(fake, tmp_path, engine, clips):
    """With TELEGRAM_MAX_DOWNLOAD_BYTES raised (a self-hosted server), a "25 MB" note is
    fetched; a server in --local mode hands out a local path that is read from disk."""
    big = 25 * 1024 * 1024
    local = tmp_path / "botapi" / "voice" / "file_9.oga"
    local.parent.mkdir(parents=True)
    local.write_bytes(clips["happy"])
    async with running_bot(fake, tmp_path, engine, telegram_max_download_bytes=2_000 * 2**20,
                           max_audio_bytes=100 * 2**20) as service:
        over_http = send_note(fake, ALICE, clips["happy"], size=big)
        from_disk = send_note(fake, ALICE, clips["happy"], size=big, local_path=str(local))
        await fake.wait_for(lambda: replies(fake, over_http) and replies(fake, from_disk), 120)
        for msg in (over_http, from_disk):
            row = await stored(service, msg)
            assert row is not None
            assert_shows_analysis(replies(fake, msg)[0].params["text"], row, "en")
        assert len(fake.downloads) == 1  # the local file never went over HTTP


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_webhook_mode_registers_and_serves_updates(fake, tmp_path, engine):
    port = _free_port()
    async with running_bot_webhook(fake, tmp_path, engine, port):
        [hook] = fake.calls_to("setWebhook")
        assert hook.params["url"] == "https://bot.example.com/tg/hook"
        assert hook.params["secret_token"] == "s3cret-Token"
        assert hook.params["allowed_updates"] == ["message", "callback_query"]
        update = fk.command(ALICE, "/help")
        update["update_id"] = 900
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/tg/hook"
            async with http.post(url, data=json.dumps(update),
                                 headers={"Content-Type": "application/json",
                                          "X-Telegram-Bot-Api-Secret-Token": "wrong"}) as r:
                assert r.status == 403
            async with http.post(url, data=json.dumps(update),
                                 headers={"Content-Type": "application/json",
                                          "X-Telegram-Bot-Api-Secret-Token": "s3cret-Token"}
                                 ) as r:
                assert r.status == 200
        reply = await reply_to(fake, update["message"])
        assert reply.params["text"] == HELP["en"]
        assert len(fake.sent()) == 1
        assert not fake.calls_to("getUpdates")


@contextlib.asynccontextmanager
async def running_bot_webhook(fake: FakeTelegram, tmp_path: Path, engine: InferenceEngine,
                              port: int) -> AsyncIterator[None]:
    settings = bot_settings(fake, tmp_path,
                            telegram_webhook_url="https://bot.example.com/tg/hook",
                            telegram_webhook_port=port, telegram_webhook_secret="s3cret-Token")
    service = await AnalysisService.create(settings, engine=engine)
    task = asyncio.create_task(serve_telegram(service, settings))
    try:
        await fake.wait_for(lambda: fake.calls_to("setWebhook") or task.done(), 30)
        if task.done():
            task.result()
        await asyncio.sleep(0.3)  # the webhook server starts listening right after
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 15)
        await service.close(close_engine=False)


async def test_serve_stops_cleanly_when_cancelled(fake, tmp_path, engine):
    settings = bot_settings(fake, tmp_path)
    service = await AnalysisService.create(settings, engine=engine)
    try:
        task = asyncio.create_task(serve_telegram(service, settings))
        await fake.wait_for(lambda: fake.calls_to("getUpdates"), 30)
        assert fake.calls_to("getMe") and fake.calls_to("deleteWebhook")
        assert fake.calls_to("setMyCommands")
        msg = send_command(fake, ALICE, "/help")
        await reply_to(fake, msg)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert time.monotonic() - started < 5
        polls = len(fake.calls_to("getUpdates"))
        await asyncio.sleep(1.0)
        assert len(fake.calls_to("getUpdates")) == polls  # nothing polls any more
        assert fake.pending_updates() == 0  # the last offset was confirmed on the way out
    finally:
        await service.close(close_engine=False)


async def test_start_up_waits_for_an_unreachable_bot_api(fake, tmp_path, engine):
    fake.fail_next("getMe", 502, {"ok": False, "error_code": 502,
                                  "description": "Bad Gateway"}, times=2)
    async with running_bot(fake, tmp_path, engine):
        assert len(fake.calls_to("getMe")) == 3
        msg = send_command(fake, ALICE, "/help")
        assert (await reply_to(fake, msg)).params["text"] == HELP["en"]


async def test_a_rejected_token_stops_serve_without_quoting_it(fake, tmp_path, engine):
    wrong = "987654321:AAwrong-token-that-telegram-rejects-0000000"
    settings = bot_settings(fake, tmp_path, telegram_bot_token=wrong)
    service = await AnalysisService.create(settings, engine=engine)
    try:
        with pytest.raises(RuntimeError) as err:
            await asyncio.wait_for(serve_telegram(service, settings), 30)
        assert "TELEGRAM_BOT_TOKEN" in str(err.value)
        assert wrong not in str(err.value) and "987654321" not in str(err.value)
        assert not fake.calls_to("getUpdates")
    finally:
        await service.close(close_engine=False)


# --------------------------------------------------------------------------------------------
# message splitting (pure)


def test_split_message_respects_limit_tags_and_entities():
    transcript = "Tom &amp; Jerry &lt;3 " * 600
    text = f"<b>😠 激动 / excited · 0.82</b>\n{transcript}"
    pieces = split_message(text)
    assert len(pieces) >= 3
    for piece in pieces:
        assert utf16_len(piece) <= MESSAGE_LIMIT
        assert piece.count("<b>") == piece.count("</b>")
        # no entity cut in half
        for i, ch in enumerate(piece):
            if ch == "&":
                assert piece[i:].startswith(("&amp;", "&lt;", "&gt;")), piece[i:i + 8]
    assert "".join(p.replace(" ", "").replace("\n", "") for p in pieces) == text.replace(
        " ", "").replace("\n", "")
    long_bold = "<b>" + "x" * 5000 + "</b>"
    parts = split_message(long_bold)
    assert all(p.startswith("<b>") and p.endswith("</b>") for p in parts)
    assert split_message("short") == ["short"]
