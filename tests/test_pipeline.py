"""inference.pipeline: admission before any work, a bounded number of decodes, and a result
that survives a trip through JSON.

The decodes are counted on the real ffmpeg runner (``inference.audio._run_ffmpeg``) through
a thin wrapper that records when each one starts and ends.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import inference.audio as audio_mod
from inference.config import InferenceConfig
from inference.engine import InferenceEngine
from inference.errors import Busy, CorruptAudio, TooLong
from inference.pipeline import Pipeline, PipelineResult
from inference.types import FusedEmotion, TextReading, VoiceReading
from tests.audio_factory import speech_file, tone_or_silence
from tests.conftest import make_settings

SENTENCES = [
    "Good morning, I feel great today.",
    "The weather is terrible and I am tired.",
    "We are meeting at three o'clock.",
    "Thank you very much for the flowers.",
    "My train was late again this morning.",
    "I finished the report before lunch.",
]


@pytest.fixture(scope="module")
def notes(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    """Six short, different spoken notes as Telegram sends them (OGG/Opus)."""
    tmp = tmp_path_factory.mktemp("pipeline_notes")
    return [speech_file(tmp, text, "ogg", name=f"n{i}").read_bytes()
            for i, text in enumerate(SENTENCES)]


@dataclass
class DecodeLog:
    """What the wrapped ffmpeg runner saw."""

    running: int = 0
    peak: int = 0
    started: int = 0
    events: list[str] = field(default_factory=list)


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> DecodeLog:
    """Count real ffmpeg decodes, and how many run at once."""
    log = DecodeLog()
    real = audio_mod._run_ffmpeg

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        log.running += 1
        log.started += 1
        log.peak = max(log.peak, log.running)
        log.events.append("decode")
        try:
            out = await real(*args, **kwargs)
            # Hold the slot a little, so decodes that could overlap do overlap.
            await asyncio.sleep(0.05)
            return out
        finally:
            log.running -= 1

    monkeypatch.setattr(audio_mod, "_run_ffmpeg", counted)
    return log


def small_pipeline(engine: InferenceEngine, tmp_path: Path, *, max_decodes: int = 0,
                   **overrides: object) -> Pipeline:
    """A pipeline with tight limits over the session's already loaded models."""
    config = InferenceConfig.from_settings(make_settings(tmp_path, **overrides))
    config = InferenceConfig.from_dict({**config.to_dict(), "max_decodes": max_decodes})
    return Pipeline(config, engine=InferenceEngine(config, backends=engine.backends))


async def test_no_more_decodes_at_once_than_the_limit(engine: InferenceEngine, tmp_path: Path,
                                                      notes: list[bytes],
                                                      decodes: DecodeLog) -> None:
    pipe = small_pipeline(engine, tmp_path, batch_size=2, max_decodes=2)
    await pipe.start()
    try:
        results = await asyncio.gather(*(pipe.run(n) for n in notes))
    finally:
        await pipe.close()
    assert decodes.started == 6
    assert decodes.peak == 2  # reached, never passed
    words = ["morning", "weather", "meeting", "flowers", "train", "report"]
    for result, word in zip(results, words, strict=True):
        assert word in result.transcript.lower(), (word, result.transcript)
    assert pipe.admitted_jobs == 0 and pipe.admitted_seconds == 0.0


async def test_waiting_notes_stay_compressed_until_their_turn(
        engine: InferenceEngine, tmp_path: Path, notes: list[bytes], decodes: DecodeLog,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = small_pipeline(engine, tmp_path, batch_size=1, max_decodes=1)
    assert pipe.held_limit == 2  # one batch of one, plus one decoder
    real_infer = pipe.engine.infer

    async def answered(audio, on_stage=None):  # type: ignore[no-untyped-def]
        try:
            return await real_infer(audio, on_stage=on_stage)
        finally:
            decodes.events.append("answer")

    monkeypatch.setattr(pipe.engine, "infer", answered)
    await pipe.start()
    try:
        await asyncio.gather(*(pipe.run(n) for n in notes[:5]))
    finally:
        await pipe.close()
    # Decoded and not yet answered, after each event: never above the held limit.
    held, most = 0, 0
    for event in decodes.events:
        held += 1 if event == "decode" else -1
        most = max(most, held)
    assert decodes.events.count("decode") == 5
    assert most == 2, decodes.events


async def test_admission_refuses_before_decoding(engine: InferenceEngine, tmp_path: Path,
                                                 notes: list[bytes],
                                                 decodes: DecodeLog) -> None:
    pipe = small_pipeline(engine, tmp_path, queue_size=2, batch_size=1)
    await pipe.start()
    try:
        outcomes = await asyncio.gather(*(pipe.run(n) for n in notes),
                                        return_exceptions=True)
    finally:
        await pipe.close()
    busy = [o for o in outcomes if isinstance(o, Busy)]
    done = [o for o in outcomes if isinstance(o, PipelineResult)]
    assert len(done) == 2 and len(busy) == 4, outcomes
    assert all(b.retry_after_s >= 1.0 and "busy" in str(b) for b in busy)
    assert decodes.started == 2  # the refused notes were never decoded


async def test_queue_is_measured_in_audio_seconds(engine: InferenceEngine, tmp_path: Path,
                                                  notes: list[bytes],
                                                  decodes: DecodeLog) -> None:
    long_tone = tone_or_silence(tmp_path, "tone", seconds=60.0, fmt="ogg").read_bytes()
    pipe = small_pipeline(engine, tmp_path, queue_audio_seconds=30.0)
    await pipe.start()
    try:
        first = asyncio.create_task(pipe.run(notes[0]))
        while pipe.admitted_jobs == 0:
            await asyncio.sleep(0.005)
        # One short note is in; 60 s more would pass the 30 s budget: refused unopened.
        with pytest.raises(Busy):
            await pipe.run(long_tone)
        assert decodes.started <= 1
        await first
        assert decodes.started == 1
    finally:
        await pipe.close()


async def test_too_long_is_refused_from_the_header(engine: InferenceEngine, tmp_path: Path,
                                                   decodes: DecodeLog) -> None:
    long_tone = tone_or_silence(tmp_path, "tone", seconds=20.0, fmt="ogg").read_bytes()
    pipe = small_pipeline(engine, tmp_path, max_audio_seconds=10.0)
    with pytest.raises(TooLong) as err:
        await pipe.run(long_tone)
    assert "10 s" in err.value.message
    assert decodes.started == 0


async def test_a_refused_note_gives_its_place_back(engine: InferenceEngine, tmp_path: Path,
                                                   notes: list[bytes],
                                                   decodes: DecodeLog) -> None:
    pipe = small_pipeline(engine, tmp_path, queue_size=1)
    await pipe.start()
    try:
        with pytest.raises(CorruptAudio):
            await pipe.run(b"OggS" + b"not really an ogg file" * 40)
        assert pipe.admitted_jobs == 0 and pipe.admitted_seconds == 0.0
        result = await pipe.run(notes[1])  # the one place is free again
        assert "weather" in result.transcript.lower()
        assert decodes.started == 2
    finally:
        await pipe.close()


def test_config_carries_no_secret(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, telegram_bot_token="123456:SECRET-telegram",
                             slack_bot_token="xoxb-SECRET-slack", queue_size=7)
    config = InferenceConfig.from_settings(settings)
    text = json.dumps(config.to_dict()) + repr(config)
    assert "SECRET" not in text
    assert not [k for k in config.to_dict() if "token" in k or "secret" in k]
    assert config.queue_size == 7 and config.languages == ("zh", "en")
    assert InferenceConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    # Handed the application settings, the engine and the pipeline keep only the config.
    engine = InferenceEngine(settings)
    pipeline = Pipeline(settings, engine=engine)  # type: ignore[arg-type]
    for holder in (engine, pipeline):
        kept = list(vars(holder).values())
        assert not [v for v in kept if hasattr(v, "telegram_bot_token")], holder
        assert not [v for v in kept if "SECRET" in repr(v)], holder


def test_result_round_trips_through_json() -> None:
    result = PipelineResult(
        transcript="今天很开心。", language="zh", duration_s=3.25,
        emotion=FusedEmotion(
            label="positive", confidence=0.8125, valence=0.625, arousal=0.375,
            text=TextReading("positive", {"positive": 0.75, "negative": 0.125}, "lexicon"),
            voice=VoiceReading("sad", 0.375, {"sad": 0.5}, "emotion2vec", valence=-0.25),
        ),
        models={"asr": "whisper-base"}, timings={"decode": 0.125, "total": 1.5},
        audio_sha256="ab" * 32,
    )
    again = PipelineResult.from_json(json.loads(json.dumps(result.to_json())))
    assert again == result
    bare = PipelineResult(**{**vars(result), "emotion": FusedEmotion(
        "neutral", 0.5, 0.0, 0.0, None, None)})
    assert PipelineResult.from_json(json.loads(json.dumps(bare.to_json()))) == bare


async def test_a_note_is_told_each_stage_in_order(engine: InferenceEngine, tmp_path: Path,
                                                  notes: list[bytes]) -> None:
    """What the page's progress bar shows (issue #20, item 7): every stage, once, in order."""
    pipe = small_pipeline(engine, tmp_path)
    seen: list[tuple[str, float]] = []
    await pipe.start()
    try:
        result = await pipe.run(notes[2], on_stage=lambda stage, done: seen.append((stage, done)))
    finally:
        await pipe.close()
    assert "meeting" in result.transcript.lower()
    assert seen == [("probe", 0.0), ("decode", 0.0), ("queue", 0.0), ("transcribe", 0.0),
                    ("emotion", 0.0)]


async def test_a_failing_progress_display_never_fails_the_note(
        engine: InferenceEngine, tmp_path: Path, notes: list[bytes],
        caplog: pytest.LogCaptureFixture) -> None:
    pipe = small_pipeline(engine, tmp_path)
    told: list[str] = []

    def broken(stage: str, done: float) -> None:
        told.append(stage)
        raise RuntimeError("the page went away")

    await pipe.start()
    try:
        result = await pipe.run(notes[3], on_stage=broken)
    finally:
        await pipe.close()
    assert "flowers" in result.transcript.lower()
    assert told == ["probe", "decode", "queue", "transcribe", "emotion"]
    failures = [r for r in caplog.records if "progress callback failed" in r.getMessage()]
    assert len(failures) == 5
