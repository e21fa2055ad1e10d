"""Arousal relative to a person's own baseline, once they have history.

A naturally loud or lively speaker reads as aroused on every note; what matters for the tag
is how far *this* note is from how they usually sound. The rule, on the logit scale where
the prosody features add up (see :mod:`inference.voice_prosody`)::

    shift = (median(logit(history)) - logit(REFERENCE_AROUSAL)) * n / (n + PRIOR_NOTES)
    personal = sigmoid(logit(arousal) - shift)

``REFERENCE_AROUSAL`` is where ordinary calm speech sits; the factor ``n / (n + PRIOR_NOTES)``
trusts a short history only partly (5 notes: half the offset), and with fewer than
:data:`MIN_HISTORY` notes nothing changes. The median keeps one shouted note from moving the
baseline. The shift works both ways: a very quiet person who raises their voice is heard.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from inference.fusion import fuse
from inference.types import FusedEmotion

#: Arousal of ordinary calm speech: the middle of the prosody backend's "calm" band.
REFERENCE_AROUSAL = 0.3
#: Fewer past notes than this: the population scale stands.
MIN_HISTORY = 3
#: Pseudo-count of notes at the population baseline (shrinks a short history's offset).
PRIOR_NOTES = 5
_EPS = 1e-4


def _logit(p: float) -> float:
    p = min(1.0 - _EPS, max(_EPS, p))
    return math.log(p / (1.0 - p))


def personalise(arousal: float, history_arousals: Sequence[float]) -> float:
    """``arousal`` moved by the person's usual offset from calm speech (module docstring).

    ``history_arousals`` are the voice arousals of the person's earlier notes (not this one).
    """
    n = len(history_arousals)
    if n < MIN_HISTORY:
        return arousal
    usual = sorted(_logit(a) for a in history_arousals)
    mid = n // 2
    median = usual[mid] if n % 2 else (usual[mid - 1] + usual[mid]) / 2
    shift = (median - _logit(REFERENCE_AROUSAL)) * n / (n + PRIOR_NOTES)
    return 1.0 / (1.0 + math.exp(-(_logit(arousal) - shift)))


def fuse_with_baseline(emotion: FusedEmotion, history_arousals: Sequence[float]) -> FusedEmotion:
    """Fuse again with the voice's arousal made personal; the raw voice reading is kept.

    The stored ``emotion.voice.arousal`` stays the raw reading, so a person's history (the
    baseline of later notes) is never shifted by its own correction.
    """
    voice = emotion.voice
    if voice is None or len(history_arousals) < MIN_HISTORY:
        return emotion
    personal = replace(voice, arousal=personalise(voice.arousal, history_arousals))
    return replace(fuse(emotion.text, personal), voice=voice)
