"""The shared inference engine with the real offline models on the real recordings.

Batching must not change what comes out, the bounded queue must answer "busy" with a wait,
a long note must neither block the event loop nor starve the short notes queued behind it,
and the device must be chosen as VOICEMOOD_DEVICE says.
"""

from __future__ import annotations

import asyncio
import csv
import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bot.analysis import Sender
from bot.service import AnalysisService
from bot.wording import format_error, help_text
from inference.audio import DecodedAudio, decode_audio
from inference.chunking import CHUNK_S, PAD_S, join_transcripts, merge_voice, split_spans
from inference.device import cpu_threads, cuda_available, resolve_device
from inference.engine import InferenceEngine
from inference.errors import Busy
from inference.types import SAMPLE_RATE, Transcript, VoiceReading
from inference.voice_prosody import label_for
from tests.conftest import SHARED_DATA, make_settings

needs_data = pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present")

#: Short clips from each set: English read speech, Mandarin, acted emotional speech.
BATCH_CLIPS = [
    ("en_asr", "audio/dctts_LJ001-0009.flac"),  # ends mid-window: needs the re-decode
    ("en_asr", "audio/dctts_LJ001-0045.flac"),
    ("zh_asr_aishell", "audio/BAC009S0150W0015.flac"),
    ("zh_asr_aishell", "audio/BAC009S0150W0030.flac"),
    ("en_emotion_ravdess", "audio/03-01-01-01-01-01-01.flac"),
    ("en_emotion_ravdess", "audio/03-01-05-01-01-01-05.flac"),  # angry
]
#: en_asr clips concatenated (with pauses) into a ~65 s "long voice note".
LONG_PARTS = 9


def to_ogg(flac: Path, out: Path) -> bytes:
    """Encode as Telegram sends voice notes (OGG/Opus 32 kbit/s mono)."""
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-i", str(flac), "-c:a", "libopus",
                    "-b:a", "32k", "-ac", "1", str(out)], check=True, capture_output=True)
    return out.read_bytes()


async def decode(data: bytes) -> DecodedAudio:
    return await decode_audio(data, max_bytes=50 * 2**20, max_seconds=600.0)


def en_rows() -> list[dict[str, str]]:
    with (SHARED_DATA / "en_asr" / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def long_note(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, list[str]]:
    """~65 s of real English speech as OGG/Opus, and the references of its parts."""
    tmp = tmp_path_factory.mktemp("long")
    rows = en_rows()[:LONG_PARTS]
    gap = np.zeros(int(0.8 * SAMPLE_RATE), dtype=np.float32)
    pieces = []
    for row in rows:
        samples, rate = sf.read(SHARED_DATA / "en_asr" / row["file"], dtype="float32")
        assert rate == SAMPLE_RATE
        pieces += [samples, gap]
    sf.write(tmp / "long.flac", np.concatenate(pieces), SAMPLE_RATE)
    return to_ogg(tmp / "long.flac", tmp / "long.ogg"), [r["transcript"] for r in rows]


# --- device selection -------------------------------------------------------------------------


def test_device_resolution() -> None:
    assert resolve_device("auto", cuda=False) == "cpu"
    assert resolve_device("auto", cuda=True) == "cuda:0"
    assert resolve_device("cpu", cuda=True) == "cpu"
    assert resolve_device("cuda", cuda=True) == "cuda:0"
    assert resolve_device("CUDA:1", cuda=True) == "cuda:1"
    with pytest.raises(RuntimeError, match="no CUDA device"):
        resolve_device("cuda:1", cuda=False)
    with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
        resolve_device("tpu", cuda=False)
    assert cpu_threads() == len(os.sched_getaffinity(0))


@pytest.mark.skipif(cuda_available(), reason="this machine has CUDA")
async def test_asking_for_cuda_without_it_fails_clearly(tmp_path: Path) -> None:
    eng = InferenceEngine(make_settings(tmp_path, device="cuda"))
    try:
        with pytest.raises(RuntimeError, match="VOICEMOOD_DEVICE=cuda but no CUDA"):
            await eng.start()
        assert eng.backends is None  # failed before loading anything
    finally:
        await eng.close()


async def test_engine_runs_on_cpu_with_every_core(engine: InferenceEngine) -> None:
    import torch

    assert engine.device == "cpu"
    assert torch.get_num_threads() == cpu_threads()
    assert engine.backends is not None
    assert engine.backends.asr.info.device == "cpu"
    assert "int8" in engine.backends.asr.info.detail
    assert engine.load_seconds > 0


async def test_models_load_once_with_a_log_line(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    eng = InferenceEngine(make_settings(tmp_path))
    try:
        with caplog.at_level("INFO", logger="inference.engine"):
            await eng.start()
        line = next(r.getMessage() for r in caplog.records
                    if r.getMessage().startswith("models loaded in"))
        assert " on cpu: peak RSS " in line and " MB" in line and "batch 8" in line
        loaded = eng.backends
        await eng.start()  # a second start (a second adapter) reuses the loaded models
        assert eng.backends is loaded
    finally:
        await eng.close()


# --- batching -----------------------------------------------------------------------------------


@needs_data
async def test_a_batch_gives_the_same_transcripts_and_tags_as_single_calls(
    engine: InferenceEngine, tmp_path: Path
) -> None:
    audios = [
        await decode(to_ogg(SHARED_DATA / name / file, tmp_path / f"{i}.ogg"))
        for i, (name, file) in enumerate(BATCH_CLIPS)
    ]
    singles = [await engine.infer(a) for a in audios]
    assert all(r.timings["batch_size"] == 1 for r in singles)
    batched = await asyncio.gather(*(engine.infer(a) for a in audios))
    assert all(r.timings["batch_size"] == len(audios) for r in batched)

    for one, many in zip(singles, batched, strict=True):
        assert many.transcript == one.transcript
        assert many.text is not None and one.text is not None
        assert many.text.label == one.text.label and many.text.scores == one.text.scores
        assert many.voice == one.voice
    languages = [r.transcript.language for r in batched]
    assert languages == ["en", "en", "zh", "zh", "en", "en"]
    # The clip whose last words fall after Whisper's last complete segment keeps them.
    assert batched[0].transcript.text.rstrip(".").endswith("movable types")
    assert "食品商店" in batched[2].transcript.text
    assert "door" in batched[4].transcript.text.lower()


@needs_data
async def test_batched_whisper_matches_faster_whispers_own_single_clip_path(
    engine: InferenceEngine, tmp_path: Path
) -> None:
    """The lock-step batch decoder gives what WhisperModel.transcribe gives, clip by clip."""
    assert engine.backends is not None
    asr = engine.backends.asr
    clips = [
        (await decode(to_ogg(SHARED_DATA / name / file, tmp_path / f"{i}.ogg"))).samples
        for i, (name, file) in enumerate(BATCH_CLIPS[:4])
    ]
    reference = await asyncio.to_thread(lambda: [asr.transcribe_one(c) for c in clips])
    batched = await asyncio.to_thread(asr.transcribe_batch, clips)
    assert batched == reference


# --- the bounded queue --------------------------------------------------------------------------


@needs_data
async def test_full_queue_answers_busy_with_a_wait(engine: InferenceEngine,
                                                   tmp_path: Path) -> None:
    settings = make_settings(tmp_path, queue_size=1, batch_size=1, batch_wait_ms=0)
    small = InferenceEngine(settings, backends=engine.backends)  # the same loaded models
    service = await AnalysisService.create(settings, engine=small)
    try:
        rows = en_rows()
        notes = [to_ogg(SHARED_DATA / "en_asr" / rows[i]["file"], tmp_path / f"{i}.ogg")
                 for i in (0, 5, 10)]
        first = asyncio.create_task(service.analyze(notes[0], Sender("telegram", "1", "1", "1")))
        await wait_for(lambda: small.waiting_jobs() == 0 and small._inflight_audio_s > 0)
        queued = asyncio.create_task(small.infer(await decode(notes[1])))
        await wait_for(lambda: small.waiting_jobs() == 1)

        with pytest.raises(Busy) as refused:
            await service.analyze(notes[2], Sender("telegram", "1", "1", "3"))
        wait = refused.value.retry_after_s
        # Two clips (8.4 s running + 4.1 s queued) ahead of it at the measured speed.
        assert 1.0 < wait < 120.0
        assert "busy" in str(refused.value)
        reply = format_error("busy", "en", wait=round(wait))
        assert "busy" in reply.lower() and str(round(wait)) in reply
        assert await service.store.get_by_message("telegram", "1", "3") is None

        # A caller that gives up frees its place; the queue takes the next note.
        queued.cancel()
        await wait_for(lambda: small.waiting_jobs() == 0)
        third = await service.analyze(notes[2], Sender("telegram", "1", "1", "3"))
        assert "remarkably like the type" in third.transcript.lower()
        done = await first
        assert "printing" in done.transcript.lower()
        assert await service.store.count("telegram", "1") == 2
        assert queued.cancelled()
    finally:
        await service.close()


async def wait_for(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


@needs_data
async def test_a_model_fault_fails_only_the_clip_that_caused_it(engine: InferenceEngine,
                                                                 tmp_path: Path) -> None:
    from dataclasses import replace

    from inference.backends import Backends

    assert engine.backends is not None
    real = engine.backends.asr

    class FaultyOnNaN:
        """The real ASR, except that a clip holding NaN raises like a crashing model."""

        info = real.info

        def transcribe_batch(self, clips):  # type: ignore[no-untyped-def]
            if any(np.isnan(c).any() for c in clips):
                raise RuntimeError("model fault")
            return real.transcribe_batch(clips)

    backends = Backends(asr=FaultyOnNaN(), text=engine.backends.text,
                        voice=engine.backends.voice, device="cpu")
    eng = InferenceEngine(make_settings(tmp_path), backends=backends)
    await eng.start()
    try:
        good = await decode(to_ogg(SHARED_DATA / "en_emotion_ravdess" / BATCH_CLIPS[4][1],
                                   tmp_path / "good.ogg"))
        bad = replace(good, samples=np.full_like(good.samples, np.nan))
        results = await asyncio.gather(eng.infer(good), eng.infer(bad), eng.infer(good),
                                       return_exceptions=True)
        assert isinstance(results[1], RuntimeError)
        for r in (results[0], results[2]):
            assert not isinstance(r, BaseException)
            assert "door" in r.transcript.text.lower() and r.timings["batch_size"] == 3
        assert (await eng.infer(good)).transcript == results[0].transcript  # still serving
    finally:
        await eng.close()


# --- long notes: fairness and a responsive loop --------------------------------------------------


@needs_data
async def test_long_note_does_not_block_the_loop_or_starve_short_notes(
    service: AnalysisService, long_note: tuple[bytes, list[str]], tmp_path: Path
) -> None:
    data, references = long_note
    short = to_ogg(SHARED_DATA / "en_asr" / en_rows()[20]["file"], tmp_path / "short.ogg")
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.02)
            lags.append(time.perf_counter() - t - 0.02)

    finished: dict[str, float] = {}

    async def run(name: str, note: bytes, message: str):  # type: ignore[no-untyped-def]
        result = await service.analyze(note, Sender("telegram", "5", "5", message))
        finished[name] = time.perf_counter()
        return result

    tick = asyncio.create_task(ticker())
    long_task = asyncio.create_task(run("long", data, "long"))
    await wait_for(lambda: service.engine._inflight_audio_s > 0)
    short_task = asyncio.create_task(run("short", short, "short"))

    # A command answered while the long note is being transcribed.
    t0 = time.perf_counter()
    history = await service.store.recent("telegram", "5", 5)
    reply = help_text({"history": "show history"}, "en")
    answered = time.perf_counter() - t0
    assert history == [] and reply
    assert answered < 0.5 and not long_task.done()

    short_result, long_result = await asyncio.gather(short_task, long_task)
    stop.set()
    await tick

    assert finished["short"] < finished["long"] - 1.0, finished
    assert "rivers" in short_result.transcript.lower()
    assert long_result.timings["chunks"] >= 3
    assert long_result.duration_s > 60
    assert max(lags) < 0.3, f"event loop stalled {max(lags):.2f} s"
    # Words from the first, a middle and the last recording survive the split and re-join.
    text = long_result.transcript.lower()
    for word in ("exhibition", "movable", "roman", "venice", "enthusiasm"):
        assert word in text, (word, text)
    assert text.index("exhibition") < text.index("venice") < text.index("enthusiasm")
    assert long_result.language == "en" and long_result.emotion.voice is not None
    assert len(references) == LONG_PARTS


# --- chunking -----------------------------------------------------------------------------------


@needs_data
async def test_split_spans_cut_long_audio_in_pauses(long_note: tuple[bytes, list[str]]) -> None:
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    samples = (await decode(long_note[0])).samples
    spans = await asyncio.to_thread(split_spans, samples)
    assert len(spans) >= 3
    assert all(a < b for a, b in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    assert max(b - a for a, b in spans) <= (CHUNK_S + 2 * PAD_S) * SAMPLE_RATE
    speech = get_speech_timestamps(samples, VadOptions())
    covered = sum(
        sum(max(0, min(e, b) - max(s, a)) for a, b in spans)
        for s, e in ((seg["start"], seg["end"]) for seg in speech)
    )
    assert covered >= 0.99 * sum(seg["end"] - seg["start"] for seg in speech)

    assert split_spans(samples[: 20 * SAMPLE_RATE]) == [(0, 20 * SAMPLE_RATE)]
    silence = np.zeros(45 * SAMPLE_RATE, dtype=np.float32)
    assert split_spans(silence) == [(0, int(CHUNK_S * SAMPLE_RATE))]


def test_chunk_results_are_joined() -> None:
    en = join_transcripts([Transcript("Hello there.", "en"), Transcript("", ""),
                           Transcript("Bye.", "en")], [20.0, 5.0, 3.0])
    assert en == Transcript("Hello there. Bye.", "en")
    zh = join_transcripts([Transcript("今天很好。", "zh"), Transcript("OK.", "en")], [20.0, 2.0])
    assert zh == Transcript("今天很好。OK.", "zh")

    calm = VoiceReading("calm", 0.2, {"calm": 0.7, "moderate": 0.3, "agitated": 0.0}, "p")
    loud = VoiceReading("agitated", 0.8, {"calm": 0.0, "moderate": 0.4, "agitated": 0.6}, "p")
    merged = merge_voice([calm, loud], [3.0, 1.0])
    assert merged is not None and merged.arousal == pytest.approx(0.35)
    assert merged.label == label_for(0.35) == "calm"
    assert merged.scores["calm"] == pytest.approx(0.525)

    happy = VoiceReading("happy", 0.7, {"happy": 0.8, "sad": 0.2}, "e2v", valence=0.6)
    sad = VoiceReading("sad", 0.3, {"happy": 0.1, "sad": 0.9}, "e2v", valence=-0.7)
    merged = merge_voice([happy, sad], [1.0, 3.0])
    assert merged is not None and merged.label == "sad"
    assert merged.valence == pytest.approx((0.6 - 2.1) / 4)
    assert merge_voice([None, None], [1.0, 1.0]) is None
    assert merge_voice([happy], [5.0]) is happy
