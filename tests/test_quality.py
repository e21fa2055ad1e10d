"""Quality floors of the real offline tier on the real recordings in ../shared/data.

Measured on 2026-11-25 (2-core x86-64 CPU, Whisper base int8, beam 5, Silero VAD) on the
subsets below; the floors leave a margin for thread-scheduling noise, not for regressions.
See README.md "Accuracy" for the measured values.
"""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import numpy as np
import pytest

from bench.scoring import cer_zh, normalise_en, normalise_zh, wer_en
from bot.core.service import AnalysisService
from inference.audio import decode_audio
from inference.engine import InferenceEngine
from inference.fusion import EXCITED_AROUSAL
from inference.voice_prosody import ProsodyVoiceEmotion
from tests.conftest import SHARED_DATA, SHARED_REASON

#: Every 5th clip: 40 Mandarin clips (~3 min of audio), 31 English clips (~3.5 min).
#: Measured: CER 0.176 at first, WER 0.132, arousal AUC 0.873. On 2026-12-02 the last landed
#: commit (46ed5eb) itself measured CER 0.222 with a fresh install (the unpinned packages
#: under faster-whisper, e.g. onnxruntime for its VAD, had moved), so the floor sits just
#: above what the product does today, not where it was once measured. Issue 21 (short
#: windows, and numbers scored alike however written, bench/scoring.py) measured CER 0.152,
#: WER 0.092; the floors keep about 0.02 for packages that move under a fresh install.
STRIDE = 5
MAX_CER_ZH = 0.18
MAX_WER_EN = 0.12
#: Share of (aroused clip, calm clip) pairs where the aroused one gets the higher arousal
#: (issues 11 and 22; measured 0.880 with the shipped arousal model, 0.866 before it).
MIN_AROUSAL_AUC = 0.85
#: RAVDESS angry clips whose voice reaches the "excited" line: at least this share (issue
#: 22; measured 0.583, 14 of 24, as before the model).
MIN_ANGRY_EXCITED = 0.5
#: Calm read speech (every 2nd clip) whose voice arousal reaches the fusion's "excited" line:
#: at most this share. Measured 0 of 76 and 0 of 100 with the arousal model (issue 22);
#: 0.066 and 0.020 with the hand-set rule, 0.092 and 0.100 before its octave-error fix.
MAX_CALM_READ_EXCITED = {"en_asr": 0.03, "zh_asr_aishell": 0.02}
#: calm_speech (215 calm clips, 141 speakers, 7 sources): issue 22 asks for at most 10 %
#: excited overall and 20 % in any source. Measured 0.037 (8 of 215, all LibriSpeech
#: readers; 8 of 215 too when every speaker is held out of training); the hand-set rule
#: read 0.344, and 5 of 5 in one source.
MAX_CALM_SPEECH_EXCITED = 0.06
MAX_CALM_SPEECH_EXCITED_PER_SOURCE = 0.20
#: The first 0.8 s of each calm_speech clip's speech, about one word: measured 0 of 215
#: excited; without the short-clip pull 13 of 215.
WORD_S = 0.8
MAX_CALM_WORD_EXCITED = 0.02
#: EmoDB/CREMA-D aroused (anger, happiness, fear) vs calm (neutral, boredom, sadness):
#: 0.895 with the hand-set rule. These clips train the model, so this guards the shipped
#: weights (measured 0.946); the held-out figure (0.939, speakers left out) is printed by
#: scripts/build_arousal_model.py.
MIN_EMODB_AUC = 0.895

AROUSED = ("angry", "happy", "fearful", "surprised")
CALM = ("neutral", "calm")


def manifest(name: str) -> list[dict[str, str]]:
    with (SHARED_DATA / name / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_error_rates() -> None:
    # Needs no recordings: runs everywhere, unlike the rest of this file.
    assert cer_zh(["上海市"], ["上海是"]) == pytest.approx(1 / 3)
    assert cer_zh(["上海市", "你好"], ["上海市。", ""]) == pytest.approx(2 / 5)
    assert wer_en(["A b, c."], ["a c"]) == pytest.approx(1 / 3)
    assert wer_en(["well-known fact"], ["well known fact"]) == 0.0
    assert normalise_zh("西堤牛排(新梅广场店) L O G O") == "西堤牛排新梅广场店LOGO"
    assert normalise_en("It's a Well-Known FACT!") == "it is a well known fact"
    # Numbers count alike however they are written, on both sides (bench/scoring.py).
    assert normalise_zh("一三七零, 20年前") == "一三七零二零年前"
    assert cer_zh(["一三七零二六六二零九七"], ["13702662097"]) == 0.0
    assert normalise_en("two. The female debtors' side. Mr. Newman") == (
        "2 the female debtors side mister newman")
    assert wer_en(["nineteen inches"], ["19 inches."]) == 0.0
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        cer_zh(["上海", "北京"], ["上海"])


async def _transcribe(service: AnalysisService, path: Path) -> str:
    return (await service.analyze_bytes(path.read_bytes())).transcript


@pytest.mark.slow
@pytest.mark.shared_data
async def test_mandarin_character_error_rate(service: AnalysisService) -> None:
    rows = manifest("zh_asr_aishell")[::STRIDE]
    hyps = [await _transcribe(service, SHARED_DATA / "zh_asr_aishell" / row["file"])
            for row in rows]
    cer = cer_zh([row["transcript"] for row in rows], hyps)
    print(f"\nzh_asr_aishell: {len(rows)} clips, CER {cer:.3f}")
    assert cer <= MAX_CER_ZH


@pytest.mark.slow
@pytest.mark.shared_data
async def test_english_word_error_rate(service: AnalysisService) -> None:
    rows = manifest("en_asr")[::STRIDE]
    hyps = [await _transcribe(service, SHARED_DATA / "en_asr" / row["file"]) for row in rows]
    wer = wer_en([row["transcript"] for row in rows], hyps)
    print(f"\nen_asr: {len(rows)} clips, WER {wer:.3f}")
    assert wer <= MAX_WER_EN


@pytest.mark.slow
@pytest.mark.shared_data
async def test_aroused_voices_score_higher_than_calm_ones(engine: InferenceEngine) -> None:
    assert engine.backends is not None and engine.backends.voice is not None
    voice = engine.backends.voice
    arousal: dict[str, list[float]] = {}
    for row in manifest("en_emotion_ravdess"):
        if row["emotion"] not in AROUSED + CALM:
            continue
        data = (SHARED_DATA / "en_emotion_ravdess" / row["file"]).read_bytes()
        decoded = await decode_audio(data, max_bytes=10**8, max_seconds=60)
        reading = voice.analyze_batch([decoded.samples], levels_dbfs=[decoded.source_dbfs])[0]
        arousal.setdefault(row["emotion"], []).append(reading.arousal)
    high = np.array([a for e in AROUSED for a in arousal[e]])
    low = np.array([a for e in CALM for a in arousal[e]])
    auc = float(np.mean(high[:, None] > low[None, :]))
    angry = float(np.mean(np.array(arousal["angry"]) >= EXCITED_AROUSAL))
    print(f"\nRAVDESS: {len(high)} aroused vs {len(low)} calm clips, pairwise AUC {auc:.3f}; "
          f"angry excited {angry:.3f}; "
          + ", ".join(f"{e} {np.median(v):.2f}" for e, v in sorted(arousal.items())))
    assert auc >= MIN_AROUSAL_AUC
    assert angry >= MIN_ANGRY_EXCITED


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["en_asr", "zh_asr_aishell"])
async def test_calm_read_speech_is_rarely_excited(engine: InferenceEngine, name: str) -> None:
    # Both sets are people reading prompts calmly: an "excited" voice here is a false alarm.
    assert engine.backends is not None and engine.backends.voice is not None
    voice = engine.backends.voice
    arousals = []
    for row in manifest(name)[::2]:
        data = (SHARED_DATA / name / row["file"]).read_bytes()
        decoded = await decode_audio(data, max_bytes=10**8, max_seconds=60)
        reading = voice.analyze_batch([decoded.samples], levels_dbfs=[decoded.source_dbfs])[0]
        arousals.append(reading.arousal)
    excited = float(np.mean(np.array(arousals) >= EXCITED_AROUSAL))
    print(f"\n{name}: {len(arousals)} calm read clips, {excited:.3f} excited, "
          f"median arousal {np.median(arousals):.2f}")
    assert excited <= MAX_CALM_READ_EXCITED[name]


def _decoded(name: str) -> list[tuple[dict[str, str], np.ndarray, float]]:
    """Every clip of a set, decoded as the product does: (row, samples, level before
    normalisation)."""
    async def run() -> list[tuple[dict[str, str], np.ndarray, float]]:
        out = []
        for row in manifest(name):
            data = (SHARED_DATA / name / row["file"]).read_bytes()
            decoded = await decode_audio(data, max_bytes=10**8, max_seconds=60)
            out.append((row, decoded.samples, decoded.source_dbfs))
        return out

    return asyncio.run(run())


@pytest.fixture(scope="module")
def calm_speech() -> list[tuple[dict[str, str], np.ndarray, float]]:
    """calm_speech decoded once for the tests below (skipped without ../shared/data)."""
    if not SHARED_DATA.is_dir():
        pytest.skip(SHARED_REASON)
    return _decoded("calm_speech")


def _first_speech(samples: np.ndarray, seconds: float) -> np.ndarray:
    """``seconds`` of the clip from where its speech starts (25 dB under its loudest 10 ms)."""
    hop = 160
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop).astype(np.float64)
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    onset = int(np.argmax(level > level.max() - 25.0)) * hop
    return samples[onset: onset + int(seconds * 16_000)]


@pytest.mark.slow
@pytest.mark.shared_data
def test_calm_speech_from_many_speakers_is_rarely_excited(
        calm_speech: list[tuple[dict[str, str], np.ndarray, float]]) -> None:
    voice = ProsodyVoiceEmotion()
    by_source: dict[str, list[bool]] = {}
    by_speaker: dict[str, list[float]] = {}
    for row, samples, level in calm_speech:
        arousal = voice.analyze(samples, level).arousal
        by_source.setdefault(row["source_repo"], []).append(arousal >= EXCITED_AROUSAL)
        by_speaker.setdefault(row["speaker"] or row["file"], []).append(arousal)
    every = [e for flags in by_source.values() for e in flags]
    print(f"\ncalm_speech: {sum(every)} of {len(every)} excited; " + ", ".join(
        f"{s} {sum(f)}/{len(f)}" for s, f in sorted(by_source.items())))
    worst = sorted(by_speaker.items(), key=lambda kv: -max(kv[1]))[:5]
    print("highest speakers: " + ", ".join(f"{s} {max(a):.2f}" for s, a in worst))
    assert len(every) == 215 and len(by_source) == 7
    assert np.mean(every) <= MAX_CALM_SPEECH_EXCITED
    for source, flags in by_source.items():
        assert np.mean(flags) <= MAX_CALM_SPEECH_EXCITED_PER_SOURCE, source


@pytest.mark.slow
@pytest.mark.shared_data
def test_one_word_of_calm_speech_is_not_excited(
        calm_speech: list[tuple[dict[str, str], np.ndarray, float]]) -> None:
    voice = ProsodyVoiceEmotion()
    arousals = np.array([voice.analyze(_first_speech(samples, WORD_S), level).arousal
                         for _, samples, level in calm_speech])
    excited = float(np.mean(arousals >= EXCITED_AROUSAL))
    print(f"\ncalm_speech, first {WORD_S} s of speech: {excited:.3f} excited, "
          f"highest arousal {arousals.max():.2f}")
    assert excited <= MAX_CALM_WORD_EXCITED


@pytest.mark.slow
@pytest.mark.shared_data
def test_emodb_aroused_voices_score_higher_than_calm_ones() -> None:
    voice = ProsodyVoiceEmotion()
    high, low = [], []
    for row, samples, level in _decoded("emotion_emodb"):
        if row["emotion"] in ("anger", "happiness", "fear"):
            high.append(voice.analyze(samples, level).arousal)
        elif row["emotion"] in ("neutral", "boredom", "sadness"):
            low.append(voice.analyze(samples, level).arousal)
    auc = float(np.mean(np.array(high)[:, None] > np.array(low)[None, :]))
    print(f"\nemotion_emodb: {len(high)} aroused vs {len(low)} calm clips, AUC {auc:.3f}")
    assert (len(high), len(low)) == (149, 125)
    assert auc >= MIN_EMODB_AUC
