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

from bot.service import AnalysisService
from inference.asr_metrics import edit_distance, normalise_en, normalise_zh
from inference.audio import decode_audio
from inference.engine import InferenceEngine
from tests.conftest import SHARED_DATA

#: Every 5th clip: 40 Mandarin clips (~3 min of audio), 31 English clips (~3.5 min).
#: Measured: CER 0.176, WER 0.132, arousal AUC 0.873.
STRIDE = 5
MAX_CER_ZH = 0.22
MAX_WER_EN = 0.16
#: Share of (aroused clip, calm clip) pairs where the aroused one gets the higher arousal.
MIN_AROUSAL_AUC = 0.80

AROUSED = ("angry", "happy", "fearful", "surprised")
CALM = ("neutral", "calm")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SHARED_DATA.exists(), reason="../shared/data is not present"),
]


def manifest(name: str) -> list[dict[str, str]]:
    with (SHARED_DATA / name / "manifest.csv").open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_edit_distance() -> None:
    assert edit_distance("上海市", "上海是") == 1
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert normalise_zh("西堤牛排(新梅广场店) L O G O") == "西堤牛排新梅广场店LOGO"


async def _transcribe(service: AnalysisService, path: Path) -> str:
    return (await service.analyze_bytes(path.read_bytes())).transcript


async def test_mandarin_character_error_rate(service: AnalysisService) -> None:
    rows = manifest("zh_asr_aishell")[::STRIDE]
    errors = chars = 0
    for row in rows:
        hyp = await _transcribe(service, SHARED_DATA / "zh_asr_aishell" / row["file"])
        ref = normalise_zh(row["transcript"])
        errors += edit_distance(ref, normalise_zh(hyp))
        chars += len(ref)
    cer = errors / chars
    print(f"\nzh_asr_aishell: {len(rows)} clips, CER {cer:.3f}")
    assert cer <= MAX_CER_ZH


async def test_english_word_error_rate(service: AnalysisService) -> None:
    rows = manifest("en_asr")[::STRIDE]
    errors = words = 0
    for row in rows:
        hyp = await _transcribe(service, SHARED_DATA / "en_asr" / row["file"])
        ref = normalise_en(row["transcript"])
        errors += edit_distance(ref, normalise_en(hyp))
        words += len(ref)
    wer = errors / words
    print(f"\nen_asr: {len(rows)} clips, WER {wer:.3f}")
    assert wer <= MAX_WER_EN


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
