"""Offline voice emotion: an arousal estimate from prosody, in plain numpy.

No weights are learnt from data; the reference values below come from typical adult
conversational speech (phonetics textbooks), not from any emotion corpus. Features, measured
on voiced 40 ms frames of the loudness-normalised clip:

=================  ===============================================  =========  ======  ======
feature            meaning                                          reference  scale   weight
=================  ===============================================  =========  ======  ======
level_dbfs         active speech level *before* normalisation;      -26 dBFS   6 dB    0.8
                   reference = ITU-T P.56 nominal speech level
hf_ratio           share of energy above 1 kHz (vocal effort)       0.20       0.08    1.0
pitch_rise_st      F0 median above the speaker's low end (10th      3.0 st     1.5     0.5
                   percentile), in semitones (raised voice)
pitch_spread_st    spread of F0 in semitones (melody excursion):    3.0 st     1.5     0.2
                   10-90th percentile range / 2.563
level_range_db     spread (90th-10th pct) of frame loudness         20 dB      6 dB    0.2
rate_hz            energy peaks (syllable nuclei) per second        6.0 /s     2.0     0.2
=================  ===============================================  =========  ======  ======

Pitch is always relative to the speaker's own median F0 (:func:`pitch_semitones`), so a
high voice is not an aroused one, and frames an octave off the median (tracker errors) are
folded back before the spread is taken. How a person usually sounds is taken out later, once
they have history (:mod:`inference.arousal_baseline`).

The absolute level depends on the microphone as much as on the speaker, so it is one cue
among several; without it (``level_dbfs=None``) the other cues decide alone.

``arousal = sigmoid(sum(weight * (feature - reference) / scale))``. Labels: ``calm`` below
:data:`CALM_BELOW`, ``agitated`` from :data:`AGITATED_FROM`, else ``moderate``. Scores are
the three labels' soft memberships.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from inference.types import SAMPLE_RATE, Clip, ModelInfo, VoiceReading

FEATURES: dict[str, tuple[float, float, float]] = {
    # name: (reference, scale, weight)
    "level_dbfs": (-26.0, 6.0, 0.8),
    "hf_ratio": (0.20, 0.08, 1.0),
    "pitch_rise_st": (3.0, 1.5, 0.5),
    "pitch_spread_st": (3.0, 1.5, 0.2),
    "level_range_db": (20.0, 6.0, 0.2),
    "rate_hz": (6.0, 2.0, 0.2),
}
CALM_BELOW = 0.4
AGITATED_FROM = 0.65

_FRAME = 640  # 40 ms
_HOP = 160  # 10 ms
_F0_MIN, _F0_MAX = 65.0, 500.0
#: Deviation from the median F0 beyond which a frame is taken for an octave error.
_OCTAVE_FOLD_ST = 8.0
#: The 10th-90th percentile range of a normal distribution, in standard deviations: the
#: spread is that range over 2.563, a standard deviation that outliers cannot inflate.
_IQR80_PER_SD = 2.563


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
    """Measure the prosodic features of one clip (see the module table).

    ``level_dbfs`` is the speech level before loudness normalisation, when known.
    """
    x = np.asarray(clip, dtype=np.float64)
    if len(x) < _FRAME * 3:
        x = np.pad(x, (0, _FRAME * 3 - len(x)))
    n = 1 + (len(x) - _FRAME) // _HOP
    idx = np.arange(_FRAME)[None, :] + _HOP * np.arange(n)[:, None]
    frames = x[idx] * np.hanning(_FRAME)[None, :]
    energy_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    active = energy_db > energy_db.max() - 35.0

    nfft = 2048
    spec = np.fft.rfft(frames, nfft, axis=1)
    power = np.abs(spec) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    # Autocorrelation by Wiener-Khinchin: cheap for hundreds of frames at once.
    ac = np.fft.irfft(power, nfft, axis=1)[:, :_FRAME]
    ac /= ac[:, :1] + 1e-12
    lag_lo, lag_hi = int(sr / _F0_MAX), int(sr / _F0_MIN)
    lag = lag_lo + np.argmax(ac[:, lag_lo:lag_hi], axis=1)
    strength = ac[np.arange(n), lag]
    voiced = active & (strength > 0.45)
    f0 = sr / lag[voiced]

    if f0.size >= 5:
        st = pitch_semitones(f0)
        pitch_spread = float((np.percentile(st, 90) - np.percentile(st, 10)) / _IQR80_PER_SD)
        pitch_rise = float(np.median(st) - np.percentile(st, 10))
    else:
        pitch_spread = pitch_rise = 0.0

    band = power[active] if active.any() else power
    total = band[:, (freqs >= 80) & (freqs <= 7600)].sum() + 1e-12
    hf_ratio = float(band[:, (freqs >= 1000) & (freqs <= 7600)].sum() / total)

    act_db = energy_db[active]
    level_range = (
        float(np.percentile(act_db, 90) - np.percentile(act_db, 10)) if act_db.size else 0.0
    )

    # Syllable nuclei: local maxima of smoothed energy standing 3 dB above their surround.
    smooth = np.convolve(energy_db, np.ones(5) / 5, mode="same")
    peaks = (smooth[1:-1] > smooth[:-2]) & (smooth[1:-1] >= smooth[2:])
    peaks &= smooth[1:-1] > energy_db.max() - 25.0
    speech_s = max(active.sum() * _HOP / sr, 0.25)
    rate = float(peaks.sum() / speech_s)

    features = {
        "pitch_spread_st": pitch_spread,
        "pitch_rise_st": pitch_rise,
        "hf_ratio": hf_ratio,
        "level_range_db": level_range,
        "rate_hz": rate,
    }
    if level_dbfs is not None:
        features["level_dbfs"] = float(level_dbfs)
    return features


def arousal_from_features(features: dict[str, float]) -> float:
    """Combine the features into an arousal in [0, 1] with the documented weights."""
    z = sum(
        w * (features[name] - ref) / scale
        for name, (ref, scale, w) in FEATURES.items()
        if name in features
    )
    return 1.0 / (1.0 + math.exp(-z))


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
