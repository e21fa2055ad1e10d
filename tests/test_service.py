"""bot.service with the real offline engine: analysis, cache, redelivery, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.analysis import Sender
from bot.service import AnalysisService
from inference.errors import InputError, NoSpeech, NotAudio, Silent
from tests.audio_factory import speech_file, tone_or_silence


@pytest.fixture(scope="module")
def note(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("note")
    return speech_file(tmp, "I am so happy today, everything is wonderful.", "ogg").read_bytes()


def count_calls(service: AnalysisService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = service.engine.infer

    async def spy(audio):  # type: ignore[no-untyped-def]
        calls.append(1)
        return await original(audio)

    monkeypatch.setattr(service.engine, "infer", spy)
    return calls


async def test_analyze_transcribes_tags_and_stores(service: AnalysisService, note: bytes) -> None:
    sender = Sender("telegram", "7", "42", "1")
    a = await service.analyze(note, sender)
    assert "happy" in a.transcript.lower() and "wonderful" in a.transcript.lower()
    assert a.language == "en"
    assert 2.0 < a.duration_s < 5.0
    assert a.emotion.text is not None and a.emotion.text.label == "positive"
    assert a.emotion.voice is not None and 0.0 <= a.emotion.voice.arousal <= 1.0
    assert a.label in ("positive", "excited")
    assert set(a.timings) >= {"decode", "asr", "text_emotion", "voice_emotion", "total"}
    assert a.models["asr"].startswith("whisper-base")
    stored = await service.store.get_by_message("telegram", "42", "1")
    assert stored is not None and stored.transcript == a.transcript and stored.id == a.id


async def test_same_audio_is_answered_from_cache(service: AnalysisService, note: bytes,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_calls(service, monkeypatch)
    first = await service.analyze(note, Sender("slack", "u1", "C1", "F1"))
    second = await service.analyze(note, Sender("slack", "u1", "C1", "F2"))
    assert len(calls) == 1
    assert second.timings.get("cached") == 1.0
    assert second.transcript == first.transcript and second.label == first.label
    assert await service.store.count("slack", "u1") == 2  # two messages, two history rows


async def test_redelivered_message_is_analysed_and_stored_once(
    service: AnalysisService, note: bytes, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    other = speech_file(tmp_path, "The train leaves at nine.", "m4a").read_bytes()
    calls = count_calls(service, monkeypatch)
    sender = Sender("telegram", "8", "50", "77")
    # Two deliveries racing each other, then a late third one.
    a, b = await asyncio.gather(service.analyze(other, sender), service.analyze(other, sender))
    c = await service.analyze(other, sender)
    assert len(calls) == 1
    assert sorted([a.duplicate, b.duplicate]) == [False, True]
    assert c.duplicate and c.transcript == a.transcript
    assert await service.store.count("telegram", "8") == 1


async def test_refusals_store_nothing_and_keep_history(service: AnalysisService, note: bytes,
                                                       tmp_path: Path) -> None:
    await service.analyze(note, Sender("cli", "u", "cli", "keep"))
    silence = tone_or_silence(tmp_path, "silence", 2.0, "ogg").read_bytes()
    with pytest.raises(Silent):
        await service.analyze(silence, Sender("cli", "u", "cli", "s"))
    with pytest.raises(NotAudio):
        await service.analyze(b"not audio at all" * 10, Sender("cli", "u", "cli", "n"))
    assert await service.store.count("cli", "u") == 1


async def test_sound_without_words_is_no_speech(service: AnalysisService, tmp_path: Path) -> None:
    tone = tone_or_silence(tmp_path, "tone", 3.0, "ogg").read_bytes()
    with pytest.raises(NoSpeech) as err:
        await service.analyze(tone, Sender("cli", "u", "cli", "tone"))
    assert isinstance(err.value, InputError) and err.value.code == "no_speech"
    assert await service.store.count("cli", "u") == 0
