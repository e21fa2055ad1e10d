"""Offline emotion backends: lexicon text emotion and prosodic voice arousal."""

from __future__ import annotations

import numpy as np
import pytest

from inference.text_emotion_lexicon import LexiconTextEmotion
from inference.types import TAGS
from inference.voice_prosody import (
    AGITATED_FROM,
    CALM_BELOW,
    ProsodyVoiceEmotion,
    arousal_from_features,
    label_for,
    prosody_features,
)


@pytest.fixture(scope="module")
def lexicon() -> LexiconTextEmotion:
    return LexiconTextEmotion()


@pytest.mark.parametrize(
    ("sentence", "language", "expected"),
    [
        ("我今天非常开心，太好了", "zh", "positive"),
        ("我很难过，也很害怕", "zh", "negative"),
        ("气死我了，你怎么能这样", "zh", "excited"),
        ("今天去超市买了菜", "zh", "neutral"),
        ("I am so happy today, everything went well.", "en", "positive"),
        ("I feel sad and lonely.", "en", "negative"),
        ("I am furious about this!", "en", "excited"),
        ("The meeting is at three in room four.", "en", "neutral"),
        ("", "en", "neutral"),
    ],
)
def test_lexicon_tags(lexicon: LexiconTextEmotion, sentence: str, language: str,
                      expected: str) -> None:
    reading = lexicon.classify(sentence, language)
    assert reading.label == expected, reading.scores
    assert set(reading.scores) == set(TAGS)
    assert sum(reading.scores.values()) == pytest.approx(1.0)
    assert all(v >= 0 for v in reading.scores.values())


def test_lexicon_detects_chinese_without_language_hint(lexicon: LexiconTextEmotion) -> None:
    assert lexicon.classify("太好了，我很开心", "").label == "positive"


def test_lexicon_batch_matches_single(lexicon: LexiconTextEmotion) -> None:
    texts = ["我很开心", "I hate this!", "ok"]
    langs = ["zh", "en", "en"]
    batch = lexicon.classify_batch(texts, langs)
    assert [r.label for r in batch] == [lexicon.classify(t, lg).label
                                       for t, lg in zip(texts, langs, strict=True)]


def _voiced(f0: float, seconds: float = 2.0, vibrato_st: float = 0.0,
            tilt: float = 1.0, harmonics: int = 30) -> np.ndarray:
    """A synthetic voiced sound with syllable-like loudness bumps.

    Harmonic k has amplitude ``k ** -tilt``: a small tilt is a bright, effortful voice.
    """
    t = np.arange(int(16000 * seconds)) / 16000
    pitch = f0 * 2 ** (vibrato_st * np.sin(2 * np.pi * 1.5 * t) / 12)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    wave = sum(k ** -tilt * np.sin(k * phase) for k in range(1, harmonics + 1))
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t) ** 2
    out = wave * envelope
    return (0.3 * out / np.max(np.abs(out))).astype(np.float32)


def test_prosody_features_measure_pitch_and_brightness() -> None:
    flat = prosody_features(_voiced(120, tilt=1.5))
    lively = prosody_features(_voiced(120, vibrato_st=4.0, tilt=0.3))
    assert lively["pitch_spread_st"] > flat["pitch_spread_st"] + 1.0
    assert lively["hf_ratio"] > flat["hf_ratio"]


def test_louder_brighter_livelier_voice_is_more_aroused() -> None:
    backend = ProsodyVoiceEmotion()
    calm = backend.analyze(_voiced(110, tilt=1.5), level_dbfs=-38.0)
    agitated = backend.analyze(_voiced(220, vibrato_st=5.0, tilt=0.3), level_dbfs=-14.0)
    assert agitated.arousal > calm.arousal + 0.3
    assert calm.label == "calm"
    assert agitated.label == "agitated"
    assert 0.0 <= calm.arousal <= 1.0 and 0.0 <= agitated.arousal <= 1.0
    assert sum(agitated.scores.values()) == pytest.approx(1.0)


def test_arousal_ignores_unknown_level() -> None:
    feats = prosody_features(_voiced(150))
    assert "level_dbfs" not in feats
    assert 0.0 < arousal_from_features(feats) < 1.0


def test_labels_follow_thresholds() -> None:
    assert label_for(CALM_BELOW - 0.01) == "calm"
    assert label_for(CALM_BELOW) == "moderate"
    assert label_for(AGITATED_FROM) == "agitated"


def test_prosody_handles_tiny_clip() -> None:
    reading = ProsodyVoiceEmotion().analyze(np.zeros(100, dtype=np.float32))
    assert 0.0 <= reading.arousal <= 1.0
