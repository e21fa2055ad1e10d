"""Offline voice emotion: an arousal estimate from the voice's spectrum and pitch, in numpy.

The estimate is a small logistic regression (:data:`MODEL_PATH`, a few KB) over features of
the clip's voiced 40 ms frames, trained by ``scripts/build_arousal_model.py`` on EmoDB (CC0)
and CREMA-D (ODbL) acted emotions and on ``calm_speech`` (calm read and conversational
speech from some 140 speakers, CC BY / CC0 / Apache), and cross-validated by speaker. No
non-commercial data (RAVDESS) trains it; RAVDESS only measures it.

Features (:func:`prosody_features`), all relative to the clip itself except two:

====================  ================================================================
feature               meaning
====================  ================================================================
band_50 .. band_4000  share of the voiced frames' energy in 50-300, 300-800, 800-1500,
                      1500-2500, 2500-4000 and 4000-8000 Hz, in dB: the long-term
                      spectrum's shape. Vocal effort flattens it (more energy above
                      1 kHz, less in the first harmonics), whatever the loudness.
f0_st                 median F0 in semitones above 100 Hz: raised voices rise (a
                      population norm, as the clip gives no speaker reference)
level_dbfs            speech level *before* loudness normalisation: a fixed prior
                      term, not learnt (below)
====================  ================================================================

Why not the earlier hand-set rule (level, >1 kHz share, pitch rise and spread, loudness
range, syllable rate): on calm read speech from many speakers it called a third of the
clips excited. Pitch rise and spread are as wide in expressive reading as in anger
(audiobook narrators), and syllable rate and loudness range separate nothing; the spectral
shape of the voiced frames carries most of what the features knew.

The level of the recording depends on the microphone at least as much as on the voice, and
EmoDB's clips were level-normalised by the repository they came from, so no weight for it
can be learnt from them. It enters as a fixed term, ``LEVEL_WEIGHT * (level - -26 dBFS) /
6 dB`` (ITU-T P.56 nominal speech level), during training too; without a known level
(``level_dbfs=None``) the other cues decide alone.

**Reliability.** A single word, or a recording whose quietest frames are almost as loud as
its speech (noise, hum, a continuous hiss), gives weak evidence: the logit is pulled towards
that of ordinary calm speech (:func:`calm_arousal`) by ``1 - reliability``, where
reliability is the product of two ramps, over the clip's active speech (0.3 s -> 0, 1.0 s
-> 1) and over its speech-to-floor contrast (10 dB -> 0, 20 dB -> 1). So one word rarely
reads as agitated, and its scores (the soft memberships below) stay near the middle.

``arousal = sigmoid(CALM + reliability * (logit - CALM))``. Labels: ``calm`` below
:data:`CALM_BELOW`, ``agitated`` from :data:`AGITATED_FROM`, else ``moderate``. Scores are
the three labels' soft memberships. How a person usually sounds is taken out later, once
they have history (:mod:`inference.arousal_baseline`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from inference.types import SAMPLE_RATE, Clip, ModelInfo, VoiceReading

#: The shipped weights (``scripts/build_arousal_model.py`` rebuilds them byte for byte).
MODEL_PATH = Path(__file__).with_name("arousal_model.json")
CALM_BELOW = 0.4
AGITATED_FROM = 0.65

#: Bands (Hz) of the long-term spectrum of the voiced frames: ``band_<low>`` features.
BANDS: tuple[tuple[int, int], ...] = (
    (50, 300), (300, 800), (800, 1500), (1500, 2500), (2500, 4000), (4000, 8000))
#: The level term: P.56 nominal active speech level and the dB that count as one unit.
LEVEL_REFERENCE_DBFS = -26.0
LEVEL_SCALE_DB = 6.0
#: Weight of the level term. Chosen on the dev data (0.4 of the 0.8 the hand-set rule used):
#: RAVDESS' calm actors are 20 dB quieter than its angry ones, calm_speech's readers vary
#: as much with their microphones.
LEVEL_WEIGHT = 0.4
#: Active speech (s) below which the estimate says nothing / from which it is trusted fully.
SPEECH_S_NONE, SPEECH_S_FULL = 0.3, 1.0
#: Speech-to-floor contrast (dB, 90th minus 10th percentile of frame energy) likewise.
CONTRAST_DB_NONE, CONTRAST_DB_FULL = 10.0, 20.0

_FRAME = 640  # 40 ms
_HOP = 160  # 10 ms
_NFFT = 2048
_F0_MIN, _F0_MAX = 65.0, 500.0
#: Autocorrelation peak above which a frame counts as voiced.
_VOICED_STRENGTH = 0.45
#: Deviation from the median F0 beyond which a frame is taken for an octave error.
_OCTAVE_FOLD_ST = 8.0
#: The 10th-90th percentile range of a normal distribution, in standard deviations: the
#: spread is that range over 2.563, a standard deviation that outliers cannot inflate.
_IQR80_PER_SD = 2.563


@lru_cache(maxsize=1)
def load_model(path: Path = MODEL_PATH) -> dict[str, Any]:
    """The shipped logistic regression (feature names, standardisation, weights)."""
    return json.loads(path.read_text(encoding="utf-8"))


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def calm_arousal(model: dict[str, Any] | None = None) -> float:
    """Arousal of ordinary calm speech under the model (the median of its held-out
    calm_speech clips, stored with the weights): where weak evidence is pulled to."""
    return float((model if model is not None else load_model())["calm_arousal"])


def pitch_semitones(f0: np.ndarray) -> np.ndarray:
    """F0 in semitones relative to the speaker's own median, octave errors folded back.

    An autocorrelation tracker sometimes locks on half or double the true F0; such a frame
    sits about 12 st from its neighbours. Frames more than :data:`_OCTAVE_FOLD_ST` from the
    median are moved one octave towards it, so they do not pass for a wide melody.
    """
    st = 12 * np.log2(f0 / np.median(f0))
    st = np.where(st > _OCTAVE_FOLD_ST, st - 12, st)
    st = np.where(st < -_OCTAVE_FOLD_ST, st + 12, st)
    return st - np.median(st)


def prosody_features(
    clip: Clip, sr: int = SAMPLE_RATE, level_dbfs: float | None = None
) -> dict[str, float]:
    """Measure the features of one clip (see the module table).

    Besides the model's inputs: ``speech_s`` and ``contrast_db`` (for the reliability),
    ``hf_ratio`` (share of energy above 1 kHz) and ``pitch_spread_st`` (F0 spread in
    semitones), kept for inspection. ``level_dbfs`` is the speech level before loudness
    normalisation, when known.
    """
    x = np.asarray(clip, dtype=np.float64)
    if len(x) < _FRAME * 3:
        x = np.pad(x, (0, _FRAME * 3 - len(x)))
    n = 1 + (len(x) - _FRAME) // _HOP
    idx = np.arange(_FRAME)[None, :] + _HOP * np.arange(n)[:, None]
    frames = x[idx] * np.hanning(_FRAME)[None, :]
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = energy_db > energy_db.max() - 35.0

    power = np.abs(np.fft.rfft(frames, _NFFT, axis=1)) ** 2
    freqs = np.fft.rfftfreq(_NFFT, 1.0 / sr)
    # Autocorrelation by Wiener-Khinchin: cheap for hundreds of frames at once.
    ac = np.fft.irfft(power, _NFFT, axis=1)[:, :_FRAME]
    ac /= ac[:, :1] + 1e-12
    lag_lo, lag_hi = int(sr / _F0_MAX), int(sr / _F0_MIN)
    lag = lag_lo + np.argmax(ac[:, lag_lo:lag_hi], axis=1)
    strength = ac[np.arange(n), lag]
    voiced = active & (strength > _VOICED_STRENGTH)
    f0 = sr / lag[voiced]

    features: dict[str, float] = {}
    if f0.size >= 5:
        st = pitch_semitones(f0)
        features["pitch_spread_st"] = float(
            (np.percentile(st, 90) - np.percentile(st, 10)) / _IQR80_PER_SD)
        features["f0_st"] = float(12 * np.log2(np.median(f0) / 100.0))
    else:
        # Too little voicing to tell: an ordinary pitch (the population median of the
        # training clips is about 11 st, i.e. 190 Hz) rather than an extreme one.
        features["pitch_spread_st"] = 0.0
        features["f0_st"] = 11.0

    # The spectrum of the voiced frames: vowels carry vocal effort; fricatives and pauses
    # would measure the consonants and the room. Too few voiced frames: the active ones.
    chosen = voiced if voiced.sum() >= 5 else (active if active.any() else np.ones(n, bool))
    spectrum = power[chosen].sum(axis=0)
    total = spectrum[(freqs >= 50) & (freqs < 8000)].sum() + 1e-12
    for lo, hi in BANDS:
        share = spectrum[(freqs >= lo) & (freqs < hi)].sum() / total
        features[f"band_{lo}"] = float(10 * np.log10(share + 1e-12))
    act = power[active] if active.any() else power
    features["hf_ratio"] = float(act[:, (freqs >= 1000) & (freqs <= 7600)].sum()
                                 / (act[:, (freqs >= 80) & (freqs <= 7600)].sum() + 1e-12))

    features["contrast_db"] = float(np.percentile(energy_db, 90) - np.percentile(energy_db, 10))
    features["speech_s"] = float(active.sum() * _HOP / sr) if active.any() else 0.0
    if level_dbfs is not None:
        features["level_dbfs"] = float(level_dbfs)
    return features


def _ramp(value: float, none: float, full: float) -> float:
    return max(0.0, min(1.0, (value - none) / (full - none)))


def reliability(features: dict[str, float]) -> float:
    """How far the clip's evidence is trusted, 0..1 (the module's two ramps)."""
    return (_ramp(features.get("speech_s", SPEECH_S_FULL), SPEECH_S_NONE, SPEECH_S_FULL)
            * _ramp(features.get("contrast_db", CONTRAST_DB_FULL), CONTRAST_DB_NONE,
                    CONTRAST_DB_FULL))


def level_term(level_dbfs: float | None) -> float:
    """The fixed level contribution to the logit (0 when the level is unknown)."""
    if level_dbfs is None:
        return 0.0
    return LEVEL_WEIGHT * (level_dbfs - LEVEL_REFERENCE_DBFS) / LEVEL_SCALE_DB


def model_logit(features: dict[str, float], model: dict[str, Any] | None = None) -> float:
    """The regression's logit for one clip, before the reliability pull."""
    m = model if model is not None else load_model()
    z = float(m["intercept"])
    for name, mean, scale, coef in zip(m["features"], m["mean"], m["scale"], m["coef"],
                                       strict=True):
        z += coef * (features[name] - mean) / scale
    return z + level_term(features.get("level_dbfs"))


def arousal_from_features(features: dict[str, float],
                          model: dict[str, Any] | None = None) -> float:
    """Combine the features into an arousal in [0, 1] (module docstring)."""
    calm = _logit(calm_arousal(model))
    z = calm + reliability(features) * (model_logit(features, model) - calm)
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))


def label_for(arousal: float) -> str:
    """calm, moderate or agitated."""
    if arousal < CALM_BELOW:
        return "calm"
    if arousal >= AGITATED_FROM:
        return "agitated"
    return "moderate"


class ProsodyVoiceEmotion:
    """:class:`~inference.types.VoiceEmotionBackend` from prosodic arousal."""

    #: Tells the engine to pass each clip's level before normalisation.
    uses_level = True

    def __init__(self) -> None:
        self.info = ModelInfo(
            component="voice_emotion", tier="offline", model="prosody-arousal (numpy)",
        )

    def analyze(self, clip: Clip, level_dbfs: float | None = None) -> VoiceReading:
        """Read the arousal of one clip (``level_dbfs``: its level before normalisation)."""
        arousal = arousal_from_features(prosody_features(clip, level_dbfs=level_dbfs))
        scores = {
            "calm": max(0.0, min(1.0, (AGITATED_FROM - arousal) / AGITATED_FROM)),
            "agitated": max(0.0, min(1.0, (arousal - CALM_BELOW) / (1 - CALM_BELOW))),
        }
        scores["moderate"] = max(0.0, 1.0 - scores["calm"] - scores["agitated"])
        total = sum(scores.values()) or 1.0
        scores = {k: v / total for k, v in scores.items()}
        return VoiceReading(label=label_for(arousal), arousal=arousal, scores=scores,
                            model=self.info.model)

    def analyze_batch(
        self, clips: Sequence[Clip], levels_dbfs: Sequence[float | None] | None = None
    ) -> list[VoiceReading]:
        """Read one arousal per clip."""
        levels = list(levels_dbfs) if levels_dbfs is not None else [None] * len(clips)
        return [self.analyze(c, lv) for c, lv in zip(clips, levels, strict=True)]
