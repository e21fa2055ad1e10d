"""Quality floors of the real offline tier on the real recordings in ../shared/data.

Measured on 2026-11-25 (2-core x86-64 CPU, Whisper base int8, beam 5, Silero VAD) on the
subsets below; the floors leave a margin for thread-scheduling noise, not for regressions.
See README.md "Accuracy" for the measured values.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from bench.scoring import cer_zh, normalise_en, normalise_zh, wer_en
from bot.core.service import AnalysisService
from inference.audio import decode_audio
from inference.engine import InferenceEngine
from tests.conftest import SHARED_DATA

#: Every 5th clip: 40 Mandarin clips (~3 min of audio), 31 English clips (~3.5 min).
#: Measured: CER 0.176, WER 0.132, arousal AUC 0.873.
STRIDE = 5
MAX_CER_ZH = 0.22
MAX_WER_EN = 0.16
#: Share of (aroused clip, calm clip) pairs where the aroused one gets the higher arousal
#: (issue 11's target; measured 0.866 after the octave-error fix, README "Accuracy").
MIN_AROUSAL_AUC = 0.85
#: Calm read speech (every 2nd clip) whose voice arousal reaches the fusion's "excited" line:
#: at most this share. Issue 11 asks for <= 0.10; measured 0.066 (5 of 76) and 0.020 (2 of
#: 100); before the octave-error fix 0.092 and 0.100, which these floors refuse.
MAX_CALM_READ_EXCITED = {"en_asr": 0.08, "zh_asr_aishell": 0.05}

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
    assert normalise_en("It's a Well-Known FACT!") == "it's a well known fact"
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
    print(f"\nRAVDESS: {len(high)} aroused vs {len(low)} calm clips, pairwise AUC {auc:.3f}; "
          + ", ".join(f"{e} {np.median(v):.2f}" for e, v in sorted(arousal.items())))
    assert auc >= MIN_AROUSAL_AUC


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["en_asr", "zh_asr_aishell"])
async def test_calm_read_speech_is_rarely_excited(engine: InferenceEngine, name: str) -> None:
    # Both sets are people reading prompts calmly: an "excited" voice here is a false alarm.
    from inference.fusion import EXCITED_AROUSAL

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
