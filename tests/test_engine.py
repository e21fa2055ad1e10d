"""The shared inference engine with the real offline models on the real recordings.

Batching must not change what comes out, the bounded queue must answer "busy" with a wait,
a long note must neither block the event loop nor starve the short notes queued behind it,
and the device must be chosen as VOICEMOOD_DEVICE says.
"""

from __future__ import annotations

import asyncio
import csv
import inspect
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bench.scoring import cer_zh, wer_en
from bot.analysis import Sender
from bot.core.service import AnalysisService
from inference.asr_whisper import ZH_PROMPT, WhisperAsr, join_text, to_simplified
from inference.audio import DecodedAudio, decode_audio
from inference.chunking import CHUNK_S, PAD_S, join_transcripts, merge_voice, split_spans
from inference.device import cpu_threads, cuda_available, resolve_device
from inference.engine import InferenceEngine, use_every_core
from inference.errors import Busy
from inference.types import SAMPLE_RATE, AsrBackend, Transcript, VoiceReading
from inference.voice_prosody import label_for
from tests.conftest import REPO, SHARED_DATA, make_settings

needs_data = pytest.mark.shared_data

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
    torch.set_num_threads(1)
    use_every_core()  # what loading does once a full-tier model has imported torch
    assert torch.get_num_threads() == cpu_threads()
    assert engine.backends is not None
    assert engine.backends.asr.info.device == "cpu"
    assert "int8" in engine.backends.asr.info.detail
    assert engine.load_seconds > 0


def test_the_offline_tier_loads_without_torch(tmp_path: Path) -> None:
    """Importing torch costs about 2 s of every start, and only the full tier needs it."""
    script = (
        "import asyncio, sys\n"
        "from inference.config import InferenceConfig\n"
        "from inference.engine import InferenceEngine\n"
        "engine = InferenceEngine(InferenceConfig(device='cpu'))\n"
        "asyncio.run(engine.start())\n"
        "print(sorted(i.tier for i in engine.backends.infos()), 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == "['offline', 'offline', 'offline'] False"


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


class RecordingAsr:
    """The real ASR backend, recording how many clips each call to it carries."""

    def __init__(self, real: AsrBackend) -> None:
        self.real = real
        self.info = real.info
        self.calls: list[int] = []

    def transcribe_batch(self, clips):  # type: ignore[no-untyped-def]
        self.calls.append(len(clips))
        return self.real.transcribe_batch(clips)


@needs_data
async def test_a_batch_gives_the_same_transcripts_and_tags_as_single_calls(
    engine: InferenceEngine, tmp_path: Path
) -> None:
    assert engine.backends is not None
    asr = RecordingAsr(engine.backends.asr)
    eng = InferenceEngine(make_settings(tmp_path), backends=replace(engine.backends, asr=asr))
    audios = [
        await decode(to_ogg(SHARED_DATA / name / file, tmp_path / f"{i}.ogg"))
        for i, (name, file) in enumerate(BATCH_CLIPS)
    ]
    try:
        singles = [await eng.infer(a) for a in audios]
        assert asr.calls == [1, 1, 1, 1, 1, 1]
        asr.calls.clear()
        batched = await asyncio.gather(*(eng.infer(a) for a in audios))
        assert asr.calls == [6]  # one recogniser call for the whole batch
    finally:
        await eng.close()
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
async def test_batched_whisper_on_30_s_windows_matches_faster_whispers_own_path(
    engine: InferenceEngine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With VOICEMOOD_WHISPER_SHORT_WINDOWS=false the lock-step batch decoder gives what
    WhisperModel.transcribe gives, clip by clip."""
    assert engine.backends is not None
    asr = engine.backends.asr
    monkeypatch.setattr(asr, "short_windows", False)
    clips = [
        (await decode(to_ogg(SHARED_DATA / name / file, tmp_path / f"{i}.ogg"))).samples
        for i, (name, file) in enumerate(BATCH_CLIPS[:4])
    ]
    reference = await asyncio.to_thread(lambda: [faster_whisper_alone(asr, c) for c in clips])
    batched = await asyncio.to_thread(asr.transcribe_batch, clips)
    assert batched == reference


def faster_whisper_alone(asr: WhisperAsr, clip: np.ndarray) -> Transcript:
    """One clip through faster-whisper's own ``WhisperModel.transcribe``, with the decoding
    rules the batch decoder promises to follow (see inference/whisper_batch.py)."""
    _lang, _prob, probs = asr.model.detect_language(clip, vad_filter=True)
    language = max((p, code) for code, p in probs if code in asr.languages)[1]
    segments, _ = asr.model.transcribe(
        clip, language=language, beam_size=asr.beam_size,
        initial_prompt=ZH_PROMPT if language == "zh" else None, vad_filter=True,
        condition_on_previous_text=False,
    )
    text = join_text([s.text for s in segments], language)
    return Transcript(to_simplified(text) if language == "zh" else text, language)


def test_the_private_faster_whisper_function_we_call_is_unchanged(
        engine: InferenceEngine) -> None:
    """inference/whisper_batch.py calls WhisperModel._split_segments_by_timestamps, which is
    private: a faster-whisper upgrade may change it without notice."""
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    expected = ["self", "tokenizer", "tokens", "time_offset", "segment_size",
                "segment_duration", "seek"]
    params = list(inspect.signature(WhisperModel._split_segments_by_timestamps).parameters)
    assert params == expected, (
        "faster-whisper's private WhisperModel._split_segments_by_timestamps changed its "
        f"parameters from {expected} to {params}: keep faster-whisper pinned as in "
        "pyproject.toml, or update inference/whisper_batch.py (_decode_round) to match."
    )
    assert engine.backends is not None
    model = engine.backends.asr.model  # type: ignore[attr-defined]
    tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="en")
    begin = tokenizer.timestamp_begin
    hello = tokenizer.encode(" Hello")
    # <|0.00|> Hello <|1.00|>: one segment from 0 to 1 s, and the window is done.
    out = model._split_segments_by_timestamps(
        tokenizer=tokenizer, tokens=[begin, *hello, begin + 50], time_offset=0.0,
        segment_size=3000, segment_duration=30.0, seek=0)
    assert isinstance(out, tuple) and len(out) == 3, (
        "faster-whisper's _split_segments_by_timestamps no longer returns "
        "(segments, seek, single_timestamp_ending); update inference/whisper_batch.py")
    segments, seek, _single = out
    assert [(s["start"], s["end"], s["tokens"]) for s in segments] == [
        (0.0, 1.0, [begin, *hello, begin + 50])]
    assert seek == 3000


@needs_data
async def test_a_mandarin_note_comes_out_as_zh_in_simplified_characters(
        service: AnalysisService, tmp_path: Path) -> None:
    # Whisper writes this clip's 执行 as the traditional 執行; the reply must not.
    note = to_ogg(SHARED_DATA / "zh_asr_aishell" / "audio" / "BAC009S0150W0240.flac",
                  tmp_path / "zh.ogg")
    analysis = await service.analyze(note, Sender("telegram", "zh", "zh", "1"))
    assert analysis.language == "zh"
    assert "税收政策执行" in analysis.transcript and "執" not in analysis.transcript
    assert cer_zh(["住房用地供应和管理情况以及税收政策执行和征管情况"],
                  [analysis.transcript]) < 0.15
    stored = await service.history("telegram", "zh", 1)
    assert [(a.language, a.transcript) for a in stored] == [("zh", analysis.transcript)]


@needs_data
async def test_an_angry_voice_is_excited_where_the_same_words_calmly_are_neutral(
        service: AnalysisService) -> None:
    # RAVDESS actor 3 says "Kids are talking by the door." neutrally, then angrily (strong
    # intensity); Whisper ends the shouted one with "!".
    audio = SHARED_DATA / "en_emotion_ravdess" / "audio"
    calm = await service.analyze_bytes((audio / "03-01-01-01-01-01-03.flac").read_bytes())
    angry = await service.analyze_bytes((audio / "03-01-05-02-01-01-03.flac").read_bytes())
    assert calm.transcript.rstrip(".!") == angry.transcript.rstrip(".!") == (
        "Kids are talking by the door")
    assert (calm.label, angry.label) == ("neutral", "excited")
    assert angry.emotion.arousal > calm.emotion.arousal + 0.5


# --- the bounded queue --------------------------------------------------------------------------


@needs_data
async def test_full_queue_answers_busy_with_a_wait(engine: InferenceEngine,
                                                   tmp_path: Path) -> None:
    settings = make_settings(tmp_path, queue_size=1, batch_size=1, batch_wait_ms=0)
    small = InferenceEngine(settings, backends=engine.backends)  # the same loaded models
    service = await AnalysisService.create(settings, engine=small)
    pipeline = service.pipeline
    try:
        rows = en_rows()
        notes = [to_ogg(SHARED_DATA / "en_asr" / rows[i]["file"], tmp_path / f"{i}.ogg")
                 for i in (0, 5, 10)]
        first = asyncio.create_task(service.analyze(notes[0], Sender("telegram", "1", "1", "1")))
        await wait_for(lambda: small._inflight_audio_s > 0)

        with pytest.raises(Busy) as refused:
            await service.analyze(notes[2], Sender("telegram", "1", "1", "3"))
        wait = refused.value.retry_after_s
        # The 8.4 s note being analysed is ahead of it, at the measured speed.
        assert 1.0 < wait < 60.0
        assert "busy" in str(refused.value)
        assert await service.store.get_by_message("telegram", "1", "3") is None
        done = await first
        assert "printing" in done.transcript.lower()

        # A caller that gives up frees its place; the queue takes the next note.
        queued = asyncio.create_task(pipeline.run(notes[1]))
        await wait_for(lambda: pipeline.admitted_jobs == 1)
        queued.cancel()
        await wait_for(lambda: pipeline.admitted_jobs == 0)
        assert pipeline.admitted_seconds == 0.0
        third = await service.analyze(notes[2], Sender("telegram", "1", "1", "3"))
        assert "remarkably like the type" in third.transcript.lower()
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
    # Only what does not depend on this machine's speed is checked here; how long the loop
    # stalls and how soon each note is answered are measured by bench/loop_stall.py.
    data, references = long_note
    short = to_ogg(SHARED_DATA / "en_asr" / en_rows()[20]["file"], tmp_path / "short.ogg")
    answered: list[str] = []
    stages: dict[str, list[tuple[str, float]]] = {"long": [], "short": []}

    async def run(name: str, note: bytes):  # type: ignore[no-untyped-def]
        result = await service.analyze(note, Sender("telegram", "5", "5", name),
                                       on_stage=lambda *told: stages[name].append(told))
        answered.append(name)
        return result

    long_task = asyncio.create_task(run("long", data))
    await wait_for(lambda: service.engine._inflight_audio_s > 0)
    short_task = asyncio.create_task(run("short", short))

    # A command answered while the long note is being transcribed: the loop is not blocked.
    assert await service.store.recent("telegram", "5", 5) == []
    assert not long_task.done()

    short_result, long_result = await asyncio.gather(short_task, long_task)
    # The short note, queued behind the long one, is not starved: it is answered first.
    assert answered == ["short", "long"]
    assert "rivers" in short_result.transcript.lower()
    assert long_result.timings["chunks"] >= 3
    assert long_result.duration_s > 60
    # Words from the first, a middle and the last recording survive the split and re-join.
    text = long_result.transcript.lower()
    # The last recording by "revived", not "enthusiasm": Whisper sometimes writes
    # "enthousiasm" there, depending on which chunks share a batch (a matter of timing).
    for word in ("exhibition", "movable", "roman", "venice", "revived"):
        assert word in text, (word, text)
    assert text.index("exhibition") < text.index("venice") < text.index("revived")
    assert long_result.language == "en" and long_result.emotion.voice is not None
    # Measured 0.11 on the nine joined recordings (0.12 clip by clip in test_quality); a
    # chunk lost or cut at its edges (each is about a third of the words) would show here.
    assert wer_en([" ".join(references)], [long_result.transcript]) < 0.2
    # Progress (issue #20, item 7): each stage in order; "transcribe" is told again for each
    # batch that takes more of the long note's chunks, with the part already transcribed.
    names = [stage for stage, _ in stages["long"]]
    assert names[:4] == ["probe", "decode", "queue", "transcribe"] and names[-1] == "emotion"
    assert set(names[4:-1]) <= {"transcribe"}
    parts = [done for stage, done in stages["long"] if stage == "transcribe"]
    assert parts[0] == 0.0 and parts == sorted(set(parts)) and parts[-1] < 1.0
    assert [stage for stage, _ in stages["short"]] == [
        "probe", "decode", "queue", "transcribe", "emotion"]


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
