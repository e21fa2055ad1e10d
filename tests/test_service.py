"""bot.core.service with the real offline engine: analysis, cache, redelivery, refusals."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.analysis import Sender
from bot.core.service import AnalysisService
from inference.errors import InputError, NoSpeech, NotAudio, Silent
from tests.audio_factory import speech_file, tone_or_silence


@pytest.fixture(scope="module")
def note(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("note")
    return speech_file(tmp, "I am so happy today, everything is wonderful.", "ogg").read_bytes()


def count_calls(service: AnalysisService, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    original = service.engine.infer

    async def spy(audio, on_stage=None):  # type: ignore[no-untyped-def]
        calls.append(1)
        return await original(audio, on_stage=on_stage)

    monkeypatch.setattr(service.engine, "infer", spy)
    return calls


async def test_analyze_transcribes_tags_and_stores(service: AnalysisService, note: bytes) -> None:
    sender = Sender("telegram", "7", "42", "1")
    a = await service.analyze(note, sender)
    assert "happy" in a.transcript.lower() and "wonderful" in a.transcript.lower()
    assert a.language == "en"
    assert 2.0 < a.duration_s < 5.0
    assert a.emotion.text is not None and a.emotion.text.label == "positive"
    # The voice reading decides the arousal; the words decide the valence (P(pos) - P(neg)).
    assert a.emotion.voice is not None and a.emotion.voice.model.startswith("prosody")
    assert a.emotion.arousal == pytest.approx(a.emotion.voice.arousal, abs=1e-4)
    scores = a.emotion.text.scores
    assert a.emotion.valence == pytest.approx(scores["positive"] - scores["negative"], abs=1e-4)
    assert a.emotion.valence > 0.5
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


async def test_history_count_forget_and_trend_are_per_user(service: AnalysisService,
                                                         note: bytes) -> None:
    await service.analyze(note, Sender("web", "ann", "web", "n1"))
    await service.analyze(note, Sender("web", "ann", "web", "n2"))
    await service.analyze(note, Sender("web", "ben", "web", "n3"))
    assert [a.sender.message_id for a in await service.history("web", "ann")] == ["n2", "n1"]
    assert [a.sender.message_id for a in await service.history("web", "ann", 1)] == ["n2"]
    assert await service.count("web", "ann") == 2
    report = await service.trend("web", "ann", 7)
    assert (report.notes, report.tz, report.lang) == (2, "UTC", "en")
    assert (await service.trend("web", "ben", 7, "zh")).lang == "zh"
    assert await service.forget("web", "ann") == 2
    assert await service.history("web", "ann") == []
    assert await service.count("web", "ben") == 1


async def test_claim_tells_new_in_flight_and_answered_apart(service: AnalysisService,
                                                           note: bytes) -> None:
    sender = Sender("telegram", "9", "90", "900")
    async with service.claim(sender) as first:
        assert first.new
        async with service.claim(sender) as racing:
            assert racing.in_flight and not racing.new
        await first.analyze(note)
    async with service.claim(sender) as later:
        assert later.handled_before and later.stored is not None and later.stored.duplicate
    refused = Sender("telegram", "9", "90", "901")
    async with service.claim(refused) as claim:
        assert claim.new  # handled without storing, e.g. a refusal before the download
    async with service.claim(refused) as again:
        assert again.handled_before and again.stored is None
    assert await service.count("telegram", "9") == 1


async def test_stored_notes_are_read_against_the_persons_own_voice(
        service: AnalysisService, note: bytes) -> None:
    import math

    from bot.analysis import Analysis
    from inference.types import FusedEmotion, TextReading, VoiceReading

    def lively(i: int) -> tuple[Sender, Analysis]:
        # Stored as the service stores a note read against this person's baseline: the
        # voice reading as heard (0.9), the fused arousal personalised (0.35). The baseline
        # must come from the former: from the latter it would shift by only 0.15.
        emotion = FusedEmotion("neutral", 0.8, 0.0, 0.35,
                               TextReading("neutral", {"neutral": 1.0}, "lex"),
                               VoiceReading("agitated", 0.9, {"agitated": 1.0}, "pros"))
        return (Sender("telegram", "loud", "loud", f"old{i}"),
                Analysis("hi", "en", 3.0, emotion, {}, {}, created_at=1000.0 + i))

    await service.store.add_many(lively(i) for i in range(10))
    fresh = await service.analyze(note, Sender("telegram", "new", "new", "b1"))
    loud = await service.analyze(note, Sender("telegram", "loud", "loud", "b1"))
    raw = fresh.emotion.voice.arousal
    assert fresh.emotion.arousal == pytest.approx(raw, abs=1e-4)  # no history: as heard
    # Ten notes at 0.9: (logit 0.9 - logit 0.13) * 10 / (10 + 5) = 2.7321 lower on the logit
    # scale.
    expected = 1 / (1 + math.exp(-(math.log(raw / (1 - raw)) - 2.7321)))
    assert loud.emotion.arousal == pytest.approx(expected, abs=1e-3)
    stored = await service.store.get_by_message("telegram", "loud", "b1")
    assert stored is not None and stored.emotion.voice.arousal == pytest.approx(raw, abs=1e-4)
    assert stored.emotion.arousal == pytest.approx(expected, abs=1e-3)


async def test_each_note_joins_the_baseline_as_heard_not_as_personalised(
        service: AnalysisService, note: bytes) -> None:
    import math

    def logit(p: float) -> float:
        return math.log(p / (1 - p))

    # The same note eight times from one person (the cache makes the repeats cheap): each is
    # read against the raw voice readings of the ones before it.
    notes = [await service.analyze(note, Sender("web", "eve", "web", f"e{i}"))
             for i in range(8)]
    raw = notes[0].emotion.voice.arousal
    # Far from calm speech (0.13), so personalising moves it a long way and a mix-up of the
    # personalised and the heard reading shows.
    assert abs(raw - 0.13) > 0.25
    for i, analysis in enumerate(notes):
        stored = await service.store.get_by_message("web", "web", f"e{i}")
        assert stored is not None
        # What is kept of the voice is the reading as heard, every time.
        assert stored.emotion.voice.arousal == pytest.approx(raw, abs=1e-6), i
        # Fewer than three earlier notes: no baseline. Then i earlier notes all at ``raw``:
        # (logit raw - logit 0.13) * i / (i + 5) off the logit scale.
        shift = 0.0 if i < 3 else (logit(raw) - logit(0.13)) * i / (i + 5)
        expected = 1 / (1 + math.exp(-(logit(raw) - shift)))
        assert analysis.emotion.arousal == pytest.approx(expected, abs=1e-4), i
        assert stored.emotion.arousal == pytest.approx(expected, abs=1e-4), i
